"""Trial-to-trial variability: jitter, input noise and dropout as neural noise.

Real tuning statistics need repeated trials that differ. Each presentation gets its own draws,
all derived from the protocol's seed: the jitter shifts from a NumPy generator seeded with
``(seed, "jitter")`` for the whole plan (so they are coordinates of the store, known before
recording), the Gaussian input noise and the dropout masks from torch's generator, which the
recorder seeds per batch (so a resumed run draws what an uninterrupted one would).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ..errors import RegionError, did_you_mean
from ..protocol.schema import Variability

__all__ = ["TrialVariability"]

#: Second element of the jitter generator's seed (the bytes of "jitter"), so the shifts do not
#: depend on any other use of the protocol's seed.
_JITTER_STREAM = int.from_bytes(b"jitter", "big")


class TrialVariability:
    """The variability a protocol's ``record.variability`` asks for, ready to apply.

    Parameters
    ----------
    spec
        The protocol's ``record.variability`` (None: every presentation identical).
    seed
        The protocol's seed.
    n_presentations
        Length of the presentation plan (jitter shifts are drawn for all of them up front).

    Examples
    --------
    >>> import torch
    >>> from neurorecord.protocol.schema import Variability
    >>> v = TrialVariability(Variability(jitter=1, input_noise=0.1), seed=0, n_presentations=4)
    >>> sorted(v.coords())
    ['jitter_x', 'jitter_y']
    >>> _ = torch.manual_seed(0)
    >>> v.apply(torch.zeros(4, 1, 8, 8), start=0).shape
    torch.Size([4, 1, 8, 8])
    """

    def __init__(self, spec: Variability | None, seed: int, n_presentations: int) -> None:
        self.spec = spec or Variability()
        self._shifts = np.zeros((n_presentations, 2), dtype=np.int64)
        if self.spec.jitter:
            rng = np.random.default_rng([seed, _JITTER_STREAM])
            self._shifts = rng.integers(-self.spec.jitter, self.spec.jitter + 1, size=(n_presentations, 2))

    @property
    def active(self) -> bool:
        """Whether presentations of one stimulus differ at all."""
        s = self.spec
        return bool(s.jitter or s.input_noise or s.dropout)

    def coords(self) -> dict[str, np.ndarray]:
        """Per-presentation coordinates: ``jitter_x`` (pixels, > 0 moves the image right) and
        ``jitter_y`` (pixels, > 0 moves it down, towards higher rows); empty without jitter."""
        if not self.spec.jitter:
            return {}
        return {"jitter_x": self._shifts[:, 1].copy(), "jitter_y": self._shifts[:, 0].copy()}

    def apply(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Jitter and input noise for presentations ``start .. start + len(x)``.

        ``x`` is (batch, C, H, W) or (batch, steps, C, H, W); one shift per presentation (every
        frame of a sequence moves together), noise drawn independently for every pixel of every
        frame from torch's current generator.
        """
        if self.spec.jitter:
            x = _shift(x, self._shifts[start : start + len(x)], self.spec.jitter, self.spec.fill)
        if self.spec.input_noise:
            x = x + self.spec.input_noise * torch.randn(x.shape, device=x.device, dtype=x.dtype)
        return x

    def check_region(self, model: nn.Module) -> None:
        """Check that the dropout region exists in ``model``."""
        dropout = self.spec.dropout
        if dropout is None:
            return
        names = [n for n, _ in model.named_modules() if n]
        if dropout.region not in names:
            raise RegionError(
                f"record.variability.dropout.region: no module named {dropout.region!r} in the subject"
                f"{did_you_mean(dropout.region, names)}; valid names: {', '.join(names[:80])}",
                loc=("record", "variability", "dropout", "region"),
            )

    @contextmanager
    def neural_noise(self, model: nn.Module) -> Iterator[None]:
        """While inside, the dropout region's output units are silenced at random.

        Each element of the region's output (each unit, at each position and time step) is
        kept with probability ``1 - p``, and kept ones are scaled by ``1 / (1 - p)`` when
        ``rescale`` is on. The hook runs before any recording hook, so a recorded dropout region
        shows the noisy activity.
        """
        dropout = self.spec.dropout
        if dropout is None:
            yield
            return
        keep = 1.0 - dropout.p
        scale = 1.0 / keep if dropout.rescale else 1.0

        def hook(module: nn.Module, inputs: object, output: object) -> object:
            first = output[0] if isinstance(output, tuple) else output
            mask = torch.rand(first.shape, device=first.device) < keep
            noisy = first * mask.to(first.dtype) * scale
            return (noisy, *output[1:]) if isinstance(output, tuple) else noisy

        handle = dict(model.named_modules())[dropout.region].register_forward_hook(hook, prepend=True)
        try:
            yield
        finally:
            handle.remove()


def _shift(x: torch.Tensor, shifts: np.ndarray, most: int, fill: float) -> torch.Tensor:
    """Move each image by its (dy, dx) whole pixels; uncovered pixels get ``fill``."""
    height, width = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (most, most, most, most), value=fill)
    out = torch.empty_like(x)
    for dy, dx in np.unique(shifts, axis=0):
        sel = torch.from_numpy(np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))).to(x.device)
        # content moves by (dy, dx): output pixel (r, c) reads input pixel (r - dy, c - dx)
        top, left = most - int(dy), most - int(dx)
        out[sel] = padded[sel][..., top : top + height, left : left + width]
    return out
