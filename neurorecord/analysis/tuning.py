"""Tuning curves: each unit's mean response per condition, with SEM and a bootstrap CI.

A tuning curve groups the presentations of a recording by a stimulus coordinate (``label``,
``orientation``, ...) and summarises each unit's responses in every group. It runs the same on a
model recording and on a biological one (binned spike counts), and on dask-backed activity
(an opened store) block by block, with the same result as on numpy.

The group statistics defined here (:func:`group_means`, :func:`group_moments`) are the kernels
the selectivity indices and the von Mises fits share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .._validation import check_scalar, check_seed
from ._units import AnalysisError, check_activity, grouping, map_unit_blocks, unit_dataset

__all__ = ["tuning_curve", "group_means", "group_moments", "describe_variables"]

#: Target size in bytes of one (n_boot, units) array of bootstrap means.
_BOOT_BYTES = 32 * 2**20


def _sort_groups(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable order that sorts presentations by group, counts per group and group starts."""
    codes = np.asarray(codes).reshape(-1)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, counts, starts


def _reduce_groups(sorted_values: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of the rows of each group (rows sorted by group); NaN for empty groups."""
    out = np.full((len(counts),) + sorted_values.shape[1:], np.nan)
    full = counts > 0
    if full.any():
        out[full] = np.add.reduceat(sorted_values, starts[full], axis=0)
    return out


def group_means(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of ``values`` per group.

    Parameters
    ----------
    values : numpy.ndarray of shape (n_presentations, n_units), float64
        Responses; one column per unit.
    codes : numpy.ndarray of shape (n_presentations,), int
        Group of each presentation, an index in ``range(n_groups)``.
    n_groups : int
        Number of groups.

    Returns
    -------
    numpy.ndarray of shape (n_groups, n_units)
        Group means; NaN for a group without presentations.

    Examples
    --------
    >>> import numpy as np
    >>> group_means(np.array([[1.0], [3.0], [10.0]]), np.array([0, 0, 1]), 3)[:, 0]
    array([ 2., 10., nan])
    """
    order, counts, starts = _sort_groups(codes, n_groups)
    sums = _reduce_groups(np.asarray(values, dtype=np.float64)[order], counts, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts.reshape((-1,) + (1,) * (sums.ndim - 1))


def group_moments(values: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, means and sums of squared deviations from the mean, per group (two passes).

    Parameters
    ----------
    values : numpy.ndarray of shape (n_presentations, n_units), float64
        Responses; one column per unit.
    codes : numpy.ndarray of shape (n_presentations,), int
        Group of each presentation, an index in ``range(n_groups)``.
    n_groups : int
        Number of groups.

    Returns
    -------
    counts : numpy.ndarray of shape (n_groups,), int
    means : numpy.ndarray of shape (n_groups, n_units)
        NaN for empty groups.
    sum_squares : numpy.ndarray of shape (n_groups, n_units)
        ``sum((x - mean)**2)`` over each group's presentations; the ddof=1 variance is
        ``sum_squares / (counts - 1)``. NaN for empty groups.

    Examples
    --------
    >>> import numpy as np
    >>> n, m, ss = group_moments(np.array([[1.0], [3.0], [10.0]]), np.array([0, 0, 1]), 2)
    >>> n, m[:, 0], ss[:, 0]
    (array([2, 1]), array([ 2., 10.]), array([2., 0.]))
    """
    values = np.asarray(values, dtype=np.float64)
    order, counts, starts = _sort_groups(codes, n_groups)
    ordered = values[order]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = _reduce_groups(ordered, counts, starts) / counts[:, None]
    sorted_codes = np.asarray(codes).reshape(-1)[order]
    deviations = ordered - means[sorted_codes]
    return counts, means, _reduce_groups(deviations * deviations, counts, starts)


def _bootstrap_key_draw(seed: int, key: int, n: int, n_boot: int) -> np.ndarray:
    """Resampling weights (n_boot, n): how often each of a group's n presentations is drawn.

    The draws of group ``key`` come from ``default_rng(SeedSequence(seed, spawn_key=(key,)))``
    as ``integers(0, n, size=(n_boot, n))``, so they do not depend on the block of units.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))
    draws = rng.integers(0, n, size=(n_boot, n))
    flat = (draws + n * np.arange(n_boot)[:, None]).reshape(-1)
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _tuning_kernel(values: np.ndarray, codes: np.ndarray, keys: np.ndarray, ci: float, n_boot: int,
                   seed: int) -> np.ndarray:
    """(4, groups, units): mean, sem, ci_low, ci_high of one block of units."""
    n_groups = len(keys)
    counts, means, ss = group_moments(values, codes, n_groups)
    out = np.full((4, n_groups, values.shape[1]), np.nan)
    out[0] = means
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(ss / (counts[:, None] - 1))
    several = counts >= 2
    out[1, several] = sd[several] / np.sqrt(counts[several, None])
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    alpha = (1.0 - ci) / 2.0
    width = max(1, _BOOT_BYTES // (8 * n_boot))
    for g in np.flatnonzero(several):
        n = int(counts[g])
        weights = _bootstrap_key_draw(seed, int(keys[g]), n, n_boot)
        rows = values[order[starts[g] : starts[g] + n]]
        for start in range(0, rows.shape[1], width):
            boot_means = weights @ rows[:, start : start + width] / n
            out[2:, g, start : start + width] = np.quantile(boot_means, [alpha, 1.0 - alpha], axis=0)
    return out


def _by_names(by: str | Sequence[str]) -> list[str]:
    names = [by] if isinstance(by, str) else list(by) if isinstance(by, (list, tuple)) else None
    if not names or len(names) > 2 or not all(isinstance(n, str) for n in names):
        raise AnalysisError(f"by: expected a presentation coordinate name or a list of two, found {by!r}")
    if len(names) == 2 and names[0] == names[1]:
        raise AnalysisError(f"by: the two coordinates of a 2-D tuning map must differ, found {names}")
    return names


def _common_attrs(activity: xr.DataArray) -> dict:
    units = activity.attrs.get("units")
    return {"activity_units": str(units)} if units is not None else {}


def describe_variables(ds: xr.Dataset, activity: xr.DataArray, table: dict[str, tuple[str, str | None]],
                       by: Sequence[str] = ()) -> xr.Dataset:
    """Set CF-style ``long_name`` and ``units`` attrs on the variables of a result (in place).

    ``table`` maps a variable to ``(long_name, units)``; units ``"activity"`` stand for the
    activity's own ``units`` attr (left out when it has none), ``"by"`` for those of the first
    ``by`` coordinate, None for none. The ``by`` coordinates of ``ds`` get the attrs of the
    activity's coordinates of the same name (``units``, ``long_name``, ``period``).

    >>> import numpy as np, xarray as xr
    >>> act = xr.DataArray(np.zeros((2, 1)), dims=("presentation", "neuroid"), attrs={"units": "Hz"})
    >>> ds = describe_variables(xr.Dataset({"m": ("neuroid", [1.0])}), act, {"m": ("mean response", "activity")})
    >>> ds["m"].attrs
    {'long_name': 'mean response', 'units': 'Hz'}
    """
    by = [by] if isinstance(by, str) else list(by)
    for name in by:
        if name in ds.coords and name in activity.coords:
            ds[name].attrs.update(activity.coords[name].attrs)
    units_of = {"activity": activity.attrs.get("units"),
                "by": activity.coords[by[0]].attrs.get("units") if by and by[0] in activity.coords else None}
    for name, (long_name, units) in table.items():
        if name in ds:
            units = units_of.get(units, units) if units is not None else None
            ds[name].attrs.update({"long_name": long_name, **({"units": str(units)} if units is not None else {})})
    return ds


def tuning_curve(activity: xr.DataArray, by: str | Sequence[str], ci: float = 0.95, n_boot: int = 1000,
                 seed: int = 0) -> xr.Dataset:
    """Tuning curve of every unit: mean, SEM and bootstrap CI of the response per condition.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (any unit: a.u. for a model, spikes/bin for a biological recording); a
        ``time_bin`` dim is averaged over. May be dask-backed.
    by : str or list of two str
        Name of the ``presentation`` coordinate whose values are the conditions (``"label"``,
        ``"orientation"``). With two names the result is a 2-D map over every combination of
        their values (combinations never presented get NaN statistics and ``n`` = 0).
    ci : float, default 0.95
        Confidence level of the interval, in (0, 1).
    n_boot : int, default 1000
        Number of bootstrap resamples.
    seed : int, default 0
        Seed of the resampling (a non-negative int; ``None`` is refused so that the result,
        computed block by block, is reproducible).

    Returns
    -------
    xarray.Dataset
        Dims ``(by, neuroid)`` (``(by1, by2, neuroid)`` for a 2-D map); the condition dims are
        named after the coordinates and carry their sorted values; every ``neuroid`` coordinate
        of ``activity`` is kept. Variables:

        - ``mean``: mean response per condition and unit;
        - ``sem``: standard error of the mean, ``std(ddof=1) / sqrt(n)``; NaN where n < 2;
        - ``ci_low``, ``ci_high``: percentile bootstrap interval of the mean: within each
          condition the n presentations are resampled with replacement ``n_boot`` times, the
          same resamples for every unit, and the ``(1 - ci)/2`` and ``(1 + ci)/2`` quantiles
          (linear interpolation) of the resampled means are taken; NaN where n < 2. The
          resamples of condition ``k`` (its flat index in the condition grid) are
          ``default_rng(SeedSequence(seed, spawn_key=(k,))).integers(0, n, (n_boot, n))``;
        - ``n``: number of presentations per condition, dims ``(by,)``.

        ``attrs``: ``analysis``, ``by``, ``ci``, ``n_boot``, ``seed``, ``ci_method``,
        ``activity_units`` (when ``activity`` states its units).

    Raises
    ------
    AnalysisError
        If ``activity`` lacks the dims, ``by`` is not a presentation coordinate, or ``ci``,
        ``n_boot`` or ``seed`` is out of range.

    Notes
    -----
    Memory of the bootstrap is ``n_boot x n`` resampling weights per condition plus
    ``n_boot x units`` bootstrap means for a slice of units (bounded to about 32 MiB).
    NaN responses propagate to the statistics of their condition.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> activity = xr.DataArray(
    ...     np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 2.0], [7.0, 4.0]]),
    ...     dims=("presentation", "neuroid"),
    ...     coords={"label": ("presentation", ["a", "a", "b", "b"]),
    ...             "neuroid_id": ("neuroid", ["fc1.0", "fc1.1"])})
    >>> tc = tuning_curve(activity, "label", n_boot=200)
    >>> tc["mean"].values
    array([[2., 0.],
           [6., 3.]])
    >>> tc["sem"].values
    array([[1., 0.],
           [1., 1.]])
    >>> tc["n"].values, tc["label"].values.tolist()
    (array([2, 2]), ['a', 'b'])
    >>> bool(((tc["ci_low"] <= tc["mean"]) & (tc["mean"] <= tc["ci_high"])).all())
    True
    """
    names = _by_names(by)
    check_scalar("ci", ci, float, low=0.0, high=1.0, closed="neither", error=AnalysisError)
    check_scalar("n_boot", n_boot, int, low=1, error=AnalysisError)
    check_seed("seed", seed, error=AnalysisError)
    act = check_activity(activity, names)
    groups = [grouping(act, name, min_groups=1) for name in names]
    shape = tuple(g.n_groups for g in groups)
    flat = np.ravel_multi_index(tuple(g.codes for g in groups), shape) if len(groups) == 2 else groups[0].codes
    keys, codes = np.unique(flat, return_inverse=True)
    codes = codes.reshape(-1)
    n_groups = len(keys)
    ci_f, n_boot_i, seed_i = float(ci), int(n_boot), int(seed)

    def kernel(block: np.ndarray) -> np.ndarray:
        return _tuning_kernel(block, codes, keys, ci_f, n_boot_i, seed_i).reshape(4 * n_groups, -1)

    stats = map_unit_blocks(kernel, act, 4 * n_groups).reshape(4, n_groups, -1)
    n_units = act.sizes["neuroid"]
    grid = np.full((4, int(np.prod(shape)), n_units), np.nan)
    grid[:, keys] = stats
    grid = grid.reshape((4,) + shape + (n_units,))
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    dims = tuple(names) + ("neuroid",)
    variables = {name: (dims, grid[i]) for i, name in enumerate(("mean", "sem", "ci_low", "ci_high"))}
    variables["n"] = (tuple(names), counts.astype(np.int64))
    attrs = {
        "analysis": "tuning_curve",
        "by": names[0] if len(names) == 1 else names,
        "ci": ci_f,
        "n_boot": n_boot_i,
        "seed": seed_i,
        "ci_method": "percentile bootstrap; presentations resampled with replacement within each condition, "
                     "the same resamples for every unit",
        **_common_attrs(act),
    }
    ds = unit_dataset(act, variables, coords={name: (name, g.levels) for name, g in zip(names, groups)}, attrs=attrs)
    level = f"{100 * ci_f:g}% bootstrap CI of the mean response"
    return describe_variables(ds, act, {"mean": ("mean response", "activity"),
                                        "sem": ("standard error of the mean response", "activity"),
                                        "ci_low": (f"lower end of the {level}", "activity"),
                                        "ci_high": (f"upper end of the {level}", "activity"),
                                        "n": ("presentations per condition", None)}, by=names)
