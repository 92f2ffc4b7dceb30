"""Shared plumbing of the per-unit analyses: checking inputs, grouping presentations,
running a vectorised kernel over blocks of units, and labelling the results.

Every analysis takes an ``xarray.DataArray`` with dims ``presentation x neuroid`` (a
``time_bin`` dim is averaged over; select a response window with ``.sel(time_bin=...)`` first)
and the name of a ``presentation`` coordinate, and returns an ``xarray.Dataset`` indexed by
``neuroid`` that keeps every neuroid coordinate (``neuroid_id``, ``region``, ...).

Kernels see float64 numpy blocks of shape (presentation, units) and return arrays whose last
axis is units. On dask-backed activity (an opened recording) the kernels run as dask tasks, one
per block of units, on whatever scheduler is active (threads, processes, a distributed
cluster), and only their small per-unit outputs reach the calling process; results are
returned computed. A recording larger than memory works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import AnalysisError

__all__ = ["AnalysisError", "Grouping", "check_activity", "grouping", "map_unit_blocks", "unit_dataset", "fdr", "BLOCK_BYTES"]

#: Target size of one block of units (float64 presentation x units) handed to a kernel.
BLOCK_BYTES = 16 * 2**20
#: Target size (as float64) of the columns read at once from a dask-backed recording.
GROUP_BYTES = 256 * 2**20


def check_activity(activity: xr.DataArray, by: str | Sequence[str] | None = None) -> xr.DataArray:
    """Validate ``activity`` and return it as (presentation, neuroid), ``time_bin`` averaged.

    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((4, 3, 2)), dims=("presentation", "neuroid", "time_bin"),
    ...                  coords={"label": ("presentation", [0, 0, 1, 1])})
    >>> check_activity(a, "label").dims
    ('presentation', 'neuroid')
    """
    if not isinstance(activity, xr.DataArray):
        raise AnalysisError(f"activity: expected an xarray.DataArray (presentation x neuroid), found {type(activity).__name__}")
    missing = [d for d in ("presentation", "neuroid") if d not in activity.dims]
    if missing:
        raise AnalysisError(f"activity: expected dims 'presentation' and 'neuroid', found {activity.dims}")
    extra = [d for d in activity.dims if d not in ("presentation", "neuroid")]
    if extra and extra != ["time_bin"]:
        raise AnalysisError(
            f"activity: dims {extra} are not understood; reduce or select them first (only 'time_bin' is averaged over)"
        )
    if extra:
        activity = activity.mean("time_bin", keep_attrs=True)
    for name in [by] if isinstance(by, str) else list(by or []):
        coord = activity.coords.get(name)
        if coord is None or coord.dims != ("presentation",):
            valid = sorted(c for c in activity.coords if activity.coords[c].dims == ("presentation",))
            from ..errors import did_you_mean

            raise AnalysisError(
                f"by: {name!r} is not a coordinate on 'presentation'{did_you_mean(str(name), valid)}; "
                f"presentation coordinates: {', '.join(valid)}"
            )
    return activity.transpose("presentation", "neuroid")


@dataclass
class Grouping:
    """Presentations grouped by the values of one coordinate.

    ``codes[p]`` is the index in ``levels`` of presentation ``p``'s value; ``counts[g]`` the
    number of presentations in group ``g``.
    """

    by: str
    levels: np.ndarray
    codes: np.ndarray
    counts: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.levels)

    def one_hot(self) -> np.ndarray:
        """(groups, presentations) float64 indicator matrix: ``one_hot() @ x`` sums each group."""
        out = np.zeros((self.n_groups, len(self.codes)))
        out[self.codes, np.arange(len(self.codes))] = 1.0
        return out


def grouping(activity: xr.DataArray, by: str, min_groups: int = 2) -> Grouping:
    """Group the presentations of ``activity`` by coordinate ``by`` (sorted levels, NaN refused)."""
    values = np.asarray(activity.coords[by].values)
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise AnalysisError(f"by: coordinate {by!r} has NaN values (presentations without a {by}); select the others first")
    if values.dtype.kind not in "biuf":
        values = values.astype(object).astype(str)
    levels, codes = np.unique(values, return_inverse=True)
    if len(levels) < min_groups:
        raise AnalysisError(f"by: coordinate {by!r} has {len(levels)} distinct value(s); this analysis needs at least {min_groups}")
    return Grouping(by, levels, codes.reshape(-1), np.bincount(codes.reshape(-1), minlength=len(levels)))


def map_unit_blocks(kernel: Callable[[np.ndarray], np.ndarray], activity: xr.DataArray, n_out: int,
                    native: bool = False) -> np.ndarray:
    """Apply ``kernel`` to blocks of whole unit columns; return its outputs, shape (n_out, units).

    ``kernel(block)`` gets a float64 array (presentation, u) (or, with ``native``, the block in
    the activity's own dtype, for kernels that widen it slice by slice themselves) and returns
    an array (n_out, u). Blocks are sized to about :data:`BLOCK_BYTES`.

    Dask-backed activity (an opened recording) is never loaded in the calling process: the
    columns are rechunked to all presentations x a block of units and the kernel runs on each
    block through :func:`dask.array.map_blocks`, so it executes wherever the active scheduler
    runs tasks (threads by default, processes, or the workers of a ``distributed.Client``); only
    the small (n_out, u) outputs come back. The result is computed (numpy), not lazy. When the
    stored chunks are at most a block of units wide (the layout written by
    :func:`~neurorecord.store.create_node`), one graph covers every unit and each task reads
    only its own units' chunks; wider chunks (a store chunked by presentation only) are split
    in groups of columns of about :data:`GROUP_BYTES`, one graph per group, so memory stays
    bounded by one group plus one stored chunk, however large the recording.
    """
    n_pres, n_units = activity.shape
    width = max(1, min(n_units, BLOCK_BYTES // (8 * max(n_pres, 1))))
    if activity.chunks is None:  # in memory (or xarray's lazily read array): no dask, not even its import
        return _blocks(kernel, np.asarray(activity.data), n_out, width, native)
    import dask.array as da

    data = activity.data
    stored = max(data.chunks[1]) if n_units else 1
    if stored <= width:  # blocks of whole stored chunks: every task reads only its own units
        width = width // stored * stored
        group = n_units
    else:  # a stored chunk spans several blocks: bound what one graph holds
        group = max(stored, (GROUP_BYTES // (8 * max(n_pres, 1))) // stored * stored)
    result = np.empty((n_out, n_units))
    for start in range(0, n_units, group):
        columns = data[:, start : start + group].rechunk({0: -1, 1: width})
        out = da.map_blocks(_blocks, kernel, columns, n_out, width, native, dtype=np.float64, token="unit-kernel",
                            chunks=((n_out,), columns.chunks[1]), meta=np.empty((0, 0), dtype=np.float64))
        result[:, start : start + group] = out.compute()
    return result


def _blocks(kernel: Callable[[np.ndarray], np.ndarray], values: np.ndarray, n_out: int, width: int,
            native: bool = False) -> np.ndarray:
    result = np.empty((n_out, values.shape[1]))
    for start in range(0, values.shape[1], width):
        block = values[:, start : start + width]
        block = block if native and block.dtype.kind == "f" else block.astype(np.float64)
        result[:, start : start + width] = np.asarray(kernel(block)).reshape(n_out, block.shape[1])
    return result


def unit_dataset(activity: xr.DataArray, variables: dict[str, tuple[tuple[str, ...], np.ndarray]],
                 coords: dict[str, tuple[str, np.ndarray]] | None = None, attrs: dict | None = None) -> xr.Dataset:
    """A Dataset of per-unit results carrying every ``neuroid`` coordinate of ``activity``."""
    neuroid_coords = {k: v for k, v in activity.coords.items() if v.dims == ("neuroid",)}
    ds = xr.Dataset({k: xr.Variable(dims, values) for k, (dims, values) in variables.items()}, coords=neuroid_coords)
    if coords:
        ds = ds.assign_coords({k: v for k, v in coords.items()})
    ds.attrs.update(attrs or {})
    return ds


def fdr(p: np.ndarray, activity: xr.DataArray, method: str = "fdr_bh") -> tuple[np.ndarray, str]:
    """Multiple-comparison correction over the units of each region (:func:`~._multitest.adjusted_p`).

    ``p`` has units on its last axis; any leading axes (conditions) are corrected together with
    the units of the same region. Returns the corrected values (NaN where ``p`` is NaN) and a
    description of the family, e.g. ``"fdr_bh over the 100 units of region fc1"``.
    """
    from ._multitest import adjusted_p

    p = np.asarray(p, dtype=np.float64)
    q = np.full_like(p, np.nan)
    names = np.asarray(activity.coords["region"].values, dtype=object).astype(str) if "region" in activity.coords else None
    if names is None:
        codes, regions = np.zeros(p.shape[-1], dtype=np.int64), ["all"]
    elif len(names) and (names == names[0]).all():  # one region: nothing to group
        codes, regions = np.zeros(len(names), dtype=np.int64), [names[0]]
    else:  # regions in order of first appearance (numpy, not a Python loop over the units)
        regions, first, inverse = np.unique(names, return_index=True, return_inverse=True)
        order = np.argsort(first)
        regions, codes = regions[order], np.argsort(order)[inverse.reshape(-1)]
    families = []
    for index, region in enumerate(regions):
        cols = codes == index
        sub = p[..., cols]
        ok = ~np.isnan(sub)
        if ok.any():
            corrected = np.full(sub.shape, np.nan)
            corrected[ok] = adjusted_p(sub[ok], method)
            q[..., cols] = corrected
        lead = int(np.prod(p.shape[:-1])) if p.ndim > 1 else 1
        families.append(f"{int(cols.sum()) * lead} tests of region {region}" if lead > 1 else f"{int(cols.sum())} units of region {region}")
    return q, f"{method} over the " + "; ".join(families)
