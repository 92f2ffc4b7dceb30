"""Shared plumbing of the comparisons: condition means and their labels, aligning two recordings.

Every comparison starts from the mean response of each unit in each condition (the
presentations grouped by a ``presentation`` coordinate, ``stimulus_id`` by default), so
unequal trial counts per condition are fine. The means are read block by block with the
analyses' own kernels (:func:`~neurorecord.analysis.tuning.group_means`), so dask-backed
activity is never loaded whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ..analysis._units import check_activity, grouping, map_unit_blocks
from ..analysis.tuning import group_means
from ..errors import AnalysisError

__all__ = ["ConditionMeans", "condition_means", "condition_coords", "align_conditions", "presentation_coords"]


@dataclass
class ConditionMeans:
    """The mean response of every unit in every condition, with the conditions' labels.

    ``values`` (conditions, units) float64; ``levels`` the sorted condition values; ``counts``
    presentations per condition; ``activity`` the checked (presentation, neuroid) input;
    ``coords`` the presentation coordinates constant within every condition (one value per
    condition).
    """

    by: str
    values: np.ndarray
    levels: np.ndarray
    counts: np.ndarray
    codes: np.ndarray
    activity: xr.DataArray
    coords: dict[str, np.ndarray]


def presentation_coords(activity: xr.DataArray) -> list[str]:
    """Names of the 1-D coordinates on ``presentation`` (not the dim's own index)."""
    return [c for c in activity.coords if activity.coords[c].dims == ("presentation",) and c != "presentation"]


def condition_coords(activity: xr.DataArray, by: str, levels: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Presentation coordinates with one value per condition (``label`` per ``stimulus_id``)."""
    out: dict[str, np.ndarray] = {}
    for name in presentation_coords(activity):
        if name == by:
            continue
        values = np.asarray(activity.coords[name].values)
        frame = pd.DataFrame({"code": codes, "value": values})
        if (frame.groupby("code")["value"].nunique(dropna=False) <= 1).all():
            first = np.zeros(len(levels), dtype=np.int64)
            first[codes[::-1]] = np.arange(len(codes))[::-1]  # first presentation of each condition
            out[name] = values[first]
    return out


def condition_means(activity: xr.DataArray, by: str = "stimulus_id", min_conditions: int = 2) -> ConditionMeans:
    """Validate ``activity`` and return the per-condition means of its units (float64).

    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray([[1.0, 2.0], [3.0, 2.0], [5.0, 0.0]], dims=("presentation", "neuroid"),
    ...                  coords={"stimulus_id": ("presentation", ["b", "a", "a"])})
    >>> m = condition_means(a)
    >>> m.levels, m.values, m.counts
    (array(['a', 'b'], dtype='<U1'), array([[4., 1.],
           [1., 2.]]), array([2, 1]))
    """
    if not isinstance(by, str):
        raise AnalysisError(f"by: expected the name of a presentation coordinate, found {by!r}")
    act = check_activity(activity, by)
    groups = grouping(act, by, min_groups=min_conditions)
    single = bool((groups.counts == 1).all())  # one presentation per condition: its row is the mean
    rows = np.empty(groups.n_groups, dtype=np.int64)
    rows[groups.codes] = np.arange(len(groups.codes))
    if isinstance(act.data, da.Array):  # block by block: never the whole recording in memory
        kernel = (lambda b: b[rows]) if single else (lambda b: group_means(b, groups.codes, groups.n_groups))
        values = map_unit_blocks(kernel, act, groups.n_groups)
    else:  # in memory already: one pass over the whole array
        data = np.asarray(act.data)
        if single and data.dtype == np.float64 and np.array_equal(rows, np.arange(len(rows))):
            values = data  # already the means, in order: no copy (read only from here on)
        else:
            values = data[rows].astype(np.float64, copy=False) if single else group_means(data, groups.codes, groups.n_groups)
    coords = condition_coords(act, by, groups.levels, groups.codes)
    return ConditionMeans(by, values, groups.levels, groups.counts, groups.codes, act, coords)


def align_conditions(model: ConditionMeans, biology: ConditionMeans,
                     names: tuple[str, str] = ("model", "biology")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of both condition-mean tables for the conditions they share, in ``biology``'s order.

    Every condition of the second must be in the first (a comparison on a subset of the
    biological conditions would be a different comparison); returns
    ``(model_values, biology_values, levels)``.
    """
    index = pd.Index(model.levels.astype(str) if model.levels.dtype.kind not in "biuf" else model.levels)
    wanted = biology.levels.astype(str) if biology.levels.dtype.kind not in "biuf" else biology.levels
    rows = index.get_indexer(wanted)
    if (rows < 0).any():
        missing = [str(v) for v in np.asarray(wanted)[rows < 0]]
        more = f", ... ({len(missing)} in all)" if len(missing) > 5 else ""
        raise AnalysisError(
            f"{names[0]}: expected every {biology.by} of {names[1]} among its conditions, found no "
            f"{', '.join(missing[:5])}{more} (it has {len(index)} conditions, e.g. "
            f"{', '.join(map(str, index[:3]))})"
        )
    return model.values[rows], biology.values, biology.levels
