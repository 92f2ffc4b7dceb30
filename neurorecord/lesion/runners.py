"""Downstream runners: the part of the network after the region, run on packs of lesions.

A runner takes the frontier of one chunk of stimuli (:meth:`~Runner.start`, which also runs
the intact pass) and then runs one pass per pack of lesions (:meth:`~Runner.run` for logits,
:meth:`~Runner.predictions` for predicted classes), feeding the meter of downstream activity
(:mod:`.downstream`) where there is one.

- :class:`BufferRunner` (``"sequential"`` and ``"fx"`` splits): the chunk's frontier is copied
  once into one copy per lesion of a pack; each pack's lesions are written into their copies and
  put back after its pass.
- :class:`FullRunner` (``"full"`` split): every pass reruns the whole network, a forward hook
  lesioning the region.
- :class:`ShortcutRunner`: where the first layer after the region is linear and every lesion
  silences one unit, that layer is updated by each lesioned unit's own contribution instead of
  being recomputed (the ``shortcut``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .downstream import _Meter
from .specs import LesionPack, _write_lesions, apply_lesions
from .split import Split, _ByteCounter, _flatten_chain, memory_format

__all__ = ["BufferRunner", "FullRunner", "ShortcutRunner", "make_runner", "row_bytes", "shortcut_position"]


class Runner(abc.ABC):
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
        out.copy_(self.run(pack).reshape(len(pack), self.stop_ - self.start_, -1).argmax(2))

    def _begin(self, pack: LesionPack | None) -> None:
        if self.meter is not None:
            self.meter.begin(None if pack is None else int(pack.index[0]), 1 if pack is None else len(pack), self.stop_ - self.start_)

    def _end(self) -> None:
        if self.meter is not None:
            self.meter.end()


class BufferRunner(Runner):
    """For ``"sequential"`` and ``"fx"`` splits: the chunk's frontier, repeated ``copies`` times
    (lesion-major), stays in buffers across packs. Each pack's lesions are written into the
    region's copies, the downstream part runs, and the written units are put back from the intact
    output before the next pack. Should the downstream part write into its inputs (an in-place
    operation: the buffers' version counters show it), the buffers are filled again instead."""

    buffered = True

    def start(self, values: dict[str, torch.Tensor], start: int, stop: int, copies: int) -> torch.Tensor:
        self.values, self.start_, self.stop_ = values, start, stop
        self._allocate(copies)
        self._by_channel: torch.Tensor | None = None
        return self._pass(None)

    def _allocate(self, copies: int) -> None:
        """Buffers of ``copies`` copies of the chunk's frontier, filled."""
        n = self.stop_ - self.start_
        with torch.inference_mode(False):  # normal tensors: their version counters record in-place writes
            self.buffers = {k: torch.empty((copies * n, *v.shape[1:]), dtype=v.dtype, device=v.device, memory_format=memory_format(v))
                            for k, v in self.values.items()}
        self._fill()

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
        if m * n > next(iter(self.buffers.values())).shape[0]:  # a larger pack than the buffers hold
            self._allocate(m)
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


class FullRunner(Runner):
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


class ShortcutRunner(Runner):
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
    """

    def __init__(self, split: Split, meter: _Meter | None, at: int, capture: dict[int, list[str]]) -> None:
        super().__init__(split, meter)
        self.modules = split.downstream_modules
        self.at = at
        self.layer: nn.Linear | nn.Conv2d = self.modules[at]  # type: ignore[assignment]
        self.capture = capture

    @contextmanager
    def active(self, net: nn.Module) -> Iterator[None]:
        yield  # the chain is run module by module: the downstream regions are read where they end

    def start(self, values: dict[str, torch.Tensor], start: int, stop: int, copies: int) -> torch.Tensor:
        self.values, self.start_, self.stop_ = values, start, stop
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

    def _observe(self, i: int, value: torch.Tensor) -> None:
        if self.meter is not None:
            for region in self.capture.get(i, ()):
                self.meter.observe(region, value)


def make_runner(split: Split, linear_at: tuple[int, dict[int, list[str]]] | None, meter: _Meter | None) -> Runner:
    """The runner for ``split``: the shortcut where ``linear_at`` says where it applies."""
    if linear_at is not None:
        return ShortcutRunner(split, meter, *linear_at)
    return FullRunner(split, meter) if split.kind == "full" else BufferRunner(split, meter)


def shortcut_position(split: Split, net: nn.Module, lesions: LesionPack, shape: tuple[int, ...],
                      names: list[str]) -> tuple[tuple[int, dict[int, list[str]]] | None, str]:
    """Where the shortcut applies: the position of the linear layer (Linear or Conv2d) in the
    downstream chain, and the position where each downstream region's output is read; else
    ``None`` and why not."""
    from torch.nn.modules import module as torch_module

    modules = split.downstream_modules
    if split.kind != "sequential" or not modules:
        return None, f"the model is not cut as an nn.Sequential chain here (a {split.kind!r} split)"
    # the shortcut calls leaf modules directly and the linear layer on the intact output only:
    # hooks on the model would not see what they see in a full forward
    if (any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
            or torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks):
        return None, "the model carries forward hooks, which the shortcut would bypass"
    if lesions.noise:
        return None, "a noise lesion"
    if len(lesions.channels) != len(lesions):
        return None, "a lesion of several units"
    first = modules[0]
    if type(first) is nn.Linear and len(shape) == 1:
        at = 0
    elif (type(first) is nn.Flatten and (first.start_dim, first.end_dim) == (1, -1) and len(modules) > 1
          and type(modules[1]) is nn.Linear):
        at = 1
    elif type(first) is nn.Conv2d and len(shape) == 3 and first.groups == 1 and first.padding_mode == "zeros":
        at = 0
    else:
        return None, f"the region's output goes into a {type(first).__name__}, not a Linear, Flatten-Linear or Conv2d"
    capture: dict[int, list[str]] = {}
    for name in names:
        position = chain_position(modules, net.get_submodule(name))
        if position is None or position < at:
            return None, f"downstream region {name!r} is not read after the first linear layer"
        capture.setdefault(position, []).append(name)
    return (at, capture), ""


def chain_position(modules: list[nn.Module], module: nn.Module) -> int | None:
    """Index in the flattened chain ``modules`` after which ``module``'s output exists (its last
    leaf), or ``None`` when its leaves are not a run of the chain."""
    leaves = _flatten_chain(module)
    for i in range(len(modules) - len(leaves) + 1):
        if all(a is b for a, b in zip(modules[i : i + len(leaves)], leaves)):
            return i + len(leaves) - 1
    return None


def row_bytes(split: Split, net: nn.Module, runner: Runner, lesions: LesionPack, probe: torch.Tensor, frontier_bytes: int) -> float:
    """Bytes one (lesion, stimulus) row of a downstream pass allocates: measured on one pass of
    the first lesion over the probe stimuli (every tensor a torch function returns, views
    excluded: an upper bound), plus the row's copy of the frontier where the runner keeps one."""
    frontier = split.example_frontier if split.example_frontier is not None else split.upstream(probe)
    with runner.active(net):
        runner.start(frontier, 0, probe.shape[0], 1)
        with _ByteCounter() as counter:
            runner.run(lesions.part(0, 1))
    return float(math.ceil(counter.total / probe.shape[0]) + (frontier_bytes if runner.buffered else 0))
