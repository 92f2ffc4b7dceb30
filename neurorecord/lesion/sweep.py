"""Lesion sweeps: the predictions of a network with each of many lesions, computed fast and exactly.

(Just over 500 lines: the fast sweep and the obvious path it is checked against stay side by side.)

What a lesion is (units, methods, noise) is in :mod:`~neurorecord.lesion.specs`. Two ways to get
the predictions of ``n_lesion`` lesions on ``n_stimulus`` stimuli:

:func:`obvious_predictions`
    for each lesion, the full network over every stimulus, with a forward hook that applies the
    lesion (the ground truth);
:func:`lesion_predictions`
    the network is cut at the region (:func:`~neurorecord.lesion.split.split_at`); the part before
    it runs once, and its frontier is cached (:mod:`~neurorecord.lesion.frontier`); the part after
    it runs on packs of lesions, ``pack_size x stimulus_chunk`` rows at a time
    (:mod:`~neurorecord.lesion.runners`), sizes the sweep measures on its own first passes
    (:mod:`~neurorecord.lesion.plan`). With ``downstream=[...]`` the same passes also measure how
    each lesion changes the activity of later regions (:mod:`~neurorecord.lesion.downstream`).
    Where the first layer after the region is linear (and the lesions are single units), it is by
    default updated by each lesioned unit's own contribution rather than recomputed
    (``shortcut``); ``shortcut=False`` recomputes every layer after the region.

Both give the same per-stimulus predictions: the tests check this exactly on the digits MLP and
CNN and on models with skip connections and data-dependent control flow, with and without the
shortcut, and the logits to 1e-5. Every call runs the model in eval mode under
``torch.inference_mode``, and leaves it with the hooks, train/eval modes and parameter values it
had, also when it raises.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .._validation import check_choice, check_scalar, check_seed, shape_text
from .downstream import DownstreamActivity, _Meter, check_downstream
from .frontier import FrontierCache
from .plan import FIRST_CHUNK, PassPlanner, Plan, available_bytes, pass_budget, upstream_batches
from .runners import make_runner, row_bytes, shortcut_position
from .specs import Lesion, _pack, apply_lesions, as_lesions, check_lesions_against, sample_shape_of
from .split import Split, _check_region, _split, evaluating, memory_format

__all__ = ["LesionResult", "PreparedSweep", "device_of", "lesion_predictions", "obvious_predictions", "prepared_sweep", "unit_means"]

LesionsLike = Sequence[Lesion | int | Sequence[int]]


# ---------------------------------------------------------------- checks and the model's state


def _as_stimuli(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        found = f"shape {shape_text(tuple(x.shape))}" if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"x: expected a tensor or array of stimuli, shape (stimulus, ...), with at least one stimulus, found {found}")
    return x


def _as_downstream(downstream: Any) -> list[str]:
    if downstream is None:
        return []
    if isinstance(downstream, (str, bytes)) or not hasattr(downstream, "__iter__"):
        raise TypeError(f"downstream: expected a sequence of module names (such as ['fc3', 'out']), found {type(downstream).__name__} {downstream!r}")
    names = list(downstream)
    for j, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"downstream[{j}]: expected a module name (str), found {type(name).__name__} {name!r}")
    twice = [name for i, name in enumerate(names) if name in names[:i]]
    if twice:
        raise ValueError(f"downstream: expected each region once, found {twice[0]!r} twice")
    return names


@contextmanager
def _session(model: nn.Module, device: str | torch.device) -> Iterator[tuple[nn.Module, torch.device]]:
    """Eval mode and inference mode for the call; every module's train/eval flag restored after.

    When ``device`` differs from the model's, a copy of the model is moved there, so the caller's
    model is left where it was.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, found {type(model).__name__}")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    with evaluating(model):
        yield (model if device_of(model) == dev else copy.deepcopy(model).to(dev).eval()), dev


def device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) are; the CPU for a model without any.

    >>> device_of(nn.Linear(2, 2))
    device(type='cpu')
    """
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


# ---------------------------------------------------------------- results


@dataclass
class LesionResult:
    """What :func:`lesion_predictions` computed, and how.

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
        Lesions per downstream pass (after the measured first chunk; see ``plan``).
    stimulus_chunk
        Stimuli per downstream pass (each pass has ``pack_size * stimulus_chunk`` rows).
    cache
        Where the frontier was kept: ``"memory"`` or ``"zarr"``.
    shortcut
        Whether the shortcut (see ``shortcut`` in :func:`lesion_predictions`) actually ran.
    shortcut_reason
        Why it did not run although it was asked for (``""`` where it ran or was not asked for).
    row_bytes
        Bytes one row (one stimulus under one lesion) of a downstream pass allocates, measured on
        a probe pass (every tensor a torch function returns, views excluded: an upper bound),
        plus the row's copy of the frontier.
    frontier_bytes
        Bytes of the cached frontier per stimulus.
    upstream_batch
        Stimuli per upstream pass (after the measured first batches; see ``plan``).
    downstream
        With ``downstream=[...]``: the change of those regions' activity under each lesion
        (:class:`~neurorecord.lesion.downstream.DownstreamActivity`), else ``None``.
    plan
        The :class:`~neurorecord.lesion.plan.Plan`: the sizes above and what was measured to
        choose them.
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
    shortcut_reason: str = ""
    plan: Plan | None = None


# ---------------------------------------------------------------- the obvious loop


def obvious_predictions(model: nn.Module, x: Any, region: str, lesions: Sequence[Lesion | int | Sequence[int]], *,
                        means: Any = None, seed: int = 0, device: str | torch.device = "cpu", batch_size: int = 1024,
                        return_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Predictions under each lesion, the obvious way: the whole network over every stimulus, per lesion.

    A forward hook on ``region`` applies the lesion (at every call of the region); it is removed
    before returning, also when the call raises. The model is run in eval mode under
    ``torch.inference_mode`` and left with the hooks, train/eval modes and parameter values it
    had, also when the call raises.

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
        Seeds the noise of ``noise`` lesions (see :mod:`~neurorecord.lesion.specs`).
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
    x = _as_stimuli(x)
    lesions = as_lesions(lesions)
    check_scalar("batch_size", batch_size, int, low=1)
    check_seed("seed", seed)
    _check_region(model, region)
    n = x.shape[0]
    with _session(model, device) as (net, dev):
        full = Split("full", region, None, model=net)
        h = full.region_output(x[:1].to(dev))
        shape = sample_shape_of(region, h)
        means_t = check_lesions_against(lesions, region, shape, means)
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

# ---------------------------------------------------------------- the fast sweep


class PreparedSweep:
    """A network cut at a region, with the frontier of every stimulus computed: :meth:`run` then
    runs any number of sweeps of that region on those stimuli, each paying only the downstream
    part. Made by :func:`prepared_sweep`; valid inside its ``with`` block.
    """

    def __init__(self, net: nn.Module, device: torch.device, split: Split, region: str, n_stimulus: int, names: list[str],
                 probe: torch.Tensor, layout: tuple[dict[str, Any], int, tuple[int, ...], torch.dtype], cache: FrontierCache,
                 budget: int, means: Any, shortcut: bool, upstream_batch: int, upstream_probes: list[tuple[str, int, int, float]]) -> None:
        self.net, self.device, self.split, self.region, self.n = net, device, split, region, n_stimulus
        self.names, self.probe, self.cache, self.budget, self.means, self.shortcut = names, probe, cache, budget, means, shortcut
        self.specs, self.frontier_bytes, self.sample_shape, self.dtype = layout
        self.upstream_batch, self.upstream_probes = upstream_batch, upstream_probes

    def run(self, lesions: LesionsLike, *, seed: int = 0, return_logits: bool = False, pack_size: int | None = None,
            stimulus_chunk: int | None = None) -> LesionResult:
        """The sweep of ``lesions`` (arguments as in :func:`lesion_predictions`)."""
        lesions = as_lesions(lesions)
        check_seed("seed", seed)
        check_scalar("pack_size", pack_size, int, low=1, none_ok=True)
        check_scalar("stimulus_chunk", stimulus_chunk, int, low=1, none_ok=True)
        n, n_lesion, dev, split = self.n, len(lesions), self.device, self.split
        means_t = check_lesions_against(lesions, self.region, self.sample_shape, self.means)
        everything = _pack(lesions, 0, self.sample_shape, means_t, seed, self.dtype, dev)
        linear_at, reason = shortcut_position(split, self.net, everything, self.sample_shape, self.names) if self.shortcut else (None, "")
        probe_runner = make_runner(split, linear_at, _Meter(self.names, 1) if self.names else None)
        per_row = row_bytes(split, self.net, probe_runner, everything, self.probe, self.frontier_bytes)
        planner = PassPlanner(n, n_lesion, per_row, self.frontier_bytes, self.budget, pack_size=pack_size,
                              stimulus_chunk=stimulus_chunk, measure=dev.type == "cpu")
        meter = _Meter(self.names, n_lesion) if self.names else None
        runner = make_runner(split, linear_at, meter)
        predictions = torch.empty(n_lesion, n, dtype=torch.int64)
        intact = torch.empty(n, dtype=torch.int64)
        logits_all = intact_logits = None
        with runner.active(self.net):
            start = 0
            while start < n:
                stop = min(n, start + planner.chunk(start))
                logits = runner.start(self.cache.read(start, stop, dev), start, stop, planner.pack(start, 0))
                intact[start:stop] = logits.argmax(1).cpu()
                if return_logits:
                    if logits_all is None:
                        logits_all = torch.empty(n_lesion, n, logits.shape[1], dtype=logits.dtype)
                        intact_logits = torch.empty(n, logits.shape[1], dtype=logits.dtype)
                    intact_logits[start:stop] = logits.cpu()  # type: ignore[index]
                # written in place on the CPU; on a GPU, copied back once per chunk
                chunk_predictions = predictions[:, start:stop] if dev.type == "cpu" else torch.empty(n_lesion, stop - start, dtype=torch.int64, device=dev)
                first = 0
                while first < n_lesion:
                    m = planner.pack(start, first)
                    pack = everything.part(first, first + m)
                    t0 = time.perf_counter()
                    if logits_all is None:
                        runner.predictions(pack, out=chunk_predictions[first : first + m])
                    else:
                        logits = runner.run(pack).reshape(m, stop - start, -1)
                        chunk_predictions[first : first + m] = logits.argmax(2)
                        logits_all[first : first + m, start:stop] = logits.cpu()
                    first += m
                    planner.observe(start, m, stop - start, time.perf_counter() - t0, first)
                if dev.type != "cpu":
                    predictions[:, start:stop] = chunk_predictions.cpu()
                start = stop
        plan = planner.plan(self.upstream_batch, self.upstream_probes)
        return LesionResult(predictions, intact, logits_all, intact_logits, split.kind, plan.pack_size, plan.stimulus_chunk,
                            "zarr" if self.cache.on_disk else "memory", linear_at is not None, per_row, self.frontier_bytes,
                            plan.upstream_batch, meter.result() if meter is not None else None, reason, plan)


@contextmanager
def prepared_sweep(model: nn.Module, x: Any, region: str, *, means: Any = None, device: str | torch.device = "cpu",
                   batch_size: int | None = None, memory_budget: int | None = None, cache_budget: int | None = None,
                   shortcut: bool = True, downstream: Sequence[str] | None = None) -> Iterator[PreparedSweep]:
    """Cut ``model`` at ``region`` and compute the frontier of every stimulus of ``x`` once; inside
    the block, :meth:`PreparedSweep.run` runs sweeps of that region on those stimuli (a protocol's
    lesion entry runs its resumable blocks of lesions this way, paying the upstream part once).

    Arguments are those of :func:`lesion_predictions`. The model is in eval mode under
    ``torch.inference_mode`` inside the block, and is left with the hooks, train/eval modes and
    parameter values it had when the block ends, also when it raises; the frontier cache is
    removed then.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> with prepared_sweep(digits_mlp(), torch.rand(6, 1, 8, 8), "fc2") as sweep:
    ...     a, b = sweep.run([0, 1]), sweep.run([[2, 3]])
    >>> a.predictions.shape, b.predictions.shape
    (torch.Size([2, 6]), torch.Size([1, 6]))
    """
    x = _as_stimuli(x)
    check_scalar("batch_size", batch_size, int, low=1, none_ok=True)
    check_scalar("memory_budget", memory_budget, int, low=1, none_ok=True)
    check_scalar("cache_budget", cache_budget, int, low=0, none_ok=True)
    names = _as_downstream(downstream)
    _check_region(model, region)
    n = x.shape[0]
    with _session(model, device) as (net, dev):
        probe = x[: min(n, 3)].to(dev)
        if names:
            check_downstream(net, region, names, probe[:1])
        split = _split(net, region, probe, names)  # the region was checked above
        frontier = split.example_frontier if split.example_frontier is not None else split.upstream(probe)
        h = frontier[split.region_key] if split.region_key is not None else split.region_output(probe)
        specs = {k: (tuple(v.shape[1:]), v.dtype, memory_format(v)) for k, v in frontier.items()}
        frontier_bytes = sum(v[0].numel() * v.element_size() for v in frontier.values())
        layout = (specs, frontier_bytes, sample_shape_of(region, h), h.dtype)
        budget = pass_budget(dev, memory_budget)
        host = available_bytes(torch.device("cpu"))
        on_disk = n * frontier_bytes > (host // 4 if cache_budget is None else cache_budget)
        cache = FrontierCache(specs, n, min(n, FIRST_CHUNK), on_disk=on_disk)
        try:
            cap = int(max(1, min(n, budget // max(split.upstream_bytes, 1.0))))
            measure = dev.type == "cpu" and split.kind != "full"  # a full split's upstream keeps the input: nothing to measure
            upstream_batch, probes = upstream_batches(n, batch_size, cap, lambda a, b: cache.write(a, split.upstream(x[a:b].to(dev))),
                                                      measure=measure)
            yield PreparedSweep(net, dev, split, region, n, names, probe, layout, cache, budget, means, shortcut, upstream_batch, probes)
        finally:
            cache.close()


def lesion_predictions(model: nn.Module, x: Any, region: str, lesions: LesionsLike, *,
                       means: Any = None, seed: int = 0, device: str | torch.device = "cpu", pack_size: int | None = None,
                       batch_size: int | None = None, memory_budget: int | None = None, cache_budget: int | None = None,
                       return_logits: bool = False, shortcut: bool = True, downstream: Sequence[str] | None = None,
                       stimulus_chunk: int | None = None) -> LesionResult:
    """Predictions under each lesion, fast: upstream once, downstream on packs of lesions.

    Gives the same per-stimulus predictions as :func:`obvious_predictions` (see the module
    docstring for how). When ``device`` differs from the model's, a copy of the model runs there
    and the model itself is not moved. The model is run in eval mode under
    ``torch.inference_mode`` and left with the hooks, train/eval modes and parameter values it
    had, also when the call raises.

    Parameters
    ----------
    model, x, region, lesions, means, seed, device
        As in :func:`obvious_predictions`.
    pack_size
        Lesions per downstream pass. Default: measured on the first chunk of stimuli (packs of
        1, 4, 16, ... lesions, while a pass's time per row falls; see
        :mod:`~neurorecord.lesion.plan`); on ``cuda``, as many as fit ``memory_budget``.
    stimulus_chunk
        Stimuli per downstream pass. Default: a first chunk of 64, then chunks as large as the
        rows per pass found fastest allow (on ``cuda``: as many stimuli as fit).
    batch_size
        Stimuli per upstream pass. Default: measured on the first batches (64, 256, ... stimuli,
        while the time per stimulus falls); on ``cuda``, as many as fit ``memory_budget``.
    memory_budget
        Bytes one pass may allocate (a downstream pass: ``pack_size * stimulus_chunk`` rows times
        the bytes per row measured on a probe pass, plus the frontier of ``stimulus_chunk``
        stimuli). Default: a quarter of the available memory (on ``cuda``, half of the free GPU
        memory).
    cache_budget
        Bytes of frontier kept in memory; a larger frontier goes to a temporary zarr array,
        removed afterwards. Default a quarter of the available memory.
    return_logits
        Also return the logits.
    shortcut
        (Default ``True``.) Go below the cost of the downstream forward where every lesion is a
        single-unit ``zero``/``mean``/``clamp`` lesion, the split is ``"sequential"``, and the
        region's output goes straight into an ``nn.Linear`` (a (stimulus, unit) region), through
        an ``nn.Flatten`` into one, or into an ``nn.Conv2d`` (ungrouped, zero padding) (a
        (stimulus, channel, height, width) region): that layer's lesioned output is its intact
        output plus the lesioned unit's own contribution (its change times its weights: a rank-1
        update; for a conv channel, its block of flattened features, or the convolution of that
        channel's change alone), instead of being recomputed. Equal to the recomputation up to
        float rounding (about 1e-6 relative), so predictions agree except on exact ties.
        ``False`` recomputes every layer after the region, with the kernels (and the rounding)
        of the unsplit network. Not used where it does not apply, where the model carries
        forward hooks (the shortcut bypasses module calls that hooks would see), or where a
        ``downstream`` region ends before that linear layer: ``result.shortcut`` is then
        ``False`` and ``result.shortcut_reason`` says why.
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
        If an argument is malformed (``"name: expected ..., found ..."``).

    Warns
    -----
    UnsplittableModelWarning
        Once, when the model cannot be cut at the region and every lesion reruns the full network.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.lesion import single_unit_lesions
    >>> from neurorecord.subjects import digits_mlp
    >>> _ = torch.manual_seed(0)
    >>> model, x = digits_mlp(), torch.rand(5, 1, 8, 8)
    >>> result = lesion_predictions(model, x, "fc2", single_unit_lesions(100), downstream=["fc3"])
    >>> result.predictions.shape, result.split_kind, result.shortcut
    (torch.Size([100, 5]), 'sequential', True)
    >>> torch.equal(result.predictions, obvious_predictions(model, x, "fc2", single_unit_lesions(100)))
    True
    >>> result.downstream.relative_change.shape  # (lesion, downstream region)
    (100, 1)
    """
    lesions = as_lesions(lesions)
    check_seed("seed", seed)
    check_scalar("pack_size", pack_size, int, low=1, none_ok=True)
    check_scalar("stimulus_chunk", stimulus_chunk, int, low=1, none_ok=True)
    with prepared_sweep(model, x, region, means=means, device=device, batch_size=batch_size, memory_budget=memory_budget,
                        cache_budget=cache_budget, shortcut=shortcut, downstream=downstream) as sweep:
        return sweep.run(lesions, seed=seed, return_logits=return_logits, pack_size=pack_size, stimulus_chunk=stimulus_chunk)


# ---------------------------------------------------------------- means


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
    x = _as_stimuli(x)
    check_scalar("batch_size", batch_size, int, low=1)
    check_choice("per", per, ("channel", "unit"))
    _check_region(model, region)
    total: torch.Tensor | None = None
    with _session(model, device) as (net, dev):
        full = Split("full", region, None, model=net)
        for start in range(0, x.shape[0], batch_size):
            h = full.region_output(x[start : start + batch_size].to(dev)).double()
            s = h.sum(0) if per == "unit" else h.sum(dim=[0, *range(2, h.ndim)])
            total = s if total is None else total + s
    count = x.shape[0] * (1 if per == "unit" else int(np.prod(h.shape[2:])))
    return (total / count).float().cpu()
