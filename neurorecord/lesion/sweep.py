"""Lesion sweeps: the predictions of a network with each of many lesions, computed fast and exactly.

A lesion silences units of one region at its output: linear units (indices into the channel axis
of a (stimulus, unit) output) or conv channels (a channel of a (stimulus, channel, height, width)
output, silenced at every position). Methods:

``zero``    the units output 0;
``mean``    the units output their mean over a reference stimulus set (see :func:`unit_means`);
``clamp``   the units output a fixed value;
``noise``   Gaussian noise of standard deviation ``std`` is added to (``noise="add"``) or replaces
            (``noise="replace"``) the units' output. The noise of lesion ``l`` at stimulus ``n``
            depends only on ``(seed, l, n)``: it is drawn in blocks of 256 stimuli, each block from
            a ``torch.Generator`` seeded from ``(seed, l, block)``, so the fast and the obvious
            paths, any batching and any device draw the same numbers.

Two ways to get the predictions of ``n_lesion`` lesions on ``n_stimulus`` stimuli:

:func:`obvious_predictions`
    for each lesion, the full network over every stimulus, with a forward hook that applies the
    lesion (the ground truth);
:func:`lesion_predictions`
    the network is cut at the region (:func:`~neurorecord.lesion.split.split_at`); the part before
    it runs once, and its frontier is cached (in memory, or in a temporary zarr array read back
    chunk by chunk when it exceeds ``cache_budget``); the part after it runs on packs of lesions,
    ``pack_size x stimuli`` rows at a time. The frontier of a chunk of stimuli is copied once
    into ``pack_size`` copies; each pack's lesions are written into their copies in one indexed
    assignment and put back after its pass (the copies are filled again if the downstream part
    writes into them in place). ``pack_size`` is chosen so that the packed rows fit
    ``memory_budget``, from the bytes per row that one probe pass measures. With
    ``downstream=[...]`` the same passes also measure how each lesion changes the activity of
    later regions (:mod:`~neurorecord.lesion.downstream`). Where the first layer after the
    region is linear (and the lesions are single units), it is by default updated by each
    lesioned unit's own contribution rather than recomputed (``shortcut``);
    ``shortcut=False`` recomputes every layer after the region.

Both give the same per-stimulus predictions: the tests check this exactly on the digits MLP and
CNN and on models with skip connections and data-dependent control flow, with and without the
shortcut, and the logits to 1e-5 (recomputed, on the CPU they have come out bit for bit
identical; the shortcut differs from them by float rounding). Every call runs the model in eval mode
under ``torch.inference_mode``, and leaves it with no hook and in the train/eval mode it had,
also when it raises.
"""

from __future__ import annotations

import abc
import copy
import itertools
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .downstream import DownstreamActivity, _Meter, check_downstream
from .split import Split, _ByteCounter, _check_region, _flatten_chain, _split, every_module, memory_format

__all__ = [
    "Lesion",
    "LesionPack",
    "LesionResult",
    "LesionSweep",
    "METHODS",
    "apply_lesions",
    "lesion_predictions",
    "obvious_predictions",
    "single_unit_lesions",
    "unit_means",
]

METHODS = ("zero", "mean", "noise", "clamp")
NOISE_MODES = ("add", "replace")
#: default bytes of one downstream pass on the CPU: passes larger than the caches run slower
#: (measured on the digits subjects: 2-16 MiB passes were 1.5-3x faster than 100+ MiB ones)
CPU_PASS_BYTES = 8 << 20
#: default bytes of one upstream pass on the CPU, the same reason (measured on the VGG-style CNN of
#: benchmarks/vgg.py, up to block3: batches of 16-64 stimuli, 15-60 MiB, were 1.5-1.9x faster than
#: batches of 512)
CPU_UPSTREAM_BYTES = 32 << 20
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
    unit_run
        ``u`` when lesion ``i`` silences unit ``u + i`` alone, for every ``i`` (a run of single
        units: the common sweep), else ``None``.
    zero
        Whether every lesion is a ``zero`` lesion.
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
    unit_run: int | None = None
    zero: bool = False

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
                          [o - a for o in self.offsets[i : j + 1]], self.seed, self.sample_shape,
                          None if self.unit_run is None else self.unit_run + i, self.zero)

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
    unit_run = flat[0] if counts_t is None and flat == list(range(flat[0], flat[0] + n)) else None
    if device.type != "cpu":
        rows, channels, values, plain = (t.to(device) for t in (rows, channels, values, plain))
    return LesionPack(index, rows, channels, values, plain, noise, offsets, seed, sample_shape, unit_run, methods == {"zero"})


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


# ---------------------------------------------------------------- validation


def _as_lesions(lesions: Any, caller: str) -> list[Lesion]:
    if isinstance(lesions, (Lesion, str, bytes)) or not hasattr(lesions, "__iter__"):
        raise TypeError(f"The lesions parameter of {caller} must be a sequence of Lesion (or of unit indices); got {type(lesions).__name__} instead.")
    out = []
    for i, lesion in enumerate(list(lesions)):
        if isinstance(lesion, Lesion):
            out.append(lesion)
        elif isinstance(lesion, (int, np.integer)) or (isinstance(lesion, Sequence) and not isinstance(lesion, str)):
            out.append(Lesion(lesion))  # type: ignore[arg-type]
        else:
            raise TypeError(f"lesion {i}: expected a Lesion, a unit index or a sequence of unit indices; got {type(lesion).__name__} instead")
    if not out:
        raise ValueError(f"The lesions parameter of {caller} must hold at least one lesion; got an empty sequence instead.")
    # plain zero lesions of integer units (the common sweep): checked in a few C-level passes
    units = [lesion.units for lesion in out]
    if {lesion.method for lesion in out} == {"zero"} and all(units) and set(map(type, itertools.chain.from_iterable(units))) == {int}:
        return out
    for i, lesion in enumerate(out):
        if lesion.method not in METHODS:
            raise ValueError(f"lesion {i}: method must be one of {', '.join(map(repr, METHODS))}; got {lesion.method!r} instead")
        if not lesion.units or not all(isinstance(u, int) for u in lesion.units):
            raise ValueError(f"lesion {i}: units must be a non-empty sequence of integer channel indices; got {lesion.units!r} instead")
        if lesion.method == "noise":
            if lesion.noise not in NOISE_MODES:
                raise ValueError(f"lesion {i}: noise must be 'add' or 'replace'; got {lesion.noise!r} instead")
            if not (math.isfinite(lesion.std) and lesion.std >= 0):
                raise ValueError(f"lesion {i}: std must be a finite number >= 0; got {lesion.std!r} instead")
        if lesion.method == "clamp" and not math.isfinite(lesion.value):
            raise ValueError(f"lesion {i}: value must be finite; got {lesion.value!r} instead")
    return out


def _check_lesions_against(lesions: list[Lesion], region: str, sample_shape: tuple[int, ...], means: Any) -> torch.Tensor | None:
    n_channel = sample_shape[0]
    units = list(itertools.chain.from_iterable(lesion.units for lesion in lesions))
    if min(units) < 0 or max(units) >= n_channel:
        for i, lesion in enumerate(lesions):
            bad = [u for u in lesion.units if not 0 <= u < n_channel]
            if bad:
                raise ValueError(f"lesion {i}: units must be channel indices in [0, {n_channel}) of region {region!r} "
                                 f"(output shape per stimulus {sample_shape}); got {bad} instead")
    if means is None:
        uses_mean = [i for i, lesion in enumerate(lesions) if lesion.method == "mean"]
        if uses_mean:
            raise ValueError(f"lesion {uses_mean[0]} uses method 'mean', which needs means: the units' mean output over a reference "
                             f"stimulus set, of shape ({n_channel},) or {sample_shape} (see unit_means); got None instead")
        return None
    means_t = torch.as_tensor(np.asarray(means) if not isinstance(means, torch.Tensor) else means).detach().cpu()
    shapes = [(n_channel,), sample_shape]
    if tuple(means_t.shape) not in shapes:
        raise ValueError(f"means must have shape ({n_channel},) (one per channel) or {sample_shape} (one stimulus's output) for region "
                         f"{region!r}; got shape {tuple(means_t.shape)} instead")
    if tuple(means_t.shape) == (n_channel,):
        means_t = means_t.reshape(n_channel, *([1] * (len(sample_shape) - 1)))
    return means_t


def _as_stimuli(x: Any, caller: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        found = f"shape {tuple(x.shape)}" if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"The x parameter of {caller} must be a tensor or array of stimuli, shape (stimulus, ...), with at least one stimulus; got {found} instead.")
    return x


def _check_int(value: Any, name: str, caller: str, low: int, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"The {name} parameter of {caller} must be an int >= {low}{' or None' if none_ok else ''}; got {value!r} instead.")


def _sample_shape(region: str, h: torch.Tensor) -> tuple[int, ...]:
    if h.ndim < 2:
        raise ValueError(f"region {region!r} outputs shape {tuple(h.shape)}; expected (stimulus, unit) or (stimulus, channel, ...)")
    return tuple(int(s) for s in h.shape[1:])


# ---------------------------------------------------------------- running


@contextmanager
def _session(model: nn.Module, device: str | torch.device) -> Iterator[tuple[nn.Module, torch.device]]:
    """Eval mode and inference mode for the call; every module's train/eval flag restored after.

    When ``device`` differs from the model's, a copy of the model is moved there, so the caller's
    model is left where it was.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"The model parameter must be a torch.nn.Module; got {type(model).__name__} instead.")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    modes = [(m, m.training) for m in every_module(model)]
    try:
        if any(training for _, training in modes):
            model.eval()
        net = model if device_of(model) == dev else copy.deepcopy(model).to(dev).eval()
        with torch.inference_mode():
            yield net, dev
    finally:
        for m, training in modes:
            if m.training != training:
                m.training = training


def device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) are; the CPU for a model without any.

    >>> device_of(nn.Linear(2, 2))
    device(type='cpu')
    """
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


#: seconds a reading of the host's available memory is reused (reading it costs ~0.1 ms, as much
#: as a whole small sweep)
HOST_MEMORY_TTL = 1.0
_host_memory: tuple[float, int] = (-math.inf, 0)


def _available_bytes(device: torch.device) -> int:
    global _host_memory
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    read_at, available = _host_memory
    now = time.monotonic()
    if now - read_at > HOST_MEMORY_TTL:
        available = _read_host_memory()
        _host_memory = (now, available)
    return available


def _read_host_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 2 << 30


def _plan(n_stimulus: int, n_lesion: int, row_bytes: float, frontier_bytes: float, budget: int, pack_size: int | None) -> tuple[int, int]:
    """(stimuli per chunk, lesions per pack) so that pack * chunk * row_bytes + chunk * frontier_bytes <= budget."""
    per_stimulus = max(row_bytes, 1.0)
    if pack_size is not None:
        chunk = int(max(1, min(n_stimulus, budget // (pack_size * per_stimulus + frontier_bytes))))
        return chunk, min(pack_size, n_lesion)
    chunk = int(max(1, min(n_stimulus, budget // (per_stimulus + frontier_bytes))))
    pack = int(max(1, min(n_lesion, (budget - chunk * frontier_bytes) // (chunk * per_stimulus))))
    return chunk, pack


class _FrontierCache:
    """The frontier of every stimulus: in memory, or in temporary zarr arrays read back by chunk."""

    def __init__(self, specs: dict[str, tuple[tuple[int, ...], torch.dtype, torch.memory_format]], n: int, chunk_rows: int, on_disk: bool) -> None:
        self.specs = specs
        self.on_disk = on_disk
        self.n = n
        self.folder: str | None = None
        self.arrays: dict[str, Any] = {}
        if not on_disk:  # in memory: made at the first write (see write)
            return
        import zarr

        self.folder = tempfile.mkdtemp(prefix="neurorecord-lesion-")
        for i, (key, (shape, dtype, _)) in enumerate(specs.items()):
            stored = _stored_dtype(dtype)
            self.arrays[key] = zarr.create_array(store=os.path.join(self.folder, f"frontier-{i}"), shape=(n, *shape),
                                                 chunks=(chunk_rows, *shape), dtype=torch.empty(0, dtype=stored).numpy().dtype,
                                                 compressors=None)

    def write(self, start: int, values: dict[str, torch.Tensor], stimuli: torch.Tensor) -> None:
        """Keep the frontier ``values`` of stimuli ``start ..``, computed from ``stimuli``."""
        if not self.on_disk and not self.arrays:
            if start == 0 and all(v.shape[0] == self.n and v.device.type == "cpu" for v in values.values()):  # all at once: kept as it is,
                shared = stimuli.untyped_storage().data_ptr()  # except where it is the stimuli themselves (a view of them)
                self.arrays = {k: v.clone() if v.untyped_storage().data_ptr() == shared else v for k, v in values.items()}
                return
            # kept in the layout the network produced (channels-last convs stay so)
            self.arrays = {k: torch.empty((self.n, *shape), dtype=dtype, memory_format=fmt) for k, (shape, dtype, fmt) in self.specs.items()}
        for key, v in values.items():
            stop = start + v.shape[0]
            if self.on_disk:
                self.arrays[key][start:stop] = v.detach().cpu().view(_stored_dtype(v.dtype)).numpy()
            else:
                self.arrays[key][start:stop] = v.detach().cpu()

    def read(self, start: int, stop: int, device: torch.device) -> dict[str, torch.Tensor]:
        if not self.on_disk:
            return {k: a[start:stop].to(device) for k, a in self.arrays.items()}
        out = {}
        for k, a in self.arrays.items():
            _, dtype, fmt = self.specs[k]
            out[k] = torch.from_numpy(np.asarray(a[start:stop])).view(dtype).to(device).contiguous(memory_format=fmt)
        return out

    def close(self) -> None:
        self.arrays = {}
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def _stored_dtype(dtype: torch.dtype) -> torch.dtype:
    """A dtype numpy knows with the same item size (bfloat16 is stored as int16)."""
    try:
        torch.empty(0, dtype=dtype).numpy()
        return dtype
    except TypeError:
        return {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[torch.empty(0, dtype=dtype).element_size()]


@dataclass
class LesionResult:
    """What :func:`lesion_predictions` computed.

    Attributes
    ----------
    predictions
        (n_lesion, n_stimulus) int64: the predicted class of each stimulus under each lesion.
    intact_predictions
        (n_stimulus,) int64: the predicted class without lesion.
    logits
        (n_lesion, n_stimulus, n_class), with ``return_logits=True``, else ``None``.
    intact_logits
        (n_stimulus, n_class), with ``return_logits=True``, else ``None``.
    split_kind
        How the network was cut: ``"sequential"``, ``"fx"`` or ``"full"``.
    pack_size
        Lesions run per downstream pass.
    stimulus_chunk
        Stimuli per downstream pass (each pass has ``pack_size * stimulus_chunk`` rows).
    cache
        Where the frontier was kept: ``"memory"`` or ``"zarr"``.
    shortcut
        Whether the shortcut (see ``shortcut`` in :func:`lesion_predictions`) was used.
    row_bytes
        Bytes one row (one stimulus under one lesion) of a downstream pass allocates, measured on
        the probe pass (every tensor a torch function returns, views excluded: an upper bound),
        plus the row's copy of the frontier.
    frontier_bytes
        Bytes of the cached frontier per stimulus.
    upstream_batch
        Stimuli per upstream pass.
    downstream
        With ``downstream=[...]``: the change of those regions' activity under each lesion
        (:class:`~neurorecord.lesion.downstream.DownstreamActivity`), else ``None``.
    """

    predictions: torch.Tensor
    intact_predictions: torch.Tensor
    logits: torch.Tensor | None
    intact_logits: torch.Tensor | None
    split_kind: str
    pack_size: int
    stimulus_chunk: int
    cache: str
    shortcut: bool
    row_bytes: float
    frontier_bytes: int
    upstream_batch: int
    downstream: DownstreamActivity | None = None


def obvious_predictions(model: nn.Module, x: Any, region: str, lesions: Sequence[Lesion | int | Sequence[int]], *,
                        means: Any = None, seed: int = 0, device: str | torch.device = "cpu", batch_size: int = 1024,
                        return_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Predictions under each lesion, the obvious way: the whole network over every stimulus, per lesion.

    A forward hook on ``region`` applies the lesion (at every call of the region); it is removed
    before returning, also when the call raises. The model is run in eval mode and left in the
    train/eval mode it had.

    Parameters
    ----------
    model
        The subject's module; ``model(x)`` returns logits (stimulus, class).
    x
        Stimuli, tensor or array of shape (stimulus, ...).
    region
        The lesioned region, a name from ``model.named_modules()``.
    lesions
        :class:`Lesion` objects; a bare int or sequence of ints is a zero lesion of those units.
    means
        The units' means, (channel,) or one stimulus's output shape; needed by ``mean`` lesions.
    seed
        Seeds the noise of ``noise`` lesions (see the module docstring).
    device
        Where to run (``"cpu"``, ``"cuda"``); a copy of the model is moved there if needed.
    batch_size
        Stimuli per forward pass.
    return_logits
        Also return the logits.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Predictions (n_lesion, n_stimulus) int64; with ``return_logits``, also the logits
        (n_lesion, n_stimulus, n_class).

    Raises
    ------
    RegionError
        If ``region`` is not a module of ``model``.
    ValueError, TypeError
        If an argument is malformed (the message names it).

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> _ = torch.manual_seed(0)
    >>> obvious_predictions(digits_mlp(), torch.rand(5, 1, 8, 8), "fc2", [0, 1, [2, 3]]).shape
    torch.Size([3, 5])
    """
    caller = "obvious_predictions"
    x = _as_stimuli(x, caller)
    lesions = _as_lesions(lesions, caller)
    _check_int(batch_size, "batch_size", caller, 1)
    _check_int(seed, "seed", caller, 0)
    _check_region(model, region)
    n = x.shape[0]
    with _session(model, device) as (net, dev):
        full = Split("full", region, None, model=net)
        h = full.region_output(x[:1].to(dev))
        shape = _sample_shape(region, h)
        means_t = _check_lesions_against(lesions, region, shape, means)
        predictions = torch.empty(len(lesions), n, dtype=torch.int64)
        logits_all: torch.Tensor | None = None
        for index, lesion in enumerate(lesions):
            pack = _pack([lesion], index, shape, means_t, seed, h.dtype, dev)
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                logits = full.downstream({"input": x[start:stop].to(dev)}, partial(apply_lesions, pack=pack, start=start, stop=stop))
                predictions[index, start:stop] = logits.argmax(1).cpu()
                if return_logits:
                    if logits_all is None:
                        logits_all = torch.empty(len(lesions), n, logits.shape[1], dtype=logits.dtype)
                    logits_all[index, start:stop] = logits.cpu()
    if return_logits:
        assert logits_all is not None
        return predictions, logits_all
    return predictions


def lesion_predictions(model: nn.Module, x: Any, region: str, lesions: Sequence[Lesion | int | Sequence[int]], *,
                       means: Any = None, seed: int = 0, device: str | torch.device = "cpu", pack_size: int | None = None,
                       batch_size: int | None = None, memory_budget: int | None = None, cache_budget: int | None = None,
                       return_logits: bool = False, shortcut: bool = True, downstream: Sequence[str] | None = None) -> LesionResult:
    """Predictions under each lesion, fast: upstream once, downstream on packs of lesions.

    Gives the same per-stimulus predictions as :func:`obvious_predictions` (see the module
    docstring for how). When ``device`` differs from the model's, a copy of the model runs there
    and the model itself is not moved. The model is run in eval mode under
    ``torch.inference_mode`` and left in the train/eval mode it had, with no hook left on it,
    also when the call raises.

    Parameters
    ----------
    model, x, region, lesions, means, seed, device
        As in :func:`obvious_predictions`.
    pack_size
        Lesions per downstream pass; by default as many as fit ``memory_budget`` with every
        stimulus (or, when one lesion over every stimulus does not fit, one lesion over as many
        stimuli as fit).
    batch_size
        Stimuli per upstream pass. Default: as many as make a pass of about
        ``CPU_UPSTREAM_BYTES`` (on the CPU; larger passes fall out of the caches) or of
        ``memory_budget`` (on ``cuda``), from the bytes per stimulus a probe pass measures.
    memory_budget
        Bytes one packed downstream pass may allocate (``pack_size * stimulus_chunk`` rows times
        the bytes per row measured on a probe pass, plus the frontier of ``stimulus_chunk``
        stimuli). Default: on the CPU, a quarter of the available memory but at most
        ``CPU_PASS_BYTES`` (8 MiB: larger passes fall out of the caches and run slower); on
        ``cuda``, half of the free GPU memory.
    cache_budget
        Bytes of frontier kept in memory; a larger frontier goes to a temporary zarr array,
        removed afterwards. Default a quarter of the available memory.
    return_logits
        Also return the logits.
    shortcut
        (Default ``True``.) Go below the cost of the downstream forward where every lesion is a single-unit
        ``zero``/``mean``/``clamp`` lesion, the split is ``"sequential"``, and the region's
        output goes straight into an ``nn.Linear`` (a (stimulus, unit) region), through an
        ``nn.Flatten`` into one, or into an ``nn.Conv2d`` (ungrouped, zero padding) (a
        (stimulus, channel, height, width) region): that layer's lesioned output is its intact
        output plus the lesioned unit's own contribution (its change times its weights: a
        rank-1 update; for a conv channel, its block of flattened features, or the convolution of
        that channel's change alone), instead of being recomputed. Equal to the recomputation up
        to float rounding (about 1e-6 relative), so predictions agree except on exact ties.
        ``False`` recomputes every layer after the region, with the kernels (and the rounding)
        of the unsplit network. Ignored (``result.shortcut`` is ``False``) where it does not apply, where the model
        carries forward hooks (the shortcut bypasses module calls that hooks would see), or
        where a ``downstream`` region ends before that linear layer.
    downstream
        Names of modules downstream of ``region`` (their output depends on the region's output,
        e.g. ``["fc3", "out"]``) whose activity change under each lesion is measured in the same
        passes: ``result.downstream``, a
        :class:`~neurorecord.lesion.downstream.DownstreamActivity`.

    Returns
    -------
    LesionResult

    Raises
    ------
    RegionError
        If ``region`` is not a module of ``model``, or a ``downstream`` name is not a module
        downstream of it (the message lists those that are).
    ValueError, TypeError
        If an argument is malformed (the message names it).

    Warns
    -----
    UnsplittableModelWarning
        Once, when the model cannot be cut at the region and every lesion reruns the full network.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> _ = torch.manual_seed(0)
    >>> model, x = digits_mlp(), torch.rand(5, 1, 8, 8)
    >>> result = lesion_predictions(model, x, "fc2", single_unit_lesions(100), downstream=["fc3"])
    >>> result.predictions.shape, result.split_kind
    (torch.Size([100, 5]), 'sequential')
    >>> torch.equal(result.predictions, obvious_predictions(model, x, "fc2", single_unit_lesions(100)))
    True
    >>> result.downstream.relative_change.shape  # (lesion, downstream region)
    (100, 1)
    """
    caller = "lesion_predictions"
    x = _as_stimuli(x, caller)
    lesions = _as_lesions(lesions, caller)
    _check_int(batch_size, "batch_size", caller, 1, none_ok=True)
    _check_int(seed, "seed", caller, 0)
    _check_int(pack_size, "pack_size", caller, 1, none_ok=True)
    _check_int(memory_budget, "memory_budget", caller, 1, none_ok=True)
    _check_int(cache_budget, "cache_budget", caller, 0, none_ok=True)
    names = _as_downstream(downstream, caller)
    _check_region(model, region)
    n, n_lesion = x.shape[0], len(lesions)
    with _session(model, device) as (net, dev):
        probe = x[: min(n, 3)].to(dev)
        if names:
            check_downstream(net, region, names, probe[:1])
        split = _split(net, region, probe, names)  # the region was checked above
        specs, frontier_bytes, shape, dtype = _layout(split, region, probe)
        upstream_bytes = split.upstream_bytes
        means_t = _check_lesions_against(lesions, region, shape, means)
        everything = _pack(lesions, 0, shape, means_t, seed, dtype, dev)
        linear_at = _shortcut_position(split, net, everything, shape, names) if shortcut else None
        row_bytes = _row_bytes(split, net, _runner(split, linear_at, _Meter(names, 1) if names else None), everything, probe,
                               return_logits, (None if linear_at is None else linear_at[0], tuple(names)))

        available = _available_bytes(dev)
        host = available if dev.type == "cpu" else _available_bytes(torch.device("cpu"))
        budget = memory_budget if memory_budget is not None else (available // 2 if dev.type == "cuda" else min(available // 4, CPU_PASS_BYTES))
        chunk, pack = _plan(n, n_lesion, row_bytes, frontier_bytes, budget, pack_size)
        if batch_size is None:
            batch_size = int(max(1, min(n, (CPU_UPSTREAM_BYTES if dev.type == "cpu" else budget) // max(upstream_bytes, 1.0))))
        cache = _FrontierCache(specs, n, min(n, batch_size), on_disk=n * frontier_bytes > (host // 4 if cache_budget is None else cache_budget))
        meter = _Meter(names, n_lesion) if names else None
        runner = _runner(split, linear_at, meter)
        try:
            for start in range(0, n, batch_size):
                stimuli = x[start : start + batch_size].to(dev)
                cache.write(start, split.upstream(stimuli), stimuli)
            packs = [(i * pack, p) for i, p in enumerate(everything.split(pack))]
            predictions = torch.empty(n_lesion, n, dtype=torch.int64)
            intact = torch.empty(n, dtype=torch.int64)
            logits_all = intact_logits = None
            with runner.active(net):
                for start in range(0, n, chunk):
                    stop = min(n, start + chunk)
                    logits = runner.start(cache.read(start, stop, dev), start, stop, pack)
                    intact[start:stop] = logits.max(1).indices.cpu()  # = argmax (the first of equal maxima), faster
                    if return_logits:
                        if logits_all is None:
                            logits_all = torch.empty(n_lesion, n, logits.shape[1], dtype=logits.dtype)
                            intact_logits = torch.empty(n, logits.shape[1], dtype=logits.dtype)
                        intact_logits[start:stop] = logits.cpu()  # type: ignore[index]
                    # written in place on the CPU; on a GPU, copied back once per chunk
                    chunk_predictions = predictions[:, start:stop] if dev.type == "cpu" else torch.empty(n_lesion, stop - start, dtype=torch.int64, device=dev)
                    for first, p in packs:
                        m = len(p)
                        if logits_all is None:
                            runner.predictions(p, out=chunk_predictions[first : first + m])
                            continue
                        logits = runner.run(p).reshape(m, stop - start, -1)
                        chunk_predictions[first : first + m] = logits.max(2).indices
                        logits_all[first : first + m, start:stop] = logits.cpu()
                    if dev.type != "cpu":
                        predictions[:, start:stop] = chunk_predictions.cpu()
        finally:
            cache.close()
    return LesionResult(predictions, intact, logits_all, intact_logits, split.kind, pack, chunk, "zarr" if cache.on_disk else "memory",
                        linear_at is not None, row_bytes, frontier_bytes, batch_size, meter.result() if meter is not None else None)


def _layout(split: Split, region: str, probe: torch.Tensor) -> tuple[dict[str, Any], int, tuple[int, ...], torch.dtype]:
    """The frontier's layout (shape, dtype, memory format per value), its bytes per stimulus, and
    the region's output shape and dtype per stimulus: measured on the probe stimuli once per
    model state (kept in ``split.measured``)."""
    if "layout" not in split.measured:
        frontier = split.example_frontier if split.example_frontier is not None else split.upstream(probe)
        h = frontier[split.region_key] if split.region_key is not None else split.region_output(probe)
        split.measured["layout"] = ({k: (tuple(v.shape[1:]), v.dtype, memory_format(v)) for k, v in frontier.items()},
                                    sum(v[0].numel() * v.element_size() for v in frontier.values()), _sample_shape(region, h), h.dtype)
    return split.measured["layout"]


def _row_bytes(split: Split, net: nn.Module, runner: _Runner, lesions: LesionPack, probe: torch.Tensor, return_logits: bool,
               shortcut_key: tuple[Any, ...]) -> float:
    """Bytes one (lesion, stimulus) row of a downstream pass allocates: measured on one probe pass
    of the first lesion over the probe stimuli (every tensor a torch function returns, views
    excluded), plus the row's copy of the frontier where the runner keeps one; bounded without a
    pass where the margin test decides. Once per model state and kind of pass (kept in
    ``split.measured``)."""
    first = lesions.part(0, 1)
    key = ("row_bytes", type(runner).__name__, shortcut_key, first.offsets[1], bool(first.noise), first.zero, probe.shape[0], return_logits)
    if key not in split.measured:
        if not return_logits and isinstance(runner, _ShortcutRunner) and runner.decides_by_margin:
            split.measured[key] = runner.margin_pair_bytes()
        else:
            frontier = split.example_frontier if split.example_frontier is not None else split.upstream(probe)
            with runner.active(net):
                runner.start(frontier, 0, probe.shape[0], 1)
                with _ByteCounter() as counter:
                    runner.run(first)
            split.measured[key] = math.ceil(counter.total / probe.shape[0]) + (split.measured["layout"][1] if runner.buffered else 0)
    return split.measured[key]


def _as_downstream(downstream: Any, caller: str) -> list[str]:
    if downstream is None:
        return []
    if isinstance(downstream, (str, bytes)) or not hasattr(downstream, "__iter__"):
        raise TypeError(f"The downstream parameter of {caller} must be a sequence of module names (such as ['fc3', 'out']); "
                        f"got {type(downstream).__name__} {downstream!r} instead.")
    names = list(downstream)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"The downstream parameter of {caller} must hold module names (str); got {type(name).__name__} {name!r} instead.")
    twice = [name for i, name in enumerate(names) if name in names[:i]]
    if twice:
        raise ValueError(f"The downstream parameter of {caller} names {twice[0]!r} twice; name each region once.")
    return names


# ---------------------------------------------------------------- downstream runners


class _Runner(abc.ABC):
    """Runs the downstream part for one chunk of stimuli: the intact pass (:meth:`start`), then
    one pass per pack of lesions (:meth:`run`), feeding the meter of downstream activity."""

    #: whether the runner keeps a packed copy of the frontier (counted in the bytes per row)
    buffered = False

    def __init__(self, split: Split, meter: _Meter | None) -> None:
        self.split = split
        self.meter = meter
        self.values: dict[str, torch.Tensor] = {}
        self.start_ = self.stop_ = 0

    @contextmanager
    def active(self, net: nn.Module) -> Iterator[None]:
        """Forward hooks of the meter on the downstream regions, for the block's duration."""
        if self.meter is None:
            yield
        else:
            with self.meter.hooks(net):
                yield

    @abc.abstractmethod
    def start(self, values: dict[str, torch.Tensor], start: int, stop: int, copies: int) -> torch.Tensor:
        """Take the frontier of stimuli ``start .. stop - 1``; return their intact logits."""

    @abc.abstractmethod
    def run(self, pack: LesionPack) -> torch.Tensor:
        """Logits of the chunk's stimuli under each lesion of ``pack``: (len(pack) * stimuli, class)."""

    def predictions(self, pack: LesionPack, out: torch.Tensor) -> None:
        """Write the predicted classes of the chunk's stimuli under each lesion of ``pack`` into
        ``out``, int64 (len(pack), stimuli)."""
        out.copy_(self.run(pack).reshape(len(pack), self.stop_ - self.start_, -1).max(2).indices)  # = argmax, faster

    def _begin(self, pack: LesionPack | None) -> None:
        if self.meter is not None:
            self.meter.begin(None if pack is None else int(pack.index[0]), 1 if pack is None else len(pack), self.stop_ - self.start_)

    def _end(self) -> None:
        if self.meter is not None:
            self.meter.end()


class _BufferRunner(_Runner):
    """For ``"sequential"`` and ``"fx"`` splits: the chunk's frontier, repeated ``copies`` times
    (lesion-major), stays in buffers across packs. Each pack's lesions are written into the
    region's copies, the downstream part runs, and the written units are put back from the intact
    output before the next pack. Should the downstream part write into its inputs (an in-place
    operation: the buffers' version counters show it), the buffers are filled again instead."""

    buffered = True

    def start(self, values: dict[str, torch.Tensor], start: int, stop: int, copies: int) -> torch.Tensor:
        self.values, self.start_, self.stop_ = values, start, stop
        n = stop - start
        with torch.inference_mode(False):  # normal tensors: their version counters record in-place writes
            self.buffers = {k: torch.empty((copies * n, *v.shape[1:]), dtype=v.dtype, device=v.device, memory_format=memory_format(v))
                            for k, v in values.items()}
        self._fill()
        self._by_channel: torch.Tensor | None = None
        return self._pass(None)

    def run(self, pack: LesionPack) -> torch.Tensor:
        return self._pass(pack)

    def _restore(self, pack: LesionPack) -> None:
        """Put back the region's intact output where ``pack`` wrote."""
        key = self.split.region_key
        assert key is not None
        h = self.values[key]
        if self._by_channel is None:  # (channel, stimulus, ...): the units' values, read by channel
            self._by_channel = h.transpose(0, 1).contiguous()
        self.buffers[key][: len(pack) * h.shape[0]].view(len(pack), *h.shape)[pack.rows, :, pack.channels] = self._by_channel[pack.channels]

    def _fill(self) -> None:
        for k, b in self.buffers.items():
            v = self.values[k]
            b.view(-1, *v.shape).copy_(v.unsqueeze(0).expand(b.shape[0] // v.shape[0], *v.shape))
        self._dirty = False
        self._written: LesionPack | None = None

    def _pass(self, pack: LesionPack | None) -> torch.Tensor:
        key = self.split.region_key
        assert key is not None
        h = self.values[key]
        n = h.shape[0]
        if self._dirty:
            self._fill()
        elif self._written is not None:  # put back what the previous pack wrote
            self._restore(self._written)
            self._written = None
        m = 1 if pack is None else len(pack)
        views = {k: b[: m * n] for k, b in self.buffers.items()}
        if pack is not None:
            _write_lesions(views[key].view(m, *h.shape), h.unsqueeze(0), pack, self.start_, self.stop_)
            self._written = pack
        versions = [b._version for b in self.buffers.values()]
        self._begin(pack)
        logits = self.split.downstream_packed(views)
        self._end()
        self._dirty = any(b._version != v for b, v in zip(self.buffers.values(), versions))
        return logits


class _FullRunner(_Runner):
    """For a ``"full"`` split: every pass reruns the whole network, a hook lesioning the region."""

    def start(self, values: dict[str, torch.Tensor], start: int, stop: int, copies: int) -> torch.Tensor:
        self.values, self.start_, self.stop_ = values, start, stop
        self._begin(None)
        logits = self.split.downstream(values)
        self._end()
        return logits

    def run(self, pack: LesionPack) -> torch.Tensor:
        self._begin(pack)
        logits = self.split.downstream(self.values, partial(apply_lesions, pack=pack, start=self.start_, stop=self.stop_), n_copies=len(pack))
        self._end()
        return logits


class _ShortcutRunner(_Runner):
    """The shortcut: the first layer after the region (``downstream_modules[at]``: an ``nn.Linear``,
    one after an ``nn.Flatten`` when ``at == 1``, or an ``nn.Conv2d``) is linear, so a single-unit
    lesion changes its output by exactly that unit's own contribution, which is added to the intact
    output ``z`` instead of recomputing the layer:

    - linear: ``z + (replacement - h_u) * W[:, u]`` (rank 1);
    - flatten, linear: ``z + (replacement - h_u) @ W[:, block_u].T``, ``block_u`` the flattened
      features of channel ``u``;
    - conv: ``z + conv(replacement - h_u, W[:, u])``, the convolution of the channel's change alone
      (bias excluded), for all lesions of a pack at once as one grouped convolution.

    Then the rest of the chain runs. Downstream regions are read at their position in the chain
    (no hooks).

    When that layer is a linear readout (the last module, fed by a (stimulus, unit) region) and
    only predictions are asked for, most lesions are decided without any logits: lesioning unit
    ``u`` moves the gap between the intact winner ``c`` and any class ``k`` by
    ``d * (W[c, u] - W[k, u])``, at most ``|d| * (max W[:, u] - min W[:, u])``; where the intact
    margin (top logit minus the runner-up) exceeds that bound by more than a rounding allowance,
    the prediction is the intact one. Only the other (lesion, stimulus) pairs get their logits
    computed and compared.
    """

    #: Rounding allowance of the margin test, relative to the largest logit magnitude: pairs
    #: closer than this to a change of winner are computed in full, so float rounding cannot
    #: decide them differently from the full recomputation.
    MARGIN_TOLERANCE = 1e-4

    def __init__(self, split: Split, meter: _Meter | None, at: int, capture: dict[int, list[str]]) -> None:
        super().__init__(split, meter)
        self.modules = split.downstream_modules
        self.at = at
        self.layer: nn.Linear | nn.Conv2d = self.modules[at]  # type: ignore[assignment]
        self.capture = capture
        #: the margin test's per-chunk values (winner, margin, weight spread, weights by unit), made on first use
        self._readout: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @contextmanager
    def active(self, net: nn.Module) -> Iterator[None]:
        yield  # the chain is run module by module: the downstream regions are read where they end

    def start(self, values: dict[str, torch.Tensor], start: int, stop: int, copies: int) -> torch.Tensor:
        self.values, self.start_, self.stop_ = values, start, stop
        self._readout = None
        key = self.split.region_key
        assert key is not None
        h = self.h = values[key]
        self._by_unit: torch.Tensor | None = None
        self._begin(None)
        out = h
        for i, module in enumerate(self.modules):
            out = module(out)
            if i == self.at:
                self.z = out
                if i < len(self.modules) - 1:
                    out = out.clone()  # z serves every pack: the rest of the chain must not write into it
            self._observe(i, out if i != self.at else self.z)
        self._end()
        return out

    @property
    def by_unit(self) -> torch.Tensor:
        """The region's output laid out to be read unit by unit: (unit, stimulus) for a linear
        region, (channel, stimulus, position) before Flatten, (stimulus, channel, y, x) before a
        conv; made on first use in a chunk."""
        if self._by_unit is None:
            h = self.h
            if h.ndim == 2:
                self._by_unit = h.T.contiguous()
            elif isinstance(self.layer, nn.Linear):
                self._by_unit = h.reshape(h.shape[0], h.shape[1], -1).transpose(0, 1).contiguous()
            else:
                self._by_unit = h.contiguous()
        return self._by_unit

    def run(self, pack: LesionPack) -> torch.Tensor:
        m, z, layer = len(pack), self.z, self.layer
        n = z.shape[0]
        units = pack.channels  # one unit per lesion, in lesion order
        weight = layer.weight
        if isinstance(layer, nn.Conv2d):
            change = pack.values.unsqueeze(0) - self.by_unit[:, units]  # (stimulus, lesion, y, x)
            kernels = weight[:, units].transpose(0, 1).reshape(m * weight.shape[0], 1, *weight.shape[2:])
            added = F.conv2d(change, kernels, None, layer.stride, layer.padding, layer.dilation, groups=m)  # type: ignore[arg-type]
            out = torch.empty((m * n, *z.shape[1:]), dtype=z.dtype, device=z.device, memory_format=memory_format(z))
            torch.add(z.unsqueeze(0), added.unflatten(1, (m, weight.shape[0])).transpose(0, 1), out=out.view(m, *z.shape))
        elif self.by_unit.ndim == 2:
            change = pack.values.reshape(m, 1) - self.by_unit[units]  # (lesion, stimulus)
            out = torch.empty((m, n, z.shape[1]), dtype=z.dtype, device=z.device)
            torch.addcmul(z.unsqueeze(0), change.unsqueeze(2), weight[:, units].T.unsqueeze(1), out=out)
        else:
            change = pack.values.reshape(m, 1, -1) - self.by_unit[units]  # (lesion, stimulus, position)
            block = weight.view(weight.shape[0], self.by_unit.shape[0], -1)[:, units].permute(1, 2, 0)  # (lesion, position, out)
            out = torch.baddbmm(z.unsqueeze(0), change, block)
        out = out.reshape(m * n, *z.shape[1:])
        self._begin(pack)
        self._observe(self.at, out)
        for i in range(self.at + 1, len(self.modules)):
            out = self.modules[i](out)
            self._observe(i, out)
        self._end()
        return out

    @property
    def decides_by_margin(self) -> bool:
        """Whether :meth:`predictions` uses the margin test: the linear layer is the readout, fed by
        a (stimulus, unit) region, no downstream activity is measured, and it runs on the CPU in
        float32 or float64 (in numpy: tens of thousands of small operations' worth of work, where
        numpy's per-call cost is a fraction of torch's; on a GPU the logits are computed instead)."""
        weight = self.layer.weight
        return (self.meter is None and self.at == 0 == len(self.modules) - 1 and isinstance(self.layer, nn.Linear)
                and weight.device.type == "cpu" and weight.dtype in (torch.float32, torch.float64))

    def margin_pair_bytes(self) -> int:
        """Bytes :meth:`predictions` allocates per (lesion, stimulus) pair at most (every pair
        undecided): the change and its bound (3 values), the undecided flag, the pair's flat
        position, stimulus and lesion (3 int64), and its intact logits, new logits and winner."""
        weight = self.layer.weight
        return 3 * weight.element_size() + 1 + 3 * 8 + 2 * weight.shape[0] * weight.element_size() + 8

    def predictions(self, pack: LesionPack, out: torch.Tensor) -> None:
        if not self.decides_by_margin:
            super().predictions(pack, out)
            return
        z = self.z.numpy()
        if self._readout is None:
            weight = self.layer.weight.numpy()
            top2 = np.partition(z, -2, axis=1)[:, -2:] if z.shape[1] > 1 else np.concatenate([np.full_like(z, -np.inf), z], 1)
            allowance = self.MARGIN_TOLERANCE * max(float(np.abs(z).max()), 1.0)
            # (stimulus,) winners and margins; (unit,) spread of each unit's readout weights; (unit, class) weights
            self._readout = (z.argmax(1), top2[:, 1] - top2[:, 0] - allowance, weight.max(0) - weight.min(0), np.ascontiguousarray(weight.T))
        winner, margin, spread, by_unit_weight = self._readout
        m, run = len(pack), pack.unit_run
        units = pack.channels.numpy() if run is None else np.arange(run, run + m)
        columns = units if run is None else slice(run, run + m)  # a run of units is read as a slice, not gathered
        # (stimulus, lesion): each lesioned unit's output, its change under the lesion, and the
        # largest move of any gap between two logits that change makes
        h = self.h.numpy()[:, columns]
        change = -h if pack.zero else pack.values.numpy().reshape(1, m) - h
        bound = np.abs(change)
        bound *= spread[columns]
        undecided = np.flatnonzero(bound >= margin[:, None])  # flat (stimulus, lesion) positions
        predicted = out.numpy()
        predicted[:] = winner
        if len(undecided):
            stimulus, lesion = np.divmod(undecided, m)
            logits = z[stimulus] + change.reshape(-1)[undecided, None] * by_unit_weight[units[lesion]]
            predicted[lesion, stimulus] = logits.argmax(1)

    def _observe(self, i: int, value: torch.Tensor) -> None:
        if self.meter is not None:
            for region in self.capture.get(i, ()):
                self.meter.observe(region, value)


def _runner(split: Split, linear_at: tuple[int, dict[int, list[str]]] | None, meter: _Meter | None) -> _Runner:
    if linear_at is not None:
        return _ShortcutRunner(split, meter, *linear_at)
    return _FullRunner(split, meter) if split.kind == "full" else _BufferRunner(split, meter)


def _shortcut_position(split: Split, net: nn.Module, lesions: LesionPack, shape: tuple[int, ...],
                       names: list[str]) -> tuple[int, dict[int, list[str]]] | None:
    """Where the shortcut applies: the position of the linear layer (Linear or Conv2d) in the
    downstream chain, and the position where each downstream region's output is read; else ``None``."""
    modules = split.downstream_modules
    # the shortcut calls leaf modules directly and the linear layer on the intact output only:
    # hooks on the model would not see what they see in a full forward
    if split.kind != "sequential" or not modules or any(m._forward_hooks or m._forward_pre_hooks for m in every_module(net)):
        return None
    if lesions.noise or len(lesions.channels) != len(lesions):  # noise lesions, or lesions of several units
        return None
    first = modules[0]
    if type(first) is nn.Linear and len(shape) == 1:
        at = 0
    elif (type(first) is nn.Flatten and (first.start_dim, first.end_dim) == (1, -1) and len(modules) > 1
          and type(modules[1]) is nn.Linear):
        at = 1
    elif type(first) is nn.Conv2d and len(shape) == 3 and first.groups == 1 and first.padding_mode == "zeros":
        at = 0
    else:
        return None
    capture: dict[int, list[str]] = {}
    for name in names:
        position = _chain_position(modules, net.get_submodule(name))
        if position is None or position < at:
            return None
        capture.setdefault(position, []).append(name)
    return at, capture


def _chain_position(modules: list[nn.Module], module: nn.Module) -> int | None:
    """Index in the flattened chain ``modules`` after which ``module``'s output exists (its last
    leaf), or ``None`` when its leaves are not a run of the chain."""
    leaves = _flatten_chain(module)
    for i in range(len(modules) - len(leaves) + 1):
        if all(a is b for a, b in zip(modules[i : i + len(leaves)], leaves)):
            return i + len(leaves) - 1
    return None


def unit_means(model: nn.Module, x: Any, region: str, *, per: Literal["channel", "unit"] = "channel",
               device: str | torch.device = "cpu", batch_size: int = 1024) -> torch.Tensor:
    """The mean output of a region's units over stimuli ``x``: the ``means`` of ``mean`` lesions.

    Parameters
    ----------
    model, x, region, device, batch_size
        As in :func:`obvious_predictions`.
    per
        ``"channel"``: one mean per channel (over stimuli and positions), shape (channel,);
        ``"unit"``: one mean per element of a stimulus's output (over stimuli), shape of one
        stimulus's output.

    Returns
    -------
    torch.Tensor
        float32, on the CPU (accumulated in float64).

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_cnn
    >>> unit_means(digits_cnn(), torch.rand(4, 1, 8, 8), "conv1").shape
    torch.Size([16])
    """
    caller = "unit_means"
    x = _as_stimuli(x, caller)
    _check_int(batch_size, "batch_size", caller, 1)
    if per not in ("channel", "unit"):
        raise ValueError(f"The per parameter of {caller} must be 'channel' or 'unit'; got {per!r} instead.")
    _check_region(model, region)
    total: torch.Tensor | None = None
    with _session(model, device) as (net, dev):
        full = Split("full", region, None, model=net)
        for start in range(0, x.shape[0], batch_size):
            h = full.region_output(x[start : start + batch_size].to(dev)).double()
            s = h.sum(0) if per == "unit" else h.sum(dim=[0, *range(2, h.ndim)])
            total = s if total is None else total + s
    assert total is not None
    count = x.shape[0] * (1 if per == "unit" else int(np.prod(h.shape[2:])))
    return (total / count).float().cpu()


class LesionSweep:
    """A lesion sweep as an object: store the settings, ``run`` on a model and stimuli.

    Parameters are those of :func:`lesion_predictions`, stored unchanged. ``run`` sets
    ``result_`` (a :class:`LesionResult`), ``predictions_`` and ``intact_predictions_``.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> sweep = LesionSweep("fc1", [0, 1]).run(digits_mlp(), torch.rand(4, 1, 8, 8))
    >>> sweep.predictions_.shape
    torch.Size([2, 4])
    """

    def __init__(self, region: str, lesions: Sequence[Lesion | int | Sequence[int]], *, means: Any = None, seed: int = 0,
                 device: str | torch.device = "cpu", pack_size: int | None = None, batch_size: int | None = None,
                 memory_budget: int | None = None, cache_budget: int | None = None, return_logits: bool = False,
                 shortcut: bool = True, downstream: Sequence[str] | None = None) -> None:
        self.region = region
        self.lesions = lesions
        self.means = means
        self.seed = seed
        self.device = device
        self.pack_size = pack_size
        self.batch_size = batch_size
        self.memory_budget = memory_budget
        self.cache_budget = cache_budget
        self.return_logits = return_logits
        self.shortcut = shortcut
        self.downstream = downstream

    def run(self, model: nn.Module, x: Any) -> LesionSweep:
        """Run the sweep on ``model`` with stimuli ``x``; returns ``self``."""
        self.result_ = lesion_predictions(model, x, self.region, self.lesions, means=self.means, seed=self.seed, device=self.device,
                                          pack_size=self.pack_size, batch_size=self.batch_size, memory_budget=self.memory_budget,
                                          cache_budget=self.cache_budget, return_logits=self.return_logits, shortcut=self.shortcut,
                                          downstream=self.downstream)
        self.predictions_ = self.result_.predictions
        self.intact_predictions_ = self.result_.intact_predictions
        return self
