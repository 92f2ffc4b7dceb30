"""Running a protocol's ``lesions:``: targets, fast sweep in resumable blocks, statistics, store.

Each ``lesions:`` entry becomes a sweep of lesions (every unit alone, listed units, a group, a
population from ``analyses:``, a random fraction, the whole region) plus, for group targets,
``controls`` matched random lesions of as many units of the same region. Predictions come from
the fast sweep (:func:`~neurorecord.lesion.sweep.prepared_sweep`: the upstream part once per
entry) in fixed blocks of :data:`BLOCK` lesions; each finished block is written to the store and
counted in the run state, so an interrupted sweep resumes at the first unfinished block and loses
no finished lesion. The first block measures the pass sizes; the later blocks, and a resumed run,
reuse them (kept in the progress group's attributes), so a resumed sweep computes what an
uninterrupted one does. The stored node's attributes say which path ran (``shortcut``,
``shortcut_reason``, ``split_kind``, ``pack_size``, ``stimulus_chunk``, ``upstream_batch``).
The statistics (:func:`~neurorecord.analysis.lesion_stats.lesion_effects`, exact McNemar tests, bootstrap
intervals, FDR over the sweep, control percentiles) are computed when the sweep is complete and
written to ``lesions/<name>``, with, for an entry's ``downstream:`` regions, the change of their
activity under each lesion (:mod:`~neurorecord.lesion.downstream`), measured in the same passes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from ..errors import NeurorecordError
from .. import store as store_io
from ..protocol.schema import EachUnits, FractionUnits, LesionSpec, PopulationUnits, Protocol
from ..record.regions import RegionTap
from ..stimuli.base import StimulusSet
from .downstream import DownstreamActivity, check_downstream
from ..analysis.lesion_stats import control_null, cross_entropy_loss, draw_controls, lesion_effects
from .specs import Lesion
from .sweep import LesionResult, PreparedSweep, device_of, prepared_sweep, unit_means

__all__ = ["BLOCK", "LESIONS_NODE", "LesionTargets", "SweepEntry", "check_lesion_downstream", "finish_entry", "intact_of",
           "open_entry", "plan_lesions", "run_lesion_sweeps", "write_block"]

#: Lesions evaluated per resumable block (fixed, so noise lesions draw the same on resume).
BLOCK = 64
#: Root node of lesion results in a store.
LESIONS_NODE = store_io.LESIONS_NODE


@dataclass
class LesionTargets:
    """The lesions of one ``lesions:`` entry: names, units, kinds (``single``/``group``/``control``),
    and the units (channels) of each of its ``downstream:`` regions."""

    names: list[str]
    units: list[tuple[int, ...]]
    kinds: list[str]
    targets: list[str]
    n_units_region: int
    downstream_units: list[int]


def _set(sets: list[StimulusSet], name: str) -> StimulusSet:
    return next(s for s in sets if s.name == name)


def check_lesion_downstream(spec: LesionSpec, index: int, model: torch.nn.Module, probe: torch.Tensor) -> None:
    """Check an entry's ``downstream:`` names before any work starts: each must be a module whose
    output depends on the output of ``region``.

    Raises
    ------
    RegionError
        ``lesions[<index>].downstream[<j>]: ...``, with ``loc`` pointing at the bad name, saying
        why it is refused and which modules are downstream of the region.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.protocol.schema import LesionSpec
    >>> from neurorecord.subjects import digits_mlp
    >>> spec = LesionSpec(name="a", region="fc2", evaluate="digits", downstream=["fc3", "out"])
    >>> check_lesion_downstream(spec, 0, digits_mlp(), torch.zeros(1, 1, 8, 8))
    """
    if spec.downstream:
        check_downstream(model, spec.region, spec.downstream, probe[:1], where=f"lesions[{index}].downstream",
                         loc=("lesions", index, "downstream"))


def plan_lesions(spec: LesionSpec, index: int, protocol: Protocol, model: torch.nn.Module, x: torch.Tensor,
                 store: Path) -> LesionTargets:
    """Resolve an entry's ``units`` into lesions (and controls), checking unit indices and the
    ``downstream:`` regions."""
    probe = x[:2].to(device_of(model))
    check_lesion_downstream(spec, index, model, probe)
    with RegionTap(model, [spec.region, *spec.downstream]) as tap, torch.inference_mode():
        outputs = tap(probe)
    n = int(outputs[spec.region].shape[1])
    region = spec.region
    units = spec.units
    where = f"lesions[{index}].units"
    singles: list[int] = []
    group: tuple[int, ...] | None = None
    label = ""
    if units == "all":
        singles = list(range(n))
    elif units == "region":
        group, label = tuple(range(n)), f"region:{region}"
    elif isinstance(units, EachUnits):
        singles = list(units.each)
    elif isinstance(units, list):
        group = tuple(int(u) for u in units)
        label = "+".join(f"{region}.{u}" for u in group)
    elif isinstance(units, PopulationUnits):
        from ..analysis.runner import load_population

        pop = load_population(store, region, units.population)
        channels = np.asarray(pop.table["channel"].values)[pop.table["member"].values.astype(bool)]
        group, label = tuple(sorted(set(int(c) for c in channels))), f"population:{units.population}"
        if not group:
            raise NeurorecordError(f"{where}: population {units.population!r} of {region} has no member units to lesion", loc=("lesions", index, "units"))
    elif isinstance(units, FractionUnits):
        k = max(1, int(round(units.fraction * n)))
        rng = np.random.default_rng([protocol.seed, index])
        group, label = tuple(sorted(int(u) for u in rng.choice(n, size=k, replace=False))), f"fraction:{units.fraction:g}"
    plan = LesionTargets([], [], [], [], n, [int(outputs[r].shape[1]) for r in spec.downstream])

    def add(name: str, lesioned: tuple[int, ...], kind: str) -> None:
        plan.names.append(name)
        plan.units.append(lesioned)
        plan.kinds.append(kind)
        plan.targets.append(",".join(f"{region}.{u}" for u in lesioned))

    for u in singles:
        add(f"{region}.{u}", (u,), "single")
    if group is not None:
        add(label, group, "group")
        if spec.controls:
            for j, draw in enumerate(draw_controls(n, len(group), spec.controls, seed=protocol.seed + index)):
                add(f"{label}/control{j}", tuple(int(u) for u in draw), "control")
    return plan


@dataclass
class SweepEntry:
    """One ``lesions:`` entry ready to run: its stimuli, lesions and progress arrays (see
    :func:`open_entry`); shared by the single-process loop and the cluster's."""

    index: int
    spec: LesionSpec
    params: dict
    labels: np.ndarray
    x: torch.Tensor
    targets: LesionTargets
    means: torch.Tensor | None
    lesions: list[Lesion]
    node: str
    arrays: Any

    def seed(self, protocol: Protocol, start: int) -> int:
        """The seed of the block starting at lesion ``start`` (the same on resume and on any worker)."""
        return int(np.random.SeedSequence([protocol.seed, self.index, start // BLOCK]).generate_state(1)[0] % 2**31)


def open_entry(protocol: Protocol, index: int, model: torch.nn.Module, sets: list[StimulusSet], device: torch.device,
               store: Path, done: dict[str, int], save_progress: Callable[[], None]) -> SweepEntry:
    """Resolve entry ``index``'s lesions and open (creating on first use) its progress arrays."""
    spec = protocol.lesions[index]
    stim = _set(sets, spec.evaluate)
    params = stim.parameters()  # its `label` and the unit indices were checked before recording
    labels = np.asarray(params["label"]).astype(np.int64)
    x = torch.from_numpy(np.array(stim.images(np.arange(len(stim)))))  # a writable copy: a set may be memory-mapped
    try:
        targets = plan_lesions(spec, index, protocol, model, x, store)
    except NeurorecordError as exc:
        if exc.loc is not None:
            raise type(exc)(f"{protocol.where(*exc.loc)}: {exc}", loc=exc.loc) from None
        raise
    means = None
    if spec.method == "mean":
        reference = _set(sets, spec.reference or spec.evaluate)
        means = unit_means(model, torch.from_numpy(np.array(reference.images(np.arange(len(reference))))), spec.region, device=device)
    lesions = [Lesion(u, spec.method, value=spec.value, std=spec.std) for u in targets.units]
    n_lesions, n_stim = len(lesions), len(labels)
    # the finished blocks live apart from the result node, which is written whole at the end:
    # a run killed while writing the result finds them on resume and writes the result again
    node = f"{store_io.PROGRESS_NODE}/{LESIONS_NODE}/{spec.name}"
    if spec.name not in done:
        arrays = {"correct": ((n_lesions, n_stim), bool, ("lesion", "presentation")),
                  "loss": ((n_lesions,), np.float64, ("lesion",))}
        if spec.downstream:
            n_neuroid = sum(targets.downstream_units)
            arrays["sq_change"] = ((n_lesions, len(spec.downstream)), np.float64, ("lesion", "downstream_region"))
            for key in ("unit_change", "unit_abs_change"):
                arrays[key] = ((n_lesions, n_neuroid), np.float64, ("lesion", "downstream_neuroid"))
        store_io.create_progress_node(store, node, arrays, block=BLOCK,
                                      attrs={"entry": spec.name, "n_lesions": n_lesions, "block": BLOCK})
        done[spec.name] = 0
        save_progress()
    return SweepEntry(index, spec, params, labels, x, targets, means, lesions, node, store_io.open_node(store, node))


def write_block(arrays: Any, start: int, result: LesionResult, labels: np.ndarray) -> None:
    """A finished block's rows of the progress arrays."""
    stop = start + result.predictions.shape[0]
    arrays["correct"][start:stop] = (result.predictions.numpy() == labels[None, :])
    arrays["loss"][start:stop] = cross_entropy_loss(result.logits.numpy(), labels).values
    if result.downstream is not None:
        arrays["sq_change"][start:stop] = result.downstream.sq_change
        arrays["unit_change"][start:stop] = result.downstream.unit_change
        arrays["unit_abs_change"][start:stop] = result.downstream.unit_abs_change


def intact_of(result: LesionResult) -> dict[str, Any]:
    """What the statistics need of the intact network, from any block's result (picklable)."""
    intact: dict[str, Any] = {"predictions": result.intact_predictions, "logits": result.intact_logits, "downstream": None}
    if result.downstream is not None:
        d = result.downstream
        intact["downstream"] = (d.regions, d.channels, d.positions, d.n_stimuli, d.sq_intact, d.unit_activity_intact)
    return intact


def finish_entry(entry: SweepEntry, protocol: Protocol, store: Path, intact: dict[str, Any], done: dict[str, int],
                 save_progress: Callable[[], None]) -> None:
    """The entry's statistics from its finished arrays, written to ``lesions/<name>``; counted done."""
    spec, arrays, labels = entry.spec, entry.arrays, entry.labels
    correct_intact = intact["predictions"].numpy() == labels
    loss_intact = float(cross_entropy_loss(intact["logits"].numpy(), labels))
    effects = _effects(spec, entry.targets, np.asarray(arrays["correct"][:]), correct_intact, labels,
                       np.asarray(arrays["loss"][:]), loss_intact, entry.params["stimulus_id"], protocol.seed)
    if intact["downstream"] is not None:  # the intact sums are the same in every block
        regions, channels, positions, n_stimuli, sq_intact, unit_intact = intact["downstream"]
        activity = DownstreamActivity(
            regions, channels, positions, n_stimuli, np.asarray(arrays["sq_change"][:]), sq_intact,
            np.asarray(arrays["unit_change"][:]), np.asarray(arrays["unit_abs_change"][:]), unit_intact)
        effects = effects.merge(activity.to_dataset(entry.targets.names), join="exact")
    effects.attrs.update(_how_attrs(dict(arrays.attrs.get("how", {}))))
    _save(store, spec.name, effects)
    done[spec.name] = -1
    save_progress()


def run_lesion_sweeps(protocol: Protocol, model: torch.nn.Module, sets: list[StimulusSet], device: torch.device,
                      store: Path, done: dict[str, int], save_progress: Callable[[], None], quiet: bool) -> None:
    """Run every ``lesions:`` entry not finished yet, resuming a half-finished one at its next block.

    ``done[name]`` counts the finished lesions of each entry (``-1`` once its results are
    written); ``save_progress()`` persists ``done`` in the run state after every block.
    """
    for index, spec in enumerate(protocol.lesions):
        if done.get(spec.name) == -1:
            continue
        entry = open_entry(protocol, index, model, sets, device, store, done, save_progress)
        arrays, n_lesions = entry.arrays, len(entry.lesions)
        bar = tqdm(total=n_lesions, initial=done[spec.name], unit="lesion", desc=f"lesions {spec.name}",
                   disable=quiet, file=sys.stderr, dynamic_ncols=True)
        try:
            # the upstream part runs once per entry; every block reuses its frontier. The first
            # block measures the batch and pass sizes; the later blocks and a resumed run reuse them
            measured = dict(arrays.attrs.get("how", {}))
            with prepared_sweep(model, entry.x, spec.region, means=entry.means, device=device,
                                downstream=spec.downstream or None, shortcut=spec.shortcut,
                                batch_size=measured.get("upstream_batch")) as sweep:
                intact = None
                for start in range(done[spec.name], n_lesions, BLOCK):
                    stop = min(n_lesions, start + BLOCK)
                    how = dict(arrays.attrs.get("how", {}))
                    result = _run_block(sweep, entry.lesions[start:stop], entry.seed(protocol, start), how.get("pack_size"),
                                        how.get("stimulus_chunk"))
                    write_block(arrays, start, result, entry.labels)
                    arrays.attrs["how"] = _how(result, how)
                    intact = result
                    done[spec.name] = stop
                    save_progress()
                    bar.update(stop - start)
                if intact is None:  # every block was done before an interruption: the intact pass only
                    intact = sweep.run(entry.lesions[:1], seed=0, return_logits=True)
        finally:
            bar.close()
        finish_entry(entry, protocol, store, intact_of(intact), done, save_progress)
    store_io.delete_node(store, store_io.PROGRESS_NODE)  # every entry's result is written: the blocks go


def _run_block(sweep: PreparedSweep, lesions: list[Lesion], seed: int, pack_size: int | None,
               stimulus_chunk: int | None) -> LesionResult:
    """One resumable block of an entry's sweep (with logits, for the loss)."""
    return sweep.run(lesions, seed=seed, return_logits=True, pack_size=pack_size, stimulus_chunk=stimulus_chunk)


def _how(result: LesionResult, before: dict) -> dict:
    """How the blocks so far ran: the first block's pass sizes, and whether every block used the
    shortcut (with the first reason one did not)."""
    ran = before.get("shortcut", True) and result.shortcut
    return {"split_kind": result.split_kind, "pack_size": before.get("pack_size", result.pack_size),
            "stimulus_chunk": before.get("stimulus_chunk", result.stimulus_chunk), "upstream_batch": result.upstream_batch,
            "shortcut": bool(ran), "shortcut_reason": before.get("shortcut_reason") or result.shortcut_reason}


def _how_attrs(how: dict) -> dict:
    """The stored node's attributes that say which path ran."""
    return {"split_kind": how.get("split_kind", ""), "shortcut": bool(how.get("shortcut", False)),
            "shortcut_reason": how.get("shortcut_reason", ""), "pack_size": int(how.get("pack_size", 0)),
            "stimulus_chunk": int(how.get("stimulus_chunk", 0)), "upstream_batch": int(how.get("upstream_batch", 0))}


def _effects(spec: LesionSpec, targets: LesionTargets, correct: np.ndarray, correct_intact: np.ndarray,
             labels: np.ndarray, loss: np.ndarray, loss_intact: float, stimulus_id: np.ndarray, seed: int) -> xr.Dataset:
    ds = lesion_effects(correct, correct_intact, labels, targets.names, n_boot=spec.n_boot, seed=seed, correction=spec.correction)
    ds = ds.assign_coords(
        targets=("lesion", np.array(targets.targets, dtype=object)),
        lesion_kind=("lesion", np.array(targets.kinds, dtype=object)),
        n_units=("lesion", np.array([len(u) for u in targets.units], dtype=np.int64)),
        stimulus_id=("presentation", np.asarray(stimulus_id, dtype=object)),
    )
    ds["loss"] = ("lesion", loss)
    ds["loss"].attrs["units"] = "nats (mean cross-entropy)"
    ds["loss_intact"] = loss_intact
    kinds = np.array(targets.kinds)
    percentile = np.full(ds["delta_accuracy"].shape, np.nan)
    p_control = np.full(ds["delta_accuracy"].shape, np.nan)
    if (kinds == "control").any():
        target = int(np.flatnonzero(kinds == "group")[0])
        null = control_null(ds["delta_accuracy"].values[target], ds["delta_accuracy"].values[kinds == "control"])
        percentile[target], p_control[target] = null["percentile"].values, null["p_empirical"].values
    ds["control_percentile"] = (("lesion", "class"), percentile)
    ds["control_p"] = (("lesion", "class"), p_control)
    ds.attrs.update({"lesion": spec.model_dump_json(), "region": spec.region, "method": spec.method,
                     "evaluate": spec.evaluate, "n_units_region": targets.n_units_region, "n_controls": spec.controls,
                     "downstream": list(spec.downstream)})
    return ds


def _save(store: Path, name: str, effects: xr.Dataset) -> None:
    from ..analysis.runner import save_analysis_node

    save_analysis_node(store, f"{LESIONS_NODE}/{name}", effects)
