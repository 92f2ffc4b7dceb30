"""A user's own model, recorded through a protocol's ``entry_point`` (see ``protocols/entry-point.yaml``).

neurorecord imports this file as the module ``my_model`` (it looks in the protocol file's
folder first) and calls ``build(**kwargs)`` with the protocol's ``subject.kwargs``. Whatever
``build`` returns must be a ``torch.nn.Module`` taking float32 images of shape
``(n, 1, 8, 8)`` (the digits stimuli).

Every named submodule is a region that can be recorded; the names are those of
``model.named_modules()``:

==========  =======================================  ======================================
region      module                                   recorded units
==========  =======================================  ======================================
``conv``    Conv2d(1, 8, 3, padding=1) + ReLU        8 channels (one unit per channel with
                                                     ``reduce: mean``; 8 x 8 x 8 with ``none``)
``conv.0``  the Conv2d alone (pre-activation)        same shape as ``conv``
``pool``    MaxPool2d(2)                             8 channels of 4 x 4
``hidden``  Linear(8 * 4 * 4, hidden) + ReLU         ``hidden`` units
``readout`` Linear(hidden, 10)                       10 logits
==========  =======================================  ======================================

The weights are random (this model is untrained) but seeded: ``build`` draws them from its own
``torch.Generator`` seeded with 0, so every call returns the same weights and the global torch
random state is left alone. For a trained model, save its ``state_dict()`` with ``torch.save`` and
add ``state_dict: weights.pt`` under ``subject`` in the protocol.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TinyNet", "build"]


class TinyNet(nn.Module):
    """conv -> pool -> hidden -> readout, on 1 x 8 x 8 images."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.hidden = nn.Sequential(nn.Linear(8 * 4 * 4, hidden), nn.ReLU())
        self.readout = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv(x))
        return self.readout(self.hidden(x.flatten(1)))


def build(hidden: int = 32) -> nn.Module:
    """Return a :class:`TinyNet` with ``hidden`` hidden units and seeded random weights."""
    if hidden < 1:
        raise ValueError(f"hidden must be a positive number of units, found {hidden}")
    model = TinyNet(hidden)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.zero_()
            else:  # He-style scaling so ReLU units are neither silent nor saturated
                fan_in = param[0].numel()
                param.copy_(torch.randn(param.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
    return model
