"""Which regions lie downstream of a lesioned one, and how a lesion changes their activity.

:func:`downstream_regions` finds them from the network's autograd graph; :func:`check_downstream`
refuses a name that is not one of them, saying why.

A lesion of region ``R`` changes what every region fed by ``R`` does. For each lesion ``l``
and each downstream region ``D`` (a module whose output depends on ``R``'s output), with
``a_s`` the intact activity of ``D`` for stimulus ``s`` (every unit, and every position of a
conv output) and ``a_ls`` its activity under lesion ``l``, over the ``n`` evaluated stimuli:

``activity_change[l, D] = sqrt(sum_s ||a_ls - a_s||^2 / sum_s ||a_s||^2)``
    the relative root-mean-square change of ``D``'s population response: 0 when nothing
    changed, 1 when the change is as large as the response itself (a lesion that silences
    ``D`` completely gives exactly 1). A ratio of sums, not a mean of per-stimulus ratios: a
    post-ReLU region can be silent for a stimulus (``||a_s|| = 0``), where a per-stimulus ratio
    is undefined.
``unit_change[l, u]``
    the mean over stimuli (and positions, for a channel of a conv output) of ``a_ls - a_s``
    for each unit ``u`` of ``D``: the lesion's effect on the unit's mean response, signed,
    in the unit's activity units (the in-silico "change in firing rate" of a downstream cell).
``unit_abs_change[l, u]``
    the mean of ``|a_ls - a_s|``: also counts changes that cancel in the mean (a unit that
    responds more to some stimuli and less to others).
``unit_activity_intact[u]``
    the mean intact activity of the unit, the baseline ``unit_change`` is read against.

Units are the channels of ``D``'s output (dimension 1), as lesion units are: a neuron of a
(stimulus, unit) output, a channel of a (stimulus, channel, height, width) output averaged
over positions (the recording's ``reduce: mean`` neuroid). Neuroids are named
``<region>.<channel>``, as in a recording.

:func:`~neurorecord.lesion.sweep.lesion_predictions` computes these in the same packed passes
as the predictions (``downstream=[...]``), by forward hooks on the downstream regions (where
the linear shortcut runs, by reading them at their position in the chain): no extra forward
pass. Each pass's sums are taken in the activity's dtype and accumulated in float64; only the
sums are kept, so memory does not grow with the stimuli.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import RegionError, did_you_mean
from .split import _check_output, _check_region, _module

__all__ = ["DownstreamActivity", "check_downstream", "downstream_regions"]

#: names listed in full in an error message; longer lists are cut there
_SHOWN = 40


@dataclass
class DownstreamActivity:
    """What a sweep's lesions did to the activity of the downstream regions (module docstring).

    Attributes
    ----------
    regions
        The downstream regions, in the order asked for.
    channels
        Units (channels) of each region's output.
    positions
        Positions per channel of each region's output (1 for a (stimulus, unit) output).
    n_stimuli
        Stimuli evaluated.
    sq_change
        (n_lesion, n_region) float64: ``sum_s ||a_ls - a_s||^2``, in squared activity units.
    sq_intact
        (n_region,) float64: ``sum_s ||a_s||^2``.
    unit_change
        (n_lesion, n_unit) float64: mean of ``a_ls - a_s`` per unit; units of every region one
        after the other, in ``regions`` order.
    unit_abs_change
        (n_lesion, n_unit) float64: mean of ``|a_ls - a_s|`` per unit.
    unit_activity_intact
        (n_unit,) float64: mean intact activity per unit.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.lesion import lesion_predictions
    >>> from neurorecord.subjects import digits_mlp
    >>> _ = torch.manual_seed(0)
    >>> result = lesion_predictions(digits_mlp(), torch.rand(20, 1, 8, 8), "fc2", [0, 1, [2, 3]], downstream=["fc3", "out"])
    >>> activity = result.downstream
    >>> activity.relative_change.shape, activity.unit_change.shape
    ((3, 2), (3, 110))
    >>> activity.neuroid_ids()[:2], activity.neuroid_ids()[-1]
    (['fc3.0', 'fc3.1'], 'out.9')
    """

    regions: list[str]
    channels: list[int]
    positions: list[int]
    n_stimuli: int
    sq_change: np.ndarray
    sq_intact: np.ndarray
    unit_change: np.ndarray
    unit_abs_change: np.ndarray
    unit_activity_intact: np.ndarray

    @property
    def relative_change(self) -> np.ndarray:
        """(n_lesion, n_region) float64: ``activity_change``, ``sqrt(sq_change / sq_intact)``
        (NaN for a region silent on every stimulus)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(self.sq_change / np.where(self.sq_intact > 0, self.sq_intact, np.nan))

    def neuroid_ids(self) -> list[str]:
        """``<region>.<channel>`` for every unit, in the order of the unit axis."""
        return [f"{region}.{c}" for region, n in zip(self.regions, self.channels) for c in range(n)]

    def to_dataset(self, lesion_names: Sequence[str]) -> Any:
        """The measures as a labelled ``xarray.Dataset``.

        Variables ``activity_change`` (lesion, downstream), ``unit_change`` and
        ``unit_abs_change`` (lesion, neuroid), ``unit_activity_intact`` (neuroid); coordinates
        ``lesion`` (``lesion_names``), ``downstream`` (region names), and on ``neuroid``:
        ``neuroid_id``, ``region``, ``channel``.

        Examples
        --------
        >>> import torch
        >>> from neurorecord.lesion import lesion_predictions
        >>> from neurorecord.subjects import digits_mlp
        >>> result = lesion_predictions(digits_mlp(), torch.rand(8, 1, 8, 8), "fc2", [0, 1], downstream=["fc3"])
        >>> ds = result.downstream.to_dataset(["fc2.0", "fc2.1"])
        >>> dict(ds.sizes)
        {'lesion': 2, 'downstream': 1, 'neuroid': 100}
        """
        import xarray as xr

        names = [str(name) for name in lesion_names]
        if len(names) != self.sq_change.shape[0]:
            raise ValueError(f"to_dataset: lesion_names must name the {self.sq_change.shape[0]} lesions; got {len(names)} names instead")
        region = np.array([r for r, n in zip(self.regions, self.channels) for _ in range(n)], dtype=object)
        channel = np.concatenate([np.arange(n, dtype=np.int64) for n in self.channels])
        ds = xr.Dataset(
            {
                "activity_change": (("lesion", "downstream"), self.relative_change),
                "unit_change": (("lesion", "neuroid"), self.unit_change),
                "unit_abs_change": (("lesion", "neuroid"), self.unit_abs_change),
                "unit_activity_intact": (("neuroid",), self.unit_activity_intact),
            },
            coords={
                "lesion": np.array(names, dtype=object),
                "downstream": np.array(self.regions, dtype=object),
                "neuroid_id": ("neuroid", np.array(self.neuroid_ids(), dtype=object)),
                "region": ("neuroid", region),
                "channel": ("neuroid", channel),
            },
        )
        ds["activity_change"].attrs.update(units="1 (relative to the intact activity)", description=(
            "relative root-mean-square change of the downstream region's response over the evaluated stimuli: "
            "sqrt(sum_s ||a_lesioned - a_intact||^2 / sum_s ||a_intact||^2)"))
        ds["unit_change"].attrs.update(units="activity units of the downstream region", description=(
            "mean over stimuli (and positions of a conv channel) of a_lesioned - a_intact"))
        ds["unit_abs_change"].attrs.update(units="activity units of the downstream region", description=(
            "mean over stimuli (and positions of a conv channel) of |a_lesioned - a_intact|"))
        ds["unit_activity_intact"].attrs.update(units="activity units of the downstream region", description=(
            "mean intact activity over stimuli (and positions of a conv channel)"))
        return ds


def check_downstream(model: nn.Module, region: str, names: Sequence[str], example: torch.Tensor, *,
                     where: str = "lesion.downstream", loc: tuple[str | int, ...] | None = None) -> None:
    """Check that every name in ``names`` is a module downstream of ``region``.

    Parameters
    ----------
    model, region, example
        As in :func:`downstream_regions`.
    names
        The downstream regions asked for.
    where
        How the error messages name the list (``"lesions[2].downstream"`` for a protocol).
    loc
        The protocol key path of the list; an error's ``loc`` is it plus the bad name's index.

    Raises
    ------
    RegionError
        Naming the bad entry, why it is refused, and the modules downstream of ``region``.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> check_downstream(digits_mlp(), "fc2", ["fc3", "out"], torch.zeros(1, 1, 8, 8))
    >>> check_downstream(digits_mlp(), "fc2", ["fc1"], torch.zeros(1, 1, 8, 8))
    Traceback (most recent call last):
    ...
    neurorecord.errors.RegionError: lesion.downstream[0]: 'fc1' is not downstream of region 'fc2' (its output does not depend on the output of 'fc2'); modules downstream of 'fc2': fc3, fc3.linear, fc3.relu, out
    """
    status = _downstream_status(model, region, example)
    valid = [n for n, (depends, output) in status.items() if depends and output == "Tensor"]
    modules = [n for n, _ in model.named_modules() if n]
    shown = ", ".join(valid[:_SHOWN]) + (f", ... ({len(valid) - _SHOWN} more)" if len(valid) > _SHOWN else "") if valid else "none"
    for j, name in enumerate(names):
        if name in valid:
            continue
        if name not in modules:
            why = f"no module named {name!r} in the model{did_you_mean(name, valid or modules)}"
        elif name == region:
            why = f"{name!r} is the lesioned region itself"
        elif region.startswith(name + "."):
            why = f"{name!r} contains the lesioned region {region!r}"
        elif name not in status:
            why = f"{name!r} is never called in the forward pass"
        elif status[name][0]:
            why = f"{name!r} outputs a {status[name][1]}; a downstream region must output a tensor"
        else:
            why = f"{name!r} is not downstream of region {region!r} (its output does not depend on the output of {region!r})"
        raise RegionError(f"{where}[{j}]: {why}; modules downstream of {region!r}: {shown}", loc=None if loc is None else (*loc, j))


# ---------------------------------------------------------------- which modules are downstream


def downstream_regions(model: nn.Module, region: str, example: torch.Tensor) -> list[str]:
    """The modules downstream of ``region``: those whose output depends on the region's output.

    Found from the autograd graph of one forward pass of ``example`` in eval mode (with
    gradients, on a copy of the stimuli; the model is left in the train/eval mode it had, with no
    hook): a module is downstream when its output's graph reaches the region's output. The
    region itself, its ancestors (which contain it) and modules whose output is not a tensor are
    left out. A model that detaches values inside its forward hides the dependencies that run
    through them.

    Parameters
    ----------
    model
        The subject's module.
    region
        A name from ``model.named_modules()``.
    example
        One or a few stimuli (stimulus, ...).

    Returns
    -------
    list[str]
        Module names, in ``model.named_modules()`` order.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> downstream_regions(digits_mlp(), "fc2", torch.zeros(1, 1, 8, 8))
    ['fc3', 'fc3.linear', 'fc3.relu', 'out']
    """
    status = _downstream_status(model, region, example)
    return [name for name, (depends, output) in status.items() if depends and output == "Tensor"]


def _downstream_status(model: nn.Module, region: str, example: torch.Tensor) -> dict[str, tuple[bool, str]]:
    """For every module called in a forward pass of ``example`` (but ``region`` and its
    ancestors): (whether its output depends on the region's output, the output's type name)."""
    _check_region(model, region)
    target = _module(model, region)
    leaves: list[torch.Tensor] = []
    graphs: dict[str, tuple[list[Any], str]] = {}

    def region_hook(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        leaf = _check_output(region, output).detach().requires_grad_(True)
        leaves.append(leaf)
        return leaf.clone()  # not the leaf itself: a later in-place operation must not write into it

    def record(name: str, module: nn.Module, inputs: Any, output: Any) -> None:
        found = graphs.setdefault(name, ([], type(output).__name__))[0]
        values = output if isinstance(output, (tuple, list)) else (output,)
        found.extend(v.grad_fn for v in values if isinstance(v, torch.Tensor))

    candidates = [(n, m) for n, m in model.named_modules() if n and m is not target and not region.startswith(n + ".")]
    modes = [(m, m.training) for m in model.modules()]
    handles = [target.register_forward_hook(region_hook)]
    handles += [m.register_forward_hook(partial(record, n)) for n, m in candidates]
    try:
        model.eval()
        with torch.inference_mode(False), torch.enable_grad():
            model(example.clone())
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
    reached: dict[int, bool] = {}
    targets = {id(leaf) for leaf in leaves}

    def depends(node: Any) -> bool:
        # iterative depth-first search with memo: does the graph below ``node`` reach a leaf?
        stack = [(node, False)]
        while stack:
            current, expanded = stack.pop()
            if current is None or id(current) in reached:
                continue
            children = [c for c, _ in current.next_functions if c is not None]
            if expanded:
                variable = getattr(current, "variable", None)
                reached[id(current)] = (variable is not None and id(variable) in targets) or any(reached.get(id(c), False) for c in children)
            else:
                stack.append((current, True))
                stack.extend((c, False) for c in children if id(c) not in reached)
        return node is not None and reached[id(node)]

    return {n: (any(depends(g) for g in graphs[n][0]), graphs[n][1]) for n, _ in candidates if n in graphs}


# ---------------------------------------------------------------- activity, pass by pass


class _Meter:
    """Accumulates, pass by pass, the sums behind :class:`DownstreamActivity`.

    Before each downstream pass the runner calls :meth:`begin` (``first=None`` for the intact
    pass), then every downstream region's output is given to :meth:`observe` (by a forward hook,
    or by the linear shortcut), then :meth:`end` checks each region was seen once.
    """

    def __init__(self, regions: Sequence[str], n_lesion: int) -> None:
        self.regions = list(regions)
        self.n_lesion = n_lesion
        self.shapes: dict[str, tuple[int, int]] = {}  # (channels, positions)
        self.intact: dict[str, torch.Tensor] = {}  # this chunk's intact activity, (stimulus, channel, position)
        self.sq_change = torch.zeros(n_lesion, len(self.regions), dtype=torch.float64)
        self.sq_intact = torch.zeros(len(self.regions), dtype=torch.float64)
        self.sum_change: dict[str, torch.Tensor] = {}
        self.abs_change: dict[str, torch.Tensor] = {}
        self.sum_intact: dict[str, torch.Tensor] = {}
        self.n_stimuli = 0
        self._pass: tuple[int | None, int, int] = (None, 1, 0)
        self._seen: dict[str, int] = {}

    def begin(self, first: int | None, n_copies: int, n_stimulus: int) -> None:
        self._pass = (first, n_copies, n_stimulus)
        self._seen = dict.fromkeys(self.regions, 0)

    def end(self) -> None:
        wrong = {r: k for r, k in self._seen.items() if k != 1}
        if wrong:
            region, k = next(iter(wrong.items()))
            raise RegionError(f"lesion.downstream: region {region!r} was called {k} times in one downstream pass; "
                              "a downstream region must be a module called once per forward pass")
        if self._pass[0] is None:
            self.n_stimuli += self._pass[2]

    def observe(self, region: str, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or output.ndim < 2:
            found = f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else f"a {type(output).__name__}"
            raise RegionError(f"lesion.downstream: region {region!r} outputs {found}; a downstream region must output a tensor "
                              "(stimulus, unit) or (stimulus, channel, ...)")
        first, m, n = self._pass
        if output.shape[0] != m * n:
            raise RegionError(f"lesion.downstream: region {region!r} outputs {output.shape[0]} rows for a pass of {m * n} "
                              "(lesion x stimulus) rows; a downstream region must output one row per stimulus")
        self._seen[region] += 1
        i = self.regions.index(region)
        if first is None:
            a = output.detach().reshape(n, output.shape[1], -1).clone()  # a clone: later in-place operations must not change it
            if region not in self.shapes:
                c, p = a.shape[1], a.shape[2]
                self.shapes[region] = (c, p)
                self.sum_change[region] = torch.zeros(self.n_lesion, c, dtype=torch.float64)
                self.abs_change[region] = torch.zeros(self.n_lesion, c, dtype=torch.float64)
                self.sum_intact[region] = torch.zeros(c, dtype=torch.float64)
            self.intact[region] = a
            self.sq_intact[i] += torch.linalg.vector_norm(a, dtype=torch.float64).square().cpu()
            self.sum_intact[region] += a.sum(dim=(0, 2), dtype=torch.float64).cpu()
            return
        assert first is not None
        # sums over one pass in the activity's dtype (float64 ones cost 4x), accumulated in float64
        d = output.detach().reshape(m, n, *self.intact[region].shape[1:]) - self.intact[region]
        per_channel = (d * d).sum(dim=(1, 3))
        self.sq_change[first : first + m, i] += per_channel.sum(1).cpu().double()
        self.sum_change[region][first : first + m] += d.sum(dim=(1, 3)).cpu().double()
        self.abs_change[region][first : first + m] += d.abs_().sum(dim=(1, 3)).cpu().double()

    @contextmanager
    def hooks(self, model: nn.Module) -> Iterator[None]:
        """Forward hooks on the downstream regions of ``model`` for the duration of the block."""
        handles = [model.get_submodule(r).register_forward_hook(partial(self._hook, r)) for r in self.regions]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, region: str, module: nn.Module, inputs: Any, output: Any) -> None:
        self.observe(region, output)

    def result(self) -> DownstreamActivity:
        channels = [self.shapes[r][0] for r in self.regions]
        positions = [self.shapes[r][1] for r in self.regions]
        per_unit = np.concatenate([np.full(c, self.n_stimuli * p, dtype=np.float64) for c, p in zip(channels, positions)])
        return DownstreamActivity(
            self.regions, channels, positions, self.n_stimuli,
            self.sq_change.numpy(), self.sq_intact.numpy(),
            torch.cat([self.sum_change[r] for r in self.regions], 1).numpy() / per_unit,
            torch.cat([self.abs_change[r] for r in self.regions], 1).numpy() / per_unit,
            torch.cat([self.sum_intact[r] for r in self.regions]).numpy() / per_unit,
        )
