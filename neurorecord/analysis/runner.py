"""Running a protocol's ``analyses:`` on a recording, and reading the results back.

Results are written into the store under ``analyses/<region>/<name>``, one Dataset each,
with the protocol entry that made it in ``attrs["analysis"]``; they are readable with plain
xarray (``xr.open_datatree(store, engine="zarr")["analyses/fc2/responsive"]``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr
from pydantic import BaseModel

from ..protocol.schema import (
    EACH,
    ComparisonAnalysis,
    PopulationAnalysis,
    Protocol,
    RayleighAnalysis,
    SelectivityAnalysis,
    TuningCurveAnalysis,
    UnitTestAnalysis,
    VonMisesAnalysis,
)
from ..errors import AnalysisError, StoreError
from ..store import ANALYSES_NODE, load_result_node, save_result_node, save_result_nodes
from .populations import Population, define_population

__all__ = ["compute_analysis", "each_condition", "select_time_window", "run_analyses", "save_analysis", "save_analysis_node", "load_analysis", "load_population", "ANALYSES_NODE"]

def compute_analysis(spec: BaseModel, activity: xr.DataArray, seed: int = 0, reference: Any = None) -> xr.Dataset:
    """Compute one protocol analysis entry on one region's activity (presentation x neuroid).

    A ``kind: compare`` entry needs its ``reference``
    (:func:`~neurorecord.analysis.comparison.read_reference`); other kinds take none.
    """
    from . import stats
    from .selectivity import selectivity
    from .tuning import tuning_curve
    from .vonmises import fit_von_mises

    if isinstance(spec, TuningCurveAnalysis):
        ds = tuning_curve(activity, spec.by, ci=spec.ci, n_boot=spec.n_boot, seed=seed)
    elif isinstance(spec, UnitTestAnalysis):
        ds = getattr(stats, spec.kind)(activity, spec.by, correction=spec.correction)
    elif isinstance(spec, RayleighAnalysis):
        ds = stats.rayleigh(activity, spec.by, period=spec.period, correction=spec.correction, seed=seed)
    elif isinstance(spec, SelectivityAnalysis):
        kwargs = {"negative": spec.negative} if spec.index not in ("dprime", "magnitude") else {}
        ds = selectivity(activity, spec.by, spec.index, **kwargs)
    elif isinstance(spec, VonMisesAnalysis):
        ds = fit_von_mises(activity, spec.by, period=spec.period, two_peaks=spec.two_peaks)
    elif isinstance(spec, ComparisonAnalysis):
        from .comparison import compare_entry

        if reference is None:
            raise TypeError(f"analysis {spec.name!r} (kind: compare) needs its reference recording: pass "
                            "reference=read_reference(spec.reference, protocol.folder)")
        ds = compare_entry(spec, activity, reference, seed=seed)
    elif isinstance(spec, PopulationAnalysis):
        ds = define_population(
            spec.name, activity, test=spec.test, by=spec.by, q_below=spec.q_below, condition=spec.condition,
            index=spec.index, index_above=spec.index_above, period=spec.period, correction=spec.correction, seed=seed,
        ).to_dataset()
    else:  # pragma: no cover - the schema admits no other kind
        raise TypeError(f"unhandled analysis kind {getattr(spec, 'kind', spec)!r}")
    ds = ds.copy()
    ds.attrs["analysis"] = spec.model_dump_json()
    return ds


def save_analysis(store: str | os.PathLike[str], region: str, name: str, result: xr.Dataset) -> None:
    """Write ``result`` into the store as ``analyses/<region>/<name>`` (replacing an older one)."""
    save_result_node(store, f"{ANALYSES_NODE}/{region}/{name}", result)


#: The lesion stage writes its results through the same store function.
save_analysis_node = save_result_node


def load_analysis(store: str | os.PathLike[str] | xr.DataTree, region: str, name: str) -> xr.Dataset:
    """Read ``analyses/<region>/<name>`` from a store (path or opened tree), loaded in memory.

    Raises
    ------
    AnalysisError
        No such analysis; the message lists those in the store.
    """
    try:
        return load_result_node(store, f"{ANALYSES_NODE}/{region}/{name}")
    except StoreError as exc:
        raise AnalysisError(str(exc).replace("no result", "no analysis", 1)) from None


def load_population(store: str | os.PathLike[str] | xr.DataTree, region: str, name: str) -> Population:
    """Read a population written by a protocol's ``kind: population`` entry."""
    return Population.from_dataset(load_analysis(store, region, name))


def run_analyses(protocol: Protocol, tree: xr.DataTree, store: str | os.PathLike[str]) -> list[str]:
    """Run every ``analyses:`` entry of ``protocol`` on ``tree`` and save the results into ``store``
    (all of them at the end: an entry that fails leaves no result of this run written).

    Returns the store paths written, region by region.
    """
    references = {}
    for i, spec in enumerate(protocol.analyses):
        if isinstance(spec, ComparisonAnalysis):  # read once, compared with every region
            from .comparison import read_reference

            references[i] = read_reference(spec.reference, protocol.folder, f"analyses[{i}].reference", ("analyses", i, "reference"))
    wanted = [protocol.analysis_regions(spec) for spec in protocol.analyses]
    results: dict[str, xr.Dataset] = {}
    for region in dict.fromkeys(r for regions in wanted for r in regions):  # each region read once, one at a time
        recorded = _in_memory_if_small(tree[region]["activity"])
        for i, spec in enumerate(protocol.analyses):
            if region not in wanted[i]:
                continue
            activity = select_time_window(recorded, spec.window)
            for entry in each_condition(spec, activity):
                results[f"{ANALYSES_NODE}/{region}/{entry.name}"] = compute_analysis(entry, activity, seed=protocol.seed,
                                                                                     reference=references.get(i))
    save_result_nodes(store, results)  # together: one trip to zarr's loop for all their arrays
    return list(results)


#: A region's stored activity up to this size is read once into memory for the protocol's
#: analyses, unless a dask.distributed client is in scope: each analysis of a dask-backed region
#: pays a graph and a scheduler pass (about 30 ms here), more than all the work on a small
#: region (the default protocol's 12 analyses: 0.55 -> 0.18 s of compute; benchmarks/README.md, cli_startup.py).
IN_PROCESS_BYTES = 64 * 2**20


def _in_memory_if_small(activity: xr.DataArray) -> xr.DataArray:
    """``activity`` in memory if it is small and no dask.distributed client is in scope, else
    dask-backed (activity opened without dask, ``open_recording(..., dask=False)``, is chunked
    as stored)."""
    from ..cluster import current_client

    small = activity.nbytes <= IN_PROCESS_BYTES and current_client() is None
    if activity.chunks is None:  # in memory, or xarray's lazily indexed array: read it here, no dask imported
        return activity.compute() if small else activity.chunk(activity.encoding.get("preferred_chunks", {}))
    if not small:
        return activity
    from dask.threaded import get

    # dask's threads given as the function: given nothing or a name, dask imports distributed to look for a client (~0.3 s)
    return activity.compute(scheduler=get)


def each_condition(spec: BaseModel, activity: xr.DataArray) -> list[BaseModel]:
    """The entries a protocol entry stands for: a population entry with ``condition: each``
    stands for one entry per level of ``by`` (in sorted order), named ``<name>-<level>``; any
    other entry for itself.

    >>> from neurorecord.protocol.schema import PopulationAnalysis
    >>> spec = PopulationAnalysis(name="likes", kind="population", test="ttest_ovr", by="label", condition="each")
    >>> a = xr.DataArray(np.zeros((4, 1)), dims=("presentation", "neuroid"), coords={"label": ("presentation", [1, 0, 1, 2])})
    >>> [(e.name, e.condition) for e in each_condition(spec, a)]
    [('likes-0', 0), ('likes-1', 1), ('likes-2', 2)]
    """
    if not isinstance(spec, PopulationAnalysis) or spec.condition != EACH:
        return [spec]
    levels = np.unique(np.asarray(activity[spec.by].values))
    return [spec.model_copy(update={"name": f"{spec.name}-{level}", "condition": level.item() if hasattr(level, "item") else level})
            for level in levels]


def select_time_window(activity: xr.DataArray, window: str | tuple[float, float]) -> xr.DataArray:
    """The time bins of ``activity`` an analysis averages over (a recording without ``time_bin`` is returned as is).

    ``window`` is ``"all"``, ``"stimulus"`` (bins whose ``epoch`` coordinate is ``stimulus``) or
    ``(start, end)`` in the units of ``time_bin_start``/``time_bin_end`` (ms after onset): the
    bins with ``start <= time_bin_start`` and ``time_bin_end <= end``.

    >>> a = xr.DataArray(np.arange(4.)[None, None, :], dims=("presentation", "neuroid", "time_bin"),
    ...                  coords={"time_bin_start": ("time_bin", [-10., 0., 10., 20.]),
    ...                          "time_bin_end": ("time_bin", [0., 10., 20., 30.])})
    >>> select_time_window(a, (0, 20)).values.ravel().tolist()
    [1.0, 2.0]
    """
    if "time_bin" not in activity.dims or window == "all":
        return activity
    if window == "stimulus":
        if "epoch" not in activity.coords:
            raise AnalysisError("window 'stimulus' needs an 'epoch' coordinate on time_bin (recorded with record.time)")
        chosen = activity["epoch"].values == "stimulus"
    else:
        start, end = window
        chosen = (activity["time_bin_start"].values >= start) & (activity["time_bin_end"].values <= end)
    if not chosen.any():
        raise AnalysisError(
            f"window {window!r} selects no time bin; bins span {float(activity['time_bin_start'].min()):g} to "
            f"{float(activity['time_bin_end'].max()):g} ms"
        )
    return activity.isel(time_bin=np.flatnonzero(chosen))
