"""Lesion specs: which units a lesion silences and how, and the packs that apply many at once.

A lesion silences units of one region at its output: linear units (indices into the channel axis
of a (stimulus, unit) output) or conv channels (a channel of a (stimulus, channel, height, width)
output, silenced at every position). Methods:

``zero``    the units output 0;
``mean``    the units output their mean over a reference stimulus set (see
            :func:`~neurorecord.lesion.sweep.unit_means`);
``clamp``   the units output a fixed value;
``noise``   Gaussian noise of standard deviation ``std`` is added to (``noise="add"``) or replaces
            (``noise="replace"``) the units' output. The noise of lesion ``l`` at stimulus ``n``
            depends only on ``(seed, l, n)``: it is drawn in blocks of :data:`NOISE_BLOCK`
            stimuli, each block from a ``torch.Generator`` seeded from ``(seed, l, block)``, so
            the fast and the obvious paths, any batching and any device draw the same numbers.

A :class:`LesionPack` holds many lesions as index tensors, so that writing all of them into a
packed batch (one copy of the region's output per lesion) is one indexed assignment.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validation import check_choice, shape_text
from .split import memory_format

__all__ = ["METHODS", "NOISE_BLOCK", "NOISE_MODES", "Lesion", "LesionPack", "apply_lesions", "single_unit_lesions"]

METHODS = ("zero", "mean", "noise", "clamp")
NOISE_MODES = ("add", "replace")
#: stimuli per block of noise (each block has its own generator, so batching does not matter)
NOISE_BLOCK = 256


# ---------------------------------------------------------------- lesions


@dataclass(frozen=True)
class Lesion:
    """One lesion of a region: which units, and how they are silenced.

    Parameters
    ----------
    units
        Channel indices of the region's output (units of a linear output, channels of a conv
        output).
    method
        ``"zero"``, ``"mean"``, ``"noise"`` or ``"clamp"`` (see the module docstring).
    value
        The output of clamped units (``clamp`` only).
    std
        Standard deviation of the noise, in the units of the region's output (``noise`` only).
    noise
        ``"add"`` (noise added to the output) or ``"replace"`` (the output replaced by noise of
        mean 0) (``noise`` only).

    Examples
    --------
    >>> Lesion((3, 5))
    Lesion(units=(3, 5), method='zero', value=0.0, std=1.0, noise='add')
    """

    units: tuple[int, ...]
    method: str = "zero"
    value: float = 0.0
    std: float = 1.0
    noise: str = "add"

    def __post_init__(self) -> None:
        units = self.units
        if type(units) is tuple and all(type(u) is int for u in units):
            return  # already a tuple of ints (the common case, kept cheap: sweeps build thousands)
        units = (units,) if isinstance(units, (int, np.integer)) else units
        object.__setattr__(self, "units", tuple(int(u) if isinstance(u, (int, np.integer)) else u for u in units))


def single_unit_lesions(n_unit: int, method: str = "zero", **options: Any) -> list[Lesion]:
    """One lesion per unit ``0 .. n_unit - 1``, all with the same method and options.

    >>> [lesion.units for lesion in single_unit_lesions(3)]
    [(0,), (1,), (2,)]
    """
    return [Lesion((u,), method, **options) for u in range(n_unit)]


@dataclass
class LesionPack:
    """A batch of lesions as index tensors, applied to a packed batch in one vectorised operation.

    Attributes
    ----------
    index
        (n_lesion,) int64: each lesion's position in the whole sweep (it seeds its noise).
    rows, channels
        (n_pair,) int64: every silenced (lesion, channel) pair, lesion by lesion: the lesion's
        position in the pack and the channel.
    values
        (n_pair, 1, ...) or (n_pair, *sample_shape[1:]): what each silenced pair outputs (0 for
        ``zero``, the mean for ``mean``, the value for ``clamp``; 0, unused, for ``noise``).
    plain
        (n_pair,) bool: the pairs whose output is ``values`` (those of every lesion but ``noise``).
    noise
        For the noise lesions: (position in the pack, std, additive) per lesion.
    offsets
        Where each lesion's pairs start, and after the last one where they end (n_lesion + 1).
    seed
        The sweep's seed.
    sample_shape
        The region's output shape for one stimulus.
    """

    index: torch.Tensor
    rows: torch.Tensor
    channels: torch.Tensor
    values: torch.Tensor
    plain: torch.Tensor
    noise: list[tuple[int, float, bool]]
    offsets: list[int]
    seed: int
    sample_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        # the plain pairs, selected once (a pack is written once per stimulus chunk)
        self._plain_rows = self.rows if not self.noise else self.rows[self.plain]
        self._plain_channels = self.channels if not self.noise else self.channels[self.plain]
        self._plain_values = (self.values if not self.noise else self.values[self.plain]).unsqueeze(1)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @property
    def mask(self) -> torch.Tensor:
        """(n_lesion, channel) bool: which channels each lesion silences."""
        mask = torch.zeros(len(self), self.sample_shape[0], dtype=torch.bool, device=self.rows.device)
        mask[self.rows, self.channels] = True
        return mask

    def part(self, i: int, j: int) -> LesionPack:
        """The pack of lesions ``i .. j - 1`` of this one."""
        if (i, j) == (0, len(self)):
            return self
        a, b = self.offsets[i], self.offsets[j]
        return LesionPack(self.index[i:j], self.rows[a:b] - i, self.channels[a:b], self.values[a:b], self.plain[a:b],
                          [(pos - i, std, add) for pos, std, add in self.noise if i <= pos < j],
                          [o - a for o in self.offsets[i : j + 1]], self.seed, self.sample_shape)

    def split(self, size: int) -> list[LesionPack]:
        """The pack cut into packs of ``size`` lesions (the last one may be smaller), in order."""
        return [self.part(i, min(len(self), i + size)) for i in range(0, len(self), size)]


_METHOD_CODE = {"zero": 0, "mean": 1, "clamp": 2, "noise": 3}


def _pack(lesions: Sequence[Lesion], first: int, sample_shape: tuple[int, ...], means: torch.Tensor | None,
          seed: int, dtype: torch.dtype, device: torch.device) -> LesionPack:
    n, extra = len(lesions), len(sample_shape) - 1
    units = [lesion.units for lesion in lesions]
    counts = list(map(len, units))
    methods = {lesion.method for lesion in lesions}
    flat = list(itertools.chain.from_iterable(units))
    channels = torch.tensor(flat, dtype=torch.int64)
    n_pair = len(channels)
    counts_t = None if n_pair == n else torch.tensor(counts, dtype=torch.int64)  # None: one unit per lesion
    rows = torch.arange(n, dtype=torch.int64) if counts_t is None else torch.repeat_interleave(torch.arange(n, dtype=torch.int64), counts_t)

    def per_pair(per_lesion: list[Any], dtype: torch.dtype) -> torch.Tensor:
        t = torch.tensor(per_lesion, dtype=dtype)
        return t if counts_t is None else t.repeat_interleave(counts_t)

    code = per_pair([_METHOD_CODE[lesion.method] for lesion in lesions], torch.int64) if len(methods) > 1 else None
    trailing = tuple(means.shape[1:]) if means is not None else (1,) * extra
    values = torch.zeros(n_pair, *trailing, dtype=dtype)
    if means is not None and "mean" in methods:
        is_mean = code == 1 if code is not None else slice(None)
        values[is_mean] = means[channels[is_mean]].to(dtype)
    if "clamp" in methods:
        clamp = per_pair([lesion.value for lesion in lesions], dtype)
        is_clamp = code == 2 if code is not None else slice(None)
        values[is_clamp] = clamp[is_clamp].reshape(-1, *([1] * len(trailing)))
    noise = [(i, float(lesion.std), lesion.noise == "add") for i, lesion in enumerate(lesions) if lesion.method == "noise"] if "noise" in methods else []
    plain = torch.full((n_pair,), "noise" not in methods, dtype=torch.bool) if code is None else code != 3
    index = torch.arange(first, first + n, dtype=torch.int64)
    offsets = [0, *itertools.accumulate(counts)]
    if device.type != "cpu":
        rows, channels, values, plain = (t.to(device) for t in (rows, channels, values, plain))
    return LesionPack(index, rows, channels, values, plain, noise, offsets, seed, sample_shape)


def _write_lesions(packed: torch.Tensor, base: torch.Tensor, pack: LesionPack, start: int, stop: int) -> None:
    """Write the lesions of ``pack`` into ``packed`` (n_lesion, stimulus, channel, ...), in place.

    ``base`` is the unlesioned output, (1 or n_lesion, stimulus, channel, ...): additive noise is
    added to it.
    """
    if pack._plain_rows.numel():
        packed[pack._plain_rows, :, pack._plain_channels] = pack._plain_values
    if pack.noise:
        mask = pack.mask.view(len(pack), 1, -1, *([1] * (packed.ndim - 3)))
        for pos, std, additive in pack.noise:
            eps = _draw_noise(pack.seed, int(pack.index[pos]), start, stop, tuple(packed.shape[2:])).to(packed.device, packed.dtype)
            noisy = base[0 if base.shape[0] == 1 else pos] + std * eps if additive else std * eps
            packed[pos] = torch.where(mask[pos], noisy, packed[pos])


def apply_lesions(output: torch.Tensor, pack: LesionPack, start: int, stop: int) -> torch.Tensor:
    """Apply every lesion of ``pack`` to a region's output for stimuli ``start .. stop - 1``.

    Parameters
    ----------
    output
        The region's output, (stimulus, channel, ...) for the ``stop - start`` stimuli, or
        already repeated, (n_lesion * stimulus, channel, ...), lesion-major.
    pack
        The lesions.
    start, stop
        The stimuli's positions in the evaluation set (they seed the noise).

    Returns
    -------
    torch.Tensor
        (n_lesion * stimulus, channel, ...): row ``l * n_stimulus + s`` is stimulus ``s`` under
        lesion ``l``.

    Examples
    --------
    >>> pack = _pack([Lesion((0,)), Lesion((1,), "clamp", value=5.0)], 0, (2,), None, 0, torch.float32, torch.device("cpu"))
    >>> apply_lesions(torch.ones(1, 2), pack, 0, 1)
    tensor([[0., 1.],
            [1., 5.]])
    """
    n, p = stop - start, len(pack)
    if output.shape[0] == n:
        hv = output.unsqueeze(0)
    elif output.shape[0] == p * n:
        hv = output.reshape(p, n, *output.shape[1:])
    else:
        raise ValueError(f"apply_lesions: output has {output.shape[0]} rows, expected {n} stimuli or {p} x {n}")
    # one copy of the output per lesion (in the layout the network produced), then the silenced
    # units written in one indexed assignment
    out = torch.empty((p * n, *output.shape[1:]), dtype=output.dtype, device=output.device, memory_format=memory_format(output))
    packed = out.view(p, n, *output.shape[1:])
    packed.copy_(hv.expand(p, *hv.shape[1:]))
    _write_lesions(packed, hv, pack, start, stop)
    return out


def _draw_noise(seed: int, lesion: int, start: int, stop: int, sample_shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise (stop - start, *sample_shape), a function of (seed, lesion, stimulus)."""
    parts = []
    for block in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
        state = np.random.SeedSequence((seed, lesion, block)).generate_state(2, np.uint32)
        g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        values = torch.randn((NOISE_BLOCK, *sample_shape), generator=g)
        lo, hi = max(start, block * NOISE_BLOCK) - block * NOISE_BLOCK, min(stop, (block + 1) * NOISE_BLOCK) - block * NOISE_BLOCK
        parts.append(values[lo:hi])
    return torch.cat(parts) if len(parts) > 1 else parts[0]


# ---------------------------------------------------------------- checks


def as_lesions(lesions: Any) -> list[Lesion]:
    """``lesions`` as a list of checked :class:`Lesion` (a bare int or sequence of ints is a
    ``zero`` lesion of those units); raises ``TypeError``/``ValueError`` in the form
    ``"lesions[i].field: expected ..., found ..."``."""
    if isinstance(lesions, (Lesion, str, bytes)) or not hasattr(lesions, "__iter__"):
        raise TypeError(f"lesions: expected a sequence of Lesion (or of unit indices), found {type(lesions).__name__}")
    out = []
    for i, lesion in enumerate(list(lesions)):
        if isinstance(lesion, Lesion):
            out.append(lesion)
        elif isinstance(lesion, (int, np.integer)) or (isinstance(lesion, Sequence) and not isinstance(lesion, str)):
            out.append(Lesion(lesion))  # type: ignore[arg-type]
        else:
            raise TypeError(f"lesions[{i}]: expected a Lesion, a unit index or a sequence of unit indices, found {type(lesion).__name__}")
    if not out:
        raise ValueError("lesions: expected at least one lesion, found an empty sequence")
    methods = {lesion.method for lesion in out}
    plain = methods <= {"zero", "mean"} and all(lesion.units and all(type(u) is int for u in lesion.units) for lesion in out)
    if plain:  # the common sweep: nothing else to check
        return out
    for i, lesion in enumerate(out):
        check_choice(f"lesions[{i}].method", lesion.method, METHODS)
        if not lesion.units or not all(isinstance(u, int) for u in lesion.units):
            raise ValueError(f"lesions[{i}].units: expected a non-empty sequence of integer channel indices, found {lesion.units!r}")
        if lesion.method == "noise":
            check_choice(f"lesions[{i}].noise", lesion.noise, NOISE_MODES)
            if not (isinstance(lesion.std, (int, float)) and math.isfinite(lesion.std) and lesion.std >= 0):
                raise ValueError(f"lesions[{i}].std: expected a finite number >= 0, found {lesion.std!r}")
        if lesion.method == "clamp" and not (isinstance(lesion.value, (int, float)) and math.isfinite(lesion.value)):
            raise ValueError(f"lesions[{i}].value: expected a finite number, found {lesion.value!r}")
    return out


def check_lesions_against(lesions: list[Lesion], region: str, sample_shape: tuple[int, ...], means: Any) -> torch.Tensor | None:
    """Check the lesions' units against the region's output shape per stimulus, and ``means``
    (needed by ``mean`` lesions); return ``means`` as a CPU tensor shaped to broadcast over one
    stimulus's output, or ``None``."""
    n_channel = sample_shape[0]
    units = list(itertools.chain.from_iterable(lesion.units for lesion in lesions))
    if min(units) < 0 or max(units) >= n_channel:
        for i, lesion in enumerate(lesions):
            bad = [u for u in lesion.units if not 0 <= u < n_channel]
            if bad:
                raise ValueError(f"lesions[{i}].units: expected channel indices in [0, {n_channel}) of region {region!r} "
                                 f"(output shape per stimulus {shape_text(sample_shape)}), found {bad}")
    if means is None:
        uses_mean = [i for i, lesion in enumerate(lesions) if lesion.method == "mean"]
        if uses_mean:
            raise ValueError(f"means: expected the units' mean output over a reference stimulus set, of shape ({n_channel},) or "
                             f"{shape_text(sample_shape)} (see unit_means), for lesions[{uses_mean[0]}] of method 'mean'; found None")
        return None
    means_t = torch.as_tensor(np.asarray(means) if not isinstance(means, torch.Tensor) else means).detach().cpu()
    shapes = [(n_channel,), sample_shape]
    if tuple(means_t.shape) not in shapes:
        raise ValueError(f"means: expected shape ({n_channel},) (one per channel) or {shape_text(sample_shape)} (one stimulus's output) "
                         f"for region {region!r}, found shape {shape_text(tuple(means_t.shape))}")
    if tuple(means_t.shape) == (n_channel,):
        means_t = means_t.reshape(n_channel, *([1] * (len(sample_shape) - 1)))
    return means_t


def sample_shape_of(region: str, h: torch.Tensor) -> tuple[int, ...]:
    """The region's output shape per stimulus, from its output ``h`` for some stimuli."""
    if h.ndim < 2:
        raise ValueError(f"region {region!r}: expected an output (stimulus, unit) or (stimulus, channel, ...), found shape {shape_text(tuple(h.shape))}")
    return tuple(int(s) for s in h.shape[1:])

