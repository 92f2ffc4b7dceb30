"""The subject: a network in evaluation mode plus its identity."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Subject", "eval_mode", "weight_sha256"]


def weight_sha256(model: nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes and bytes, in name order).

    Two modules with the same weights give the same hash, whatever process built them.

    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> a = torch.nn.Linear(2, 2); b = torch.nn.Linear(2, 2); b.load_state_dict(a.state_dict())
    <All keys matched successfully>
    >>> weight_sha256(a) == weight_sha256(b)
    True
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@dataclass
class Subject:
    """A network treated as an experimental subject.

    Attributes
    ----------
    name : str
        Zoo name, entry point or file name: how the protocol named it.
    model : torch.nn.Module
        The network, in evaluation mode, taking float32 images (n, C, H, W).
    source : dict
        How it was built (``{"zoo": ...}``, ``{"entry_point": ..., "state_dict": ...}``, ...).
    info : dict
        What is known about it, e.g. the zoo's held-out ``test_accuracy``.
    """

    name: str
    model: nn.Module
    source: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def weight_sha256(self) -> str:
        """sha256 of the weights (see :func:`weight_sha256`)."""
        if "_weight_sha256" not in self.__dict__:
            self.__dict__["_weight_sha256"] = weight_sha256(self.model)
        return self.__dict__["_weight_sha256"]

    def identity(self) -> dict[str, Any]:
        """Provenance record: name, source, weight hash, info (JSON-serialisable)."""
        return {"name": self.name, "source": dict(self.source), "weight_sha256": self.weight_sha256, "info": dict(self.info)}


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module in eval mode inside the block; each module's own train/eval flag restored after.

    ``model.train(flag)`` would set one flag on every submodule; a subject whose submodules
    differ (a frozen, eval-mode backbone in a training model) gets its own flags back.

    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()); model[0].eval() and None
    >>> with eval_mode(model):
    ...     model[1].training
    False
    >>> model.training, model[0].training, model[1].training
    (True, False, True)
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for module, training in modes:
            module.training = training
