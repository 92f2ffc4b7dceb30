"""Per-unit statistical tests, vectorised over all units at once.

Every test takes a recording's ``activity`` (presentation x neuroid; a ``time_bin`` dim is
averaged over) and the name ``by`` of a presentation coordinate whose values are the conditions,
tests every unit in one pass over blocks of unit columns, and returns an ``xarray.Dataset``
indexed by ``neuroid`` that keeps every neuroid coordinate. It runs the same on a model recording
and on a biological one (binned spike counts), on numpy or dask-backed activity (an opened
store), with the same result.

Each p value gets a corrected value ``q`` over the units of its region (Benjamini-Hochberg by
default, Bonferroni on request: ``correction=``); ``attrs["family"]`` says which tests were
corrected together.

========================  ===========================================  ======================  ==============================
function                  test                                         statistic               checked against
========================  ===========================================  ======================  ==============================
:func:`anova`             one-way ANOVA across the levels of ``by``    ``F`` (neuroid)         ``f_oneway``
:func:`kruskal`           Kruskal-Wallis H, ranks with ties averaged   ``H`` (neuroid)         ``kruskal``
:func:`ttest_ovr`         Welch t, each level against the rest         ``t`` (by, neuroid)     ``ttest_ind(equal_var=False)``
:func:`mannwhitney_ovr`   Mann-Whitney U, each level against the rest  ``U`` (by, neuroid)     ``mannwhitneyu``
:func:`rayleigh`          Rayleigh test of circular tuning             ``Z``, ``R`` (neuroid)  ``pingouin.circ_rayleigh``
:func:`permutation_test`  label shuffles, for any per-unit index       ``observed`` (neuroid)  ``permutation_test``
========================  ===========================================  ======================  ==============================

(``scipy.stats`` functions unless said.) The kernels see blocks (presentation x units) in
float64, or, for the ANOVA and the rank tests, float32 activity as it is, widened exactly (to
float64) slice by slice; they never loop over units: group sums are matrix products with the
one-hot matrix of the conditions (``Grouping.one_hot() @ block``), and the rank tests rank all
units of a block at once (:func:`rank_sums`). The statistics agree with their reference per
unit to about 1e-12 (relative), exactly for the rank tests. Blocks of a numpy array are
processed in parallel threads (one per CPU; set dask's scheduler to ``"synchronous"`` for one);
blocks of a dask array by the active dask scheduler.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import Any

import numpy as np
import xarray as xr
from dask import is_dask_collection
from scipy import special

from . import _units
from ._units import (
    AnalysisError,
    Grouping,
    check_activity,
    fdr,
    grouping,
    map_unit_blocks,
    unit_dataset,
)

__all__ = ["anova", "kruskal", "ttest_ovr", "mannwhitney_ovr", "rayleigh", "permutation_test", "rank_sums",
           "CORRECTIONS"]

#: Multiple-comparison corrections the tests accept (statsmodels ``multipletests`` method names).
CORRECTIONS = ("fdr_bh", "bonferroni")

#: Rows (presentations) of a block processed together by the ANOVA pass, chosen so that one
#: slice of rows (x units, float64) stays in the L2 cache: 512 KiB (measured fastest here).
_ROW_BYTES = 512 * 2**10

#: Units ranked together by :func:`rank_sums`: their sort keys (units x presentations, int64)
#: stay in cache for the steps after the sort.
_RANK_UNITS = 32

#: Size of the groups of units that :func:`rank_sums` transposes at once (one row per unit, in
#: the activity's dtype): wide enough that each presentation's values are read as a run of
#: several cache lines, small enough to stay in the L2 cache.
_RANK_CHUNK_BYTES = 2 * 2**20

#: dtypes whose values are all exactly representable in float32 (ranked through the fast keys).
_FLOAT32_EXACT = {np.dtype(t) for t in ("float32", "float16", "int8", "uint8", "int16", "uint16", "bool")}

#: Largest ratio of a column's sum of squares (about the centre it was summed around) to its
#: total sum of squares (about its grand mean), ``1 + (mean - centre)**2 / variance``, that the
#: ANOVA accepts; a column above it is summed again, centred on its grand mean. Rounding errors
#: grow with the ratio: at 4, F differs from scipy's (data centred on the grand mean) by at most
#: 2e-12 (relative; 1e-13 median) over 4,000 units of 2,000 presentations in 10 conditions,
#: against 5e-14 for centred data.
_ANOVA_CONDITION = 4.0

#: Relative tolerance below which a within-group sum of squares is checked for exact constancy.
_CONSTANT_RTOL = 1e-9

#: Mean resultant length below which a unit has no preferred angle (rounding of balanced responses).
_NO_DIRECTION = 1e-12


# --------------------------------------------------------------------------------------------
# shared helpers


def _prepare(activity: xr.DataArray, by: str, correction: str, min_groups: int = 2) -> tuple[xr.DataArray, Grouping]:
    """Validate the arguments every test shares, before any work."""
    if not isinstance(by, str):
        raise AnalysisError(f"by: expected the name of one presentation coordinate (str), found {type(by).__name__}")
    if correction not in CORRECTIONS:
        raise AnalysisError(f"correction: expected one of {', '.join(map(repr, CORRECTIONS))}, found {correction!r}")
    act = check_activity(activity, by)
    return act, grouping(act, by, min_groups=min_groups)


def _attrs(test: str, reference: str, act: xr.DataArray, groups: Grouping, correction: str, family: str,
           **extra: Any) -> dict:
    """The attributes every test result carries (JSON-serialisable, so they travel into a store)."""
    attrs = {
        "test": test,
        "reference": reference,
        "by": groups.by,
        "levels": groups.levels.tolist(),
        "n_per_level": groups.counts.tolist(),
        "n_presentations": int(len(groups.codes)),
        "correction": correction,
        "family": family,
    }
    attrs.update(extra)
    units = act.attrs.get("units")
    if units is not None:
        attrs["activity_units"] = str(units)
    return attrs


def _map_blocks(kernel: Callable[[np.ndarray], np.ndarray], act: xr.DataArray, n_out: int,
                native: bool = False) -> np.ndarray:
    """:func:`map_unit_blocks`, with the blocks of a numpy array run in parallel threads.

    A numpy-backed ``activity`` is cut into the blocks of units ``map_unit_blocks`` would cut
    (so the results are the same, bit for bit), each handed to ``map_unit_blocks`` in a pool of
    one thread per CPU; the kernels spend their time in numpy calls that release the GIL. A dask
    ``scheduler`` set to ``"synchronous"`` in ``dask.config`` runs them one by one. BLAS is
    limited to one thread meanwhile (the kernels' matrix products are small: several BLAS
    threads per block only contend). Dask-backed activity goes to ``map_unit_blocks`` as it is,
    computed by whatever scheduler is active.
    """
    import dask

    n_pres, n_units = act.shape
    width = max(1, min(n_units, _units.BLOCK_BYTES // (8 * max(n_pres, 1))))  # as map_unit_blocks
    serial = dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded")
    n_threads = 1 if serial else min(_n_cpus(), -(-n_units // width))
    with _blas_threads(1):
        if is_dask_collection(act.data) or n_threads == 1:
            return map_unit_blocks(kernel, act, n_out, native)

        def run(start: int) -> np.ndarray:
            return map_unit_blocks(kernel, act.isel(neuroid=slice(start, start + width)), n_out, native)

        with ThreadPoolExecutor(n_threads) as pool:
            return np.concatenate(list(pool.map(run, range(0, n_units, width))), axis=1)


def _n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _blas_threads(n: int):
    """Context limiting BLAS to ``n`` threads (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _constant_groups(block: np.ndarray, cols: np.ndarray, codes: np.ndarray, first: np.ndarray,
                     one_hot: np.ndarray) -> np.ndarray:
    """(groups, len(cols)) bool: whether all of a group's values are identical, for columns ``cols``."""
    sub = block[:, cols]
    differs = (sub != sub[first[codes]]).astype(np.float64)
    return (one_hot @ differs) == 0


def _first_of_groups(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first presentation of each group."""
    first = np.full(n_groups, -1)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order
    return first


# --------------------------------------------------------------------------------------------
# ANOVA


def _slice_rows(n: int, u: int) -> int:
    """Rows of a (n, u) block that the ANOVA pass processes together (:data:`_ROW_BYTES`)."""
    return int(max(1, min(n, _ROW_BYTES // (8 * max(u, 1)))))


def _anova_sums(block: np.ndarray, one_hot: np.ndarray, centre: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Group sums (groups, u) and sum of squares (u,) of ``block - centre`` in float64.

    ``centre`` None sums the values themselves. One pass over ``block`` (presentation, u), float32
    or float64, in slices of rows that stay in cache: widen (float32 values are exact in float64)
    or centre into a buffer, group sums by a matrix product (BLAS), squares by ``einsum``. A
    float64 block summed uncentred is read in place, without a buffer.
    """
    n, u = block.shape
    rows = _slice_rows(n, u)
    in_place = centre is None and block.dtype == np.float64
    buffer = np.empty(0 if in_place else rows * u)
    part = np.empty((one_hot.shape[0], u))
    sums = np.zeros((one_hot.shape[0], u))
    squares = np.zeros(u)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        if in_place:
            values = block[start:stop]
        else:
            values = buffer[: (stop - start) * u].reshape(stop - start, u)
            if centre is None:
                np.copyto(values, block[start:stop])
            else:
                np.subtract(block[start:stop], centre, out=values)
        np.matmul(one_hot[:, start:stop], values, out=part)
        sums += part
        squares += np.einsum("ij,ij->j", values, values)
    return sums, squares


def _anova_kernel(block: np.ndarray, one_hot: np.ndarray, counts: np.ndarray, codes: np.ndarray,
                  first: np.ndarray) -> np.ndarray:
    """F and p of a one-way ANOVA for every column of ``block`` (presentation, units).

    The sums of squares come from :func:`_anova_sums` with the algebra of
    ``scipy.stats.f_oneway``, whose correction term (sum of the values)**2 / n makes them sums of
    squares about the grand mean whatever the values were summed around. Summed uncentred, a
    column loses accuracy as ``1 + mean**2 / variance`` (its sum of squares over its total sum of
    squares) grows: so a block is summed uncentred (one pass fewer) only when the mean of every
    column's first slice of rows is within one standard deviation (of those rows) of zero, and
    otherwise centred on that mean; afterwards any column whose ratio still exceeds
    :data:`_ANOVA_CONDITION` is summed again, centred on its grand mean.
    """
    n, u = block.shape
    head = block[: _slice_rows(n, u)].astype(np.float64)  # the first slice of rows
    with np.errstate(invalid="ignore"):  # NaN and infinite responses give NaN, as in scipy
        mean = head.mean(axis=0)
        variance = np.einsum("ij,ij->j", head, head) / len(head) - mean * mean  # rough: it only decides
        centre = None if np.all(mean * mean <= variance) else mean
        sums, squares = _anova_sums(block, one_hot, centre)
        centres = np.zeros(u) if centre is None else centre
        total = sums.sum(axis=0)
        redo = np.flatnonzero(squares > _ANOVA_CONDITION * (squares - total**2 / n))  # NaN: not redone
        if len(redo):
            grand = centres[redo] + total[redo] / n
            sums[:, redo], squares[redo] = _anova_sums(block[:, redo], one_hot, grand)
            centres[redo] = grand
            total = sums.sum(axis=0)
    k = len(counts)
    # the algebra of scipy.stats.f_oneway on the values less their centre
    normalized = total**2 / n
    ss_total = squares - normalized
    ss_between = (sums**2 / counts[:, None]).sum(axis=0) - normalized
    ss_within = ss_total - ss_between
    df_between, df_within = k - 1, n - k
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_between / df_between) / (ss_within / df_within) if df_within > 0 else np.full(u, np.nan)
    # groups of identical values: F is inf (groups differ) or NaN (all identical), as in scipy
    candidates = np.flatnonzero(ss_within <= _CONSTANT_RTOL * (squares + n * centres**2))
    if len(candidates) and df_within > 0:
        constant = _constant_groups(block, candidates, codes, first, one_hot).all(axis=0)
        same = (block[:, candidates] == block[0, candidates]).all(axis=0)
        f[candidates[constant]] = np.inf
        f[candidates[same]] = np.nan
    p = special.fdtrc(df_between, df_within, f)
    return np.stack([f, p])


def anova(activity: xr.DataArray, by: str, correction: str = "fdr_bh") -> xr.Dataset:
    """One-way ANOVA of every unit's response across the conditions ``by``.

    Tests, for each unit separately, whether its mean response differs between the levels of
    ``by`` (H0: equal means in all conditions), with the F test of a one-way ANOVA. All units are
    tested at once, in one pass over the responses: the group sums of a block of units come from
    matrix products and the sums of squares from the algebra of ``scipy.stats.f_oneway``, whose
    correction term makes them sums of squares about the grand mean. Responses are summed as
    they are where their mean is small against their spread, and otherwise centred first (on the
    mean of the first presentations, or on the grand mean in a second pass where that was not
    enough): the result equals ``f_oneway`` on the same values in float64 to about 1e-12
    (relative). float32 activity is widened exactly, so this holds for it too; ``f_oneway``
    given the float32 arrays themselves computes in float32 and differs by up to about 1e-6.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (any unit); a ``time_bin`` dim is averaged over. May be dask-backed (an opened
        recording): it is processed block by block of units.
    by : str
        Name of the ``presentation`` coordinate whose values are the conditions (``"label"``,
        ``"orientation"``); at least two distinct values.
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over the units of each region.

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid``, with every neuroid coordinate of ``activity``:

        - ``F`` (neuroid): the F statistic, between-condition over within-condition mean square.
          ``inf`` for a unit whose responses are identical within every condition but differ
          between conditions, NaN for a unit whose responses are all identical (both as scipy).
        - ``p`` (neuroid): ``P(F(df_between, df_within) >= F)``; 0 where ``F`` is inf, NaN where
          ``F`` is NaN (and for units with NaN responses).
        - ``q`` (neuroid): ``p`` corrected over the units of each region.
        - ``df_between``, ``df_within`` (scalars): ``n_levels - 1`` and
          ``n_presentations - n_levels``.

        attrs: ``test``, ``reference``, ``by``, ``levels``, ``n_per_level``,
        ``n_presentations``, ``correction``, ``family`` (the tests corrected together).

    Raises
    ------
    AnalysisError
        ``activity`` lacks the dims presentation and neuroid, ``by`` is not a presentation
        coordinate (the message lists those there are) or has fewer than two values, or
        ``correction`` is not one of :data:`CORRECTIONS`.

    See Also
    --------
    kruskal : the rank-based (non-parametric) counterpart.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> label = np.repeat([0, 1, 2], 10)
    >>> x = rng.normal(size=(30, 2)); x[label == 1, 0] += 2     # unit a.0 responds to label 1
    >>> act = xr.DataArray(x, dims=("presentation", "neuroid"),
    ...                    coords={"label": ("presentation", label),
    ...                            "neuroid_id": ("neuroid", ["a.0", "a.1"]), "region": ("neuroid", ["a", "a"])})
    >>> result = anova(act, "label")
    >>> result["F"].values.round(2), (result["q"] < 0.05).values
    (array([13.53,  1.08]), array([ True, False]))
    >>> int(result["df_between"]), int(result["df_within"])
    (2, 27)
    """
    act, groups = _prepare(activity, by, correction)
    one_hot = groups.one_hot()
    first = _first_of_groups(groups.codes, groups.n_groups)

    def kernel(block: np.ndarray) -> np.ndarray:
        return _anova_kernel(block, one_hot, groups.counts, groups.codes, first)

    f, p = _map_blocks(kernel, act, 2, native=True)  # the kernel widens to float64 slice by slice
    q, family = fdr(p, act, correction)
    n, k = len(groups.codes), groups.n_groups
    return unit_dataset(
        act,
        {"F": (("neuroid",), f), "p": (("neuroid",), p), "q": (("neuroid",), q),
         "df_between": ((), np.int64(k - 1)), "df_within": ((), np.int64(n - k))},
        attrs=_attrs("one-way ANOVA (F test)", "scipy.stats.f_oneway", act, groups, correction, family),
    )


# --------------------------------------------------------------------------------------------
# ranks


def rank_sums(values: np.ndarray, codes: np.ndarray, n_groups: int,
              float32_exact: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank sums per group and tie terms of every column, ranking all columns at once.

    Each column of ``values`` is ranked on its own (1 to n_presentations; tied values get the
    average of the ranks they span, as ``scipy.stats.rankdata(method="average")``), and the
    ranks of each group's presentations are summed.

    Parameters
    ----------
    values : numpy.ndarray of shape (n_presentations, n_units)
        One column per unit; float32 or float64 (other dtypes are converted to float64).
    codes : numpy.ndarray of shape (n_presentations,), int
        Group of each presentation, in ``range(n_groups)``.
    n_groups : int
        Number of groups.
    float32_exact : bool, default False
        Promise that every value is exactly a float32 (float32 ``values`` are); otherwise each
        slice of float64 columns is checked.

    Notes
    -----
    Columns are transposed a few hundred at a time into one row per unit (a copy that runs
    along the rows of ``values``, in their own dtype), then ranked 32 at a time, in one of three
    ways, all exact:

    - small integers (spike counts: a range below 4096): by counting, one histogram of
      (column, group, value), no sort;
    - values that are exactly float32 (model activity): one ``sort`` of float64 keys that carry
      the column and group in the 29 low mantissa bits a float32 leaves at zero, no ``argsort``;
      the rank sums are then one weighted ``bincount`` of the sorted positions, and only the
      entries of tied runs are visited again (their average rank);
    - anything else (float64 values, NaN, infinities): ``argsort``.

    Returns
    -------
    sums : numpy.ndarray of shape (n_groups, n_units)
        Sum of the (average) ranks of each group's presentations. Exact: ranks are half-integers.
    tie_term : numpy.ndarray of shape (n_units,)
        ``sum(t**3 - t)`` over the runs of ``t`` tied values (0 without ties), the quantity the
        tie corrections of Kruskal-Wallis and Mann-Whitney use.
    has_nan : numpy.ndarray of shape (n_units,), bool
        Columns with a NaN value (their sums are meaningless).

    Examples
    --------
    >>> import numpy as np
    >>> sums, ties, _ = rank_sums(np.array([[1.0], [2.0], [2.0], [5.0]]), np.array([0, 0, 1, 1]), 2)
    >>> sums[:, 0], ties       # ranks 1, 2.5, 2.5, 4
    (array([3.5, 6.5]), array([6.]))
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    float32_exact = float32_exact or values.dtype == np.float32
    codes = np.asarray(codes).reshape(-1)
    n, u = values.shape
    k = int(n_groups)
    sums = np.empty((k, u))
    tie_term = np.empty(u)
    has_nan = np.zeros(u, dtype=bool)
    if u == 0:
        return sums, tie_term, has_nan
    width = int(max(1, min(u, _RANK_UNITS, _LOW_BITS // max(k, 1))))
    chunk = int(max(width, _RANK_CHUNK_BYTES // (values.itemsize * max(n, 1)) // width * width))
    # buffers reused by every slice of columns (no fresh memory is touched per slice)
    transposed = np.empty((min(u, chunk), n), values.dtype)
    keys = np.empty((width, n))
    bits = keys.view(np.int64)
    bins = np.empty((width, n), np.int64)
    same = np.empty((width, max(n - 1, 0)), bool)
    # low bits of a key: column-in-slice * k + group code, i.e. the bincount bin of the entry
    low_words = np.arange(width, dtype=np.int64)[:, None] * k + codes[None, :].astype(np.int64)
    positions = np.tile(np.arange(1.0, n + 1), width)
    for chunk_start in range(0, u, chunk):
        chunk_stop = min(u, chunk_start + chunk)
        # one row per unit (presentations along the row), read from whole rows of ``values``
        # (the transposing copy runs along them); + 0.0 turns -0.0 into +0.0: equal values
        # must have equal bits
        unit_rows = transposed[: chunk_stop - chunk_start]
        np.add(values[:, chunk_start:chunk_stop], 0.0, out=unit_rows.T)
        for start in range(0, len(unit_rows), width):
            stop = min(len(unit_rows), start + width)
            w = stop - start
            cols = slice(chunk_start + start, chunk_start + stop)
            sorted_keys, key_bits = keys[:w], bits[:w]
            np.copyto(sorted_keys, unit_rows[start:stop])  # float64: exact
            counted = _integer_rank_sums(sorted_keys, low_words[:w], k)
            if counted is not None:  # small integers (spike counts): histograms, no sort
                sums[:, cols], tie_term[cols] = counted
                continue
            if float32_exact or not np.bitwise_and(key_bits, _LOW_MASK).any():
                rows = unit_rows[start:stop]
                np.bitwise_or(key_bits, low_words[:w], out=key_bits)  # add the bins
                sorted_keys.sort(axis=1)
                # NaN and +-inf (which the low bits turn into NaN) sort last, and the sort may
                # write them back as the default NaN, losing their bins: redo those columns
                # exactly, and meanwhile keep their entries in their own column's bins
                special = np.flatnonzero(np.isnan(sorted_keys[:, -1]))
                np.bitwise_and(key_bits, _LOW_MASK, out=bins[:w])
                bins[special] = (special * k)[:, None]
                np.bitwise_and(key_bits, ~_LOW_MASK, out=key_bits)  # the values again, for finding ties
                s, t = _sum_sorted_ranks(sorted_keys, bins[:w], positions[: w * n], same[:w], k)
            else:
                rows = sorted_keys  # float64 values that are not float32: argsort them all
                s, t, special = np.empty((k, w)), np.empty(w), np.arange(w)
            if len(special):
                high, b, nan = _sorted_keys_argsort(rows[special], low_words[: len(special)])
                s[:, special], t[special] = _sum_sorted_ranks(high, b, positions[: len(special) * n],
                                                              same[: len(special)], k)
                has_nan[cols][special] = nan
            sums[:, cols] = s
            tie_term[cols] = t
    return sums, tie_term, has_nan


#: Bits of a float64 mantissa that a float32 value leaves at zero (52 - 23), and their mask.
_LOW_BITS = 1 << 29
_LOW_MASK = np.int64(_LOW_BITS - 1)


#: Largest range of integer values ranked by counting (``max - min + 1``), and largest histogram.
_COUNT_RANGE = 4096
_COUNT_BINS = 1 << 22
_TWO_52 = 2.0**52
_TWO_52_BITS = np.int64(np.array(_TWO_52).view(np.int64))


def _integer_rank_sums(rows: np.ndarray, bases: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Rank sums and tie terms of units of small integers (spike counts) by counting; None if not.

    ``rows`` (w, n) float64, one row per unit; ``bases`` (w, n) the bin of each entry,
    row * k + group. With ``c[v, g]`` the number of presentations of group ``g`` with value ``v``
    and ``t[v]`` its sum over groups, the average rank of value ``v`` is
    ``sum(t[:v]) + (t[v] + 1) / 2``: one histogram (a ``bincount``) replaces the sort.
    """
    w, n = rows.shape
    first = rows[:, 0]
    if not np.array_equal(first, np.rint(first)):  # continuous data: leave at once
        return None
    low = rows.min(axis=1, keepdims=True)
    span = rows.max(axis=1) - low[:, 0]
    if not np.all(span < _COUNT_RANGE):  # also False with NaN or infinities
        return None
    n_values = int(span.max()) + 1
    if w * k * n_values > _COUNT_BINS:
        return None
    shifted = np.subtract(rows, low)
    rounded = shifted + _TWO_52  # exact for integers below 2**52, which land in the low mantissa bits
    if not np.equal(rounded - _TWO_52, shifted).all():  # not all integers
        return None
    values = rounded.view(np.int64)
    values -= _TWO_52_BITS
    values *= w * k
    values += bases  # the bin: value * w * k + row * k + group
    histogram = np.bincount(values.reshape(-1), minlength=n_values * w * k).reshape(n_values, w, k)
    totals = histogram.sum(axis=2)  # (n_values, w)
    average = np.cumsum(totals, axis=0) - totals + (totals + 1) * 0.5
    sums = np.einsum("vck,vc->kc", histogram, average)
    t = totals.astype(np.float64)
    return sums, (t * t * t - t).sum(axis=0)


def _sorted_keys_argsort(rows: np.ndarray, low_words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort ``rows`` (w, n; any float) by value with ``argsort``: sorted values, bins, NaN flags."""
    rows = np.asarray(rows, dtype=np.float64)
    order = np.argsort(rows, axis=1, kind="stable")
    high = np.take_along_axis(rows, order, axis=1)
    bins = np.take_along_axis(low_words, order, axis=1)
    nan = np.isnan(high[:, -1])  # argsort puts NaNs last
    return high, bins, nan


def _sum_sorted_ranks(high: np.ndarray, bins: np.ndarray, positions: np.ndarray, same: np.ndarray,
                      k: int) -> tuple[np.ndarray, np.ndarray]:
    """Group rank sums (k, w) and tie terms (w,) of sorted values.

    ``high`` (w, n): each row sorted; ``bins`` (w, n): row * k + group of each sorted entry;
    ``positions``: 1 to n repeated w times (the ranks without ties); ``same``: a (w, n - 1) bool
    buffer. The rank sums are one weighted ``bincount``: of the positions, after which only the
    entries of runs of equal values are visited again, to give them the average rank of their run
    (a second ``bincount`` of those entries); or, when over a third of the entries are tied
    (coarse values), of the average rank of every entry's run directly. Each run adds ``t**3 - t`` to its row's tie
    term.
    """
    w, n = high.shape
    flat_bins = bins.reshape(-1)
    tie_term = np.zeros(w)
    n_tied = 0
    if n > 1:
        np.equal(high[:, 1:], high[:, :-1], out=same)  # entry and the next are equal
        n_tied = int(np.count_nonzero(same))
    if 3 * n_tied > w * n:  # many ties: the average rank of every run, spread over the run
        new_run = np.ones((w, n), dtype=bool)
        np.logical_not(same, out=new_run[:, 1:])
        starts = np.flatnonzero(new_run)
        lengths = np.diff(starts, append=w * n)
        sums = np.bincount(flat_bins, weights=np.repeat(starts % n + (lengths + 1) * 0.5, lengths), minlength=w * k)
        tied = lengths > 1
        t = lengths[tied].astype(np.float64)
        tie_term = np.bincount(starts[tied] // n, weights=t * t * t - t, minlength=w)
        return sums.reshape(w, k).T, tie_term
    sums = np.bincount(flat_bins, weights=positions, minlength=w * k)
    if n_tied:  # a few ties: correct the entries of tied runs only
        pairs = np.flatnonzero(same)  # in (w, n - 1)
        pairs += pairs // (n - 1)  # flat index in (w, n) of the first of each equal pair
        # a run of ties is a chain of consecutive pairs (pairs of two rows are 2 apart)
        new_run = np.empty(len(pairs), dtype=bool)
        new_run[0] = True
        np.not_equal(pairs[1:], pairs[:-1] + 1, out=new_run[1:])
        heads = np.flatnonzero(new_run)
        starts = pairs[heads]  # flat index of the first entry of each run
        lengths = np.append(heads[1:], len(pairs)) - heads + 1  # entries: pairs + 1
        # every entry of every run, and its place in the run
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        members = np.repeat(starts, lengths) + within
        # average rank of the run minus the entry's own rank
        shift = np.repeat((lengths - 1) * 0.5, lengths) - within
        sums += np.bincount(flat_bins[members], weights=shift, minlength=w * k)
        t = lengths.astype(np.float64)
        tie_term = np.bincount(starts // n, weights=t * t * t - t, minlength=w)
    return sums.reshape(w, k).T, tie_term


def _rank_kernel_inputs(act: xr.DataArray) -> bool:
    return np.dtype(act.dtype) in _FLOAT32_EXACT


# --------------------------------------------------------------------------------------------
# Kruskal-Wallis


def _kruskal_kernel(block: np.ndarray, codes: np.ndarray, counts: np.ndarray, exact32: bool) -> np.ndarray:
    """H and p of the Kruskal-Wallis test for every column of ``block`` (presentation, units; float32 or float64)."""
    n = block.shape[0]
    sums, tie_term, has_nan = rank_sums(block, codes, len(counts), float32_exact=exact32)
    ties = 1 - tie_term / (n**3 - n)
    ssbn = (sums**2 / counts[:, None]).sum(axis=0)
    # the algebra and operation order of scipy.stats.kruskal
    with np.errstate(divide="ignore", invalid="ignore"):
        h = 12.0 / (n * (n + 1)) * ssbn - 3 * (n + 1)
        h /= ties
    h[(ties == 0) | has_nan] = np.nan
    p = special.chdtrc(len(counts) - 1, h)
    return np.stack([h, p])


def kruskal(activity: xr.DataArray, by: str, correction: str = "fdr_bh") -> xr.Dataset:
    """Kruskal-Wallis H test of every unit's response across the conditions ``by``.

    The rank-based counterpart of :func:`anova` (H0: the responses of every condition come from
    the same distribution), for responses far from normal: spike counts, sparse rectified
    activations. Each unit's responses are ranked over all presentations (ties get their average
    rank), and ``H`` is corrected for ties, exactly as ``scipy.stats.kruskal``; the p value is
    from the chi-squared distribution with ``n_levels - 1`` degrees of freedom. All units of a
    block are ranked at once (:func:`rank_sums`).

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (any unit); a ``time_bin`` dim is averaged over. May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate whose values are the conditions; at least two
        distinct values.
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over the units of each region.

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid``, with every neuroid coordinate of ``activity``:

        - ``H`` (neuroid): the tie-corrected Kruskal-Wallis statistic; NaN for a unit whose
          responses are all identical (no ranks to compare; scipy gives NaN too) and for units
          with NaN responses.
        - ``p`` (neuroid): ``P(chi2(n_levels - 1) >= H)``.
        - ``q`` (neuroid): ``p`` corrected over the units of each region.

        attrs: as :func:`anova`.

    Raises
    ------
    AnalysisError
        As :func:`anova`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> label = np.repeat([0, 1, 2], 10)
    >>> counts = rng.poisson(2.0, size=(30, 2)).astype(float)   # spike counts: many ties
    >>> counts[label == 2, 1] += 4
    >>> act = xr.DataArray(counts, dims=("presentation", "neuroid"),
    ...                    coords={"label": ("presentation", label), "neuroid_id": ("neuroid", ["a.0", "a.1"])})
    >>> result = kruskal(act, "label")
    >>> result["H"].values.round(2), (result["p"] < 0.001).values
    (array([ 0.34, 19.42]), array([False,  True]))
    >>> result.attrs["family"]
    'fdr_bh over the 2 units of region all'
    """
    act, groups = _prepare(activity, by, correction)
    exact32 = _rank_kernel_inputs(act)

    def kernel(block: np.ndarray) -> np.ndarray:
        return _kruskal_kernel(block, groups.codes, groups.counts, exact32)

    h, p = _map_blocks(kernel, act, 2, native=True)  # rank_sums widens to float64 slice by slice
    q, family = fdr(p, act, correction)
    return unit_dataset(
        act,
        {"H": (("neuroid",), h), "p": (("neuroid",), p), "q": (("neuroid",), q)},
        attrs=_attrs("Kruskal-Wallis H test (tie-corrected)", "scipy.stats.kruskal", act, groups, correction, family,
                     df=int(groups.n_groups - 1)),
    )


# --------------------------------------------------------------------------------------------
# one-vs-rest tests


def _welch_kernel(block: np.ndarray, one_hot: np.ndarray, counts: np.ndarray, codes: np.ndarray,
                  first: np.ndarray) -> np.ndarray:
    """t and p of Welch's t-test of each group against the rest, for every column."""
    n, u = block.shape
    k = len(counts)
    n1 = counts[:, None].astype(np.float64)
    n2 = n - n1
    mean = block.mean(axis=0)
    centred = block - mean
    sums = one_hot @ centred
    means = sums / n1
    centred -= one_hot.T @ means  # residuals from the group means
    np.multiply(centred, centred, out=centred)
    within = one_hot @ centred  # (k, u) sum of squared deviations in each group
    # groups of identical values have exactly zero variance (the residuals may not be exact)
    scale = within.sum(axis=0) + (n1 * means**2).sum(axis=0) + n * mean**2
    candidates = np.flatnonzero((within <= _CONSTANT_RTOL * scale).any(axis=0))
    if len(candidates):
        constant = _constant_groups(block, candidates, codes, first, one_hot)
        sub = within[:, candidates]
        sub[constant] = 0.0
        within[:, candidates] = sub
    # the rest of each group: pooled from the other groups' moments (no cancellation)
    rest_means = (sums.sum(axis=0) - sums) / n2
    # sum over h != g of within_h + n_h (mean_h - rest_mean_g)**2, one condition g at a time
    rest_within = np.empty((k, u))
    for g in range(k):
        d = means - rest_means[g]
        d *= d
        d *= n1
        d += within
        d[g] = 0.0
        rest_within[g] = d.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        v1 = within / (n1 - 1)
        v2 = rest_within / (n2 - 1)
        # scipy.stats.ttest_ind(equal_var=False): _unequal_var_ttest_denom, _ttest_ind_from_stats
        vn1 = v1 / n1
        vn2 = v2 / n2
        df = (vn1 + vn2) ** 2 / (vn1**2 / (n1 - 1) + vn2**2 / (n2 - 1))
        df = np.where(np.isnan(df), 1.0, df)
        t = (means - rest_means) / np.sqrt(vn1 + vn2)
    p = 2 * special.stdtr(df, -np.abs(t))
    return np.concatenate([t, p])


def ttest_ovr(activity: xr.DataArray, by: str, correction: str = "fdr_bh") -> xr.Dataset:
    """Welch t-test of every unit's response to each condition against all other conditions.

    For each level ``c`` of ``by`` and each unit: are the responses to ``c`` different in mean
    from the responses to every other condition pooled ("one vs rest"; Welch's t-test, which does
    not assume equal variances; two-sided)? A positive ``t`` means a larger response to ``c``.
    Equal per test to ``scipy.stats.ttest_ind(x[c], x[rest], equal_var=False)``.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (any unit); a ``time_bin`` dim is averaged over. May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate whose values are the conditions; at least two
        distinct values.
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over all conditions and units of each region
        together (``n_levels * n_units`` tests per region).

    Returns
    -------
    xarray.Dataset
        Dims ``(by, neuroid)``: the condition dim is named after ``by`` and carries the levels as
        its coordinate; every neuroid coordinate of ``activity`` is kept.

        - ``t`` (by, neuroid): Welch's t of the condition minus the rest. ``+-inf`` where both
          samples are constant but differ, NaN where all responses are identical or the
          condition has a single presentation (no variance; as scipy).
        - ``p`` (by, neuroid): two-sided p value, from Student's t with Welch-Satterthwaite
          degrees of freedom.
        - ``q`` (by, neuroid): ``p`` corrected over conditions and units of each region.

        attrs: as :func:`anova`.

    Raises
    ------
    AnalysisError
        As :func:`anova`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(1)
    >>> label = np.repeat(["cat", "dog", "car"], 8)
    >>> x = rng.normal(size=(24, 1)); x[label == "dog"] += 3
    >>> act = xr.DataArray(x, dims=("presentation", "neuroid"),
    ...                    coords={"label": ("presentation", label), "neuroid_id": ("neuroid", ["v.7"])})
    >>> result = ttest_ovr(act, "label")
    >>> result["t"].dims, result["label"].values.tolist()
    (('label', 'neuroid'), ['car', 'cat', 'dog'])
    >>> result["t"].values[:, 0].round(2)      # one vs rest: car and cat respond less than the rest
    array([-3.26, -2.82, 11.83])
    >>> ((result["q"] < 0.05) & (result["t"] > 0)).values[:, 0].tolist()    # selective for: larger response
    [False, False, True]
    """
    act, groups = _prepare(activity, by, correction)
    one_hot = groups.one_hot()
    first = _first_of_groups(groups.codes, groups.n_groups)
    k = groups.n_groups

    def kernel(block: np.ndarray) -> np.ndarray:
        return _welch_kernel(block, one_hot, groups.counts, groups.codes, first)

    out = _map_blocks(kernel, act, 2 * k)
    t, p = out[:k], out[k:]
    q, family = fdr(p, act, correction)
    dims = (by, "neuroid")
    return unit_dataset(
        act, {"t": (dims, t), "p": (dims, p), "q": (dims, q)}, coords={by: (by, groups.levels)},
        attrs=_attrs("Welch t-test, one condition vs the rest (two-sided)", "scipy.stats.ttest_ind(equal_var=False)",
                     act, groups, correction, family),
    )


def _mannwhitney_kernel(block: np.ndarray, codes: np.ndarray, counts: np.ndarray, exact32: bool) -> np.ndarray:
    n = block.shape[0]
    sums, tie_term, has_nan = rank_sums(block, codes, len(counts), float32_exact=exact32)
    # the pooled sample of "condition vs rest" is every presentation: the ranks are shared
    n1 = counts[:, None].astype(np.float64)
    n2 = n - n1
    u1 = sums - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    big = np.maximum(u1, u2)
    # scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True): _get_mwu_z
    mu = n1 * n2 / 2
    s = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    numerator = big - mu
    numerator -= 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        z = numerator / s
    p = special.ndtr(-z)
    p *= 2
    p = np.clip(p, 0.0, 1.0)
    u1[:, has_nan] = np.nan
    p[:, has_nan] = np.nan
    return np.concatenate([u1, p])


def mannwhitney_ovr(activity: xr.DataArray, by: str, correction: str = "fdr_bh") -> xr.Dataset:
    """Mann-Whitney U test of every unit's response to each condition against all the others.

    The rank-based counterpart of :func:`ttest_ovr`: for each level ``c`` of ``by`` and each
    unit, do responses to ``c`` tend to be larger or smaller than responses to the other
    conditions pooled (two-sided)? The p value is the normal approximation with tie and
    continuity corrections, equal per test to ``scipy.stats.mannwhitneyu(x[c], x[rest],
    method="asymptotic", use_continuity=True)``. The ranks are computed once per unit over all
    presentations (:func:`rank_sums`) and serve every condition.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (any unit); a ``time_bin`` dim is averaged over. May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate whose values are the conditions; at least two
        distinct values.
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over all conditions and units of each region.

    Returns
    -------
    xarray.Dataset
        Dims ``(by, neuroid)``, the condition dim named after ``by`` with the levels as its
        coordinate; every neuroid coordinate of ``activity`` is kept.

        - ``U`` (by, neuroid): the U statistic of the condition's sample (scipy's ``U1``):
          the number of (condition, rest) pairs where the condition's response is larger, ties
          counting 1/2. ``U > n_c * n_rest / 2`` means larger responses to the condition.
        - ``p`` (by, neuroid): two-sided p value; 1 for a unit whose responses are all identical
          (as scipy), NaN for units with NaN responses.
        - ``q`` (by, neuroid): ``p`` corrected over conditions and units of each region.

        attrs: as :func:`anova`.

    Raises
    ------
    AnalysisError
        As :func:`anova`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> label = np.repeat([0, 1], 5)
    >>> x = np.array([[1, 2, 2, 3, 4, 5, 6, 6, 7, 9]], dtype=float).T
    >>> act = xr.DataArray(x, dims=("presentation", "neuroid"), coords={"label": ("presentation", label)})
    >>> result = mannwhitney_ovr(act, "label")
    >>> result["U"].values[:, 0], result["p"].values[:, 0].round(4)
    (array([ 0., 25.]), array([0.0117, 0.0117]))
    """
    act, groups = _prepare(activity, by, correction)
    exact32 = _rank_kernel_inputs(act)
    k = groups.n_groups

    def kernel(block: np.ndarray) -> np.ndarray:
        return _mannwhitney_kernel(block, groups.codes, groups.counts, exact32)

    out = _map_blocks(kernel, act, 2 * k, native=True)  # rank_sums widens to float64 slice by slice
    u, p = out[:k], out[k:]
    q, family = fdr(p, act, correction)
    dims = (by, "neuroid")
    return unit_dataset(
        act, {"U": (dims, u), "p": (dims, p), "q": (dims, q)}, coords={by: (by, groups.levels)},
        attrs=_attrs("Mann-Whitney U test, one condition vs the rest (two-sided, normal approximation "
                     "with tie and continuity corrections)",
                     'scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True)', act, groups, correction,
                     family),
    )


# --------------------------------------------------------------------------------------------
# Rayleigh


def _rayleigh_kernel(block: np.ndarray, directions: np.ndarray, period: float) -> np.ndarray:
    weight = block.sum(axis=0)
    negative = block.min(axis=0) < 0
    c, s = directions @ block  # resultant vector (unnormalised)
    length = np.hypot(c, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = length / weight
        z = weight * r**2
        # Zar (1999) eq. 27.4, with R_n = n r the resultant length (as pingouin.circ_rayleigh)
        p = np.exp(np.sqrt(1 + 4 * weight + 4 * np.maximum(weight**2 - length**2, 0.0)) - (1 + 2 * weight))
    p = np.clip(p, 0.0, 1.0)
    preferred = np.mod(np.arctan2(s, c), 2 * np.pi) * (period / (2 * np.pi))
    preferred = np.where(preferred >= period, 0.0, preferred)
    undefined = ~(weight > 0)
    for a in (r, z, p, preferred):
        a[undefined] = np.nan
    return np.stack([r, z, p, preferred, weight, negative.astype(np.float64)])


def rayleigh(activity: xr.DataArray, by: str, period: float, correction: str = "fdr_bh") -> xr.Dataset:
    """Rayleigh test of circular tuning of every unit over an angle (orientation, direction).

    Each presentation contributes a unit vector at its angle mapped onto the circle,
    ``2 pi * angle / period``, weighted by the unit's response; the test asks whether the
    weighted angles are concentrated in one direction (H0: uniform around the circle). With
    ``n`` the sum of the weights (the total response) and ``R`` the mean resultant length,
    ``Z = n R**2`` and, with Zar's (1999) correction,
    ``p = exp(sqrt(1 + 4 n + 4 (n**2 - (n R)**2)) - (1 + 2 n))``, clipped to [0, 1]: the formula of
    ``pingouin.circ_rayleigh(angles, w=responses)``.

    The weights count observations: the test is exact in spirit for spike counts (each spike an
    observed angle). For continuous activity (a model's activations, rates) ``n`` depends on the
    scale of the responses: multiplying a unit's activity by 10 makes ``p`` smaller without
    changing its tuning. There, test the tuning with :func:`permutation_test` on a scale-free
    index (the mean resultant length ``R``, or an OSI from :mod:`neurorecord.analysis.selectivity`).

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Non-negative responses (spike counts, rectified activity). May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate holding the angle of each presentation, in
        degrees; at least two distinct values.
    period : float
        Period of the angle in degrees: 180 for orientation, 360 for direction of motion.
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over the units of each region.

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid``, with every neuroid coordinate of ``activity``:

        - ``R`` (neuroid): mean resultant length in [0, 1], the weighted angles' concentration.
        - ``Z`` (neuroid): Rayleigh's ``Z = n R**2``.
        - ``p`` (neuroid): Rayleigh p value (Zar's approximation).
        - ``q`` (neuroid): ``p`` corrected over the units of each region.
        - ``preferred`` (neuroid): mean angle in degrees of ``by``, in ``[0, period)``.
        - ``n`` (neuroid): sum of the weights (the unit's total response).

        ``R``, ``Z``, ``p`` and ``preferred`` are NaN for a unit that never responds (``n = 0``);
        ``preferred`` is also NaN where ``R`` is 0 (below 1e-12: balanced responses).
        attrs: as :func:`anova`, plus ``period``.

    Raises
    ------
    AnalysisError
        As :func:`anova`; ``by`` is not numeric; ``period`` is not a positive number; some units
        have negative responses (the message says how many).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> orientation = np.tile([0.0, 45.0, 90.0, 135.0], 5)
    >>> counts = np.stack([np.where(orientation == 90, 6.0, 1.0), np.full(20, 3.0)], axis=1)
    >>> act = xr.DataArray(counts, dims=("presentation", "neuroid"),
    ...                    coords={"orientation": ("presentation", orientation)})
    >>> result = rayleigh(act, "orientation", period=180)
    >>> result["preferred"].values.round(1), result["R"].values.round(3), result["p"].values.round(4)
    (array([90., nan]), array([0.556, 0.   ]), array([0., 1.]))
    """
    act, groups = _prepare(activity, by, correction)
    if groups.levels.dtype.kind not in "biuf":
        raise AnalysisError(
            f"by: the rayleigh test needs numeric angles in degrees; coordinate {by!r} holds values such as "
            f"{groups.levels[0].item()!r}"
        )
    if isinstance(period, bool) or not isinstance(period, Real) or not np.isfinite(period) or period <= 0:
        raise AnalysisError(f"period: expected a positive number of degrees (180 or 360), found {period!r}")
    period = float(period)
    angles = np.asarray(act.coords[by].values, dtype=np.float64) * (2 * np.pi / period)
    directions = np.stack([np.cos(angles), np.sin(angles)])

    def kernel(block: np.ndarray) -> np.ndarray:
        return _rayleigh_kernel(block, directions, period)

    r, z, p, preferred, weight, negative = _map_blocks(kernel, act, 6)
    n_negative = int(np.count_nonzero(negative))
    if n_negative:
        ids = act.coords["neuroid_id"].values[negative.astype(bool)] if "neuroid_id" in act.coords else []
        example = f" (e.g. {', '.join(map(str, ids[:3]))})" if len(ids) else ""
        raise AnalysisError(
            f"activity: the rayleigh test weights angles by responses, which must be non-negative; "
            f"{n_negative} of {act.sizes['neuroid']} units have negative values{example}. Rectify or shift them, "
            "or use permutation_test with a tuning index"
        )
    preferred = np.where(r > _NO_DIRECTION, preferred, np.nan)  # no preferred angle without a resultant
    q, family = fdr(p, act, correction)
    return unit_dataset(
        act,
        {"R": (("neuroid",), r), "Z": (("neuroid",), z), "p": (("neuroid",), p), "q": (("neuroid",), q),
         "preferred": (("neuroid",), preferred), "n": (("neuroid",), weight)},
        attrs=_attrs("Rayleigh test of circular tuning (Zar's p approximation), responses as weights",
                     "pingouin.circ_rayleigh(angles, w=responses)", act, groups, correction, family, period=period),
    )


# --------------------------------------------------------------------------------------------
# permutation test


def _permutation_kernel(block: np.ndarray, statistic: Callable, codes: np.ndarray, levels: np.ndarray,
                        n_permutations: int, seed: int) -> np.ndarray:
    u = block.shape[1]

    def evaluate(c: np.ndarray) -> np.ndarray:
        value = np.asarray(statistic(block, c, levels), dtype=np.float64)
        if value.shape != (u,):
            raise AnalysisError(
                f"statistic: expected an array of shape (n_units,) = ({u},) from statistic(values, codes, levels), "
                f"found shape {value.shape}"
            )
        return value

    observed = evaluate(codes)
    # values within 100 float64 epsilons of the observed one count as equal (scipy's rule)
    threshold = observed - np.abs(observed) * (100 * np.finfo(np.float64).eps)
    exceed = np.zeros(u)
    rng = np.random.default_rng(seed)  # every block sees the same permutations
    for _ in range(n_permutations):
        exceed += evaluate(rng.permutation(codes)) >= threshold
    p = (1 + exceed) / (1 + n_permutations)
    p[np.isnan(observed)] = np.nan
    return np.stack([observed, p])


def permutation_test(activity: xr.DataArray, by: str,
                     statistic: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                     n_permutations: int = 1000, seed: int | None = 0, correction: str = "fdr_bh") -> xr.Dataset:
    """Permutation test of any per-unit index by shuffling the condition labels.

    ``statistic`` computes an index for every unit (a selectivity index, a tuning depth, an F
    statistic...) from the responses and the condition of each presentation. The conditions are
    shuffled among the presentations ``n_permutations`` times (the group sizes stay fixed) and the
    index recomputed; the p value is the fraction of shuffles whose index is at least the
    observed one::

        p = (1 + #(null >= observed)) / (1 + n_permutations)

    a one-sided test in which *larger means more selective*: pass an index with that orientation
    (negate one that is not; take the absolute value for a two-sided question). Null values within
    100 float64 epsilons (relative) of the observed one count as reaching it, as in
    ``scipy.stats.permutation_test``. The smallest attainable p is ``1 / (1 + n_permutations)``,
    which bounds the q values after correction: give enough permutations for the number of units.
    The test makes no assumption on the scale of the responses, so it suits continuous activity
    where :func:`rayleigh` does not.

    One permutation of the presentations serves all units of a block (and every block sees the
    same permutations: the result does not depend on the block size, and a seed fixes it).

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (any unit); a ``time_bin`` dim is averaged over. May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate whose values are the conditions.
    statistic : callable ``(values, codes, levels) -> numpy.ndarray of shape (n_units,)``
        ``values`` (n_presentations, n_units) float64, one column per unit; ``codes``
        (n_presentations,) int, the index in ``levels`` of each presentation's condition;
        ``levels`` the sorted distinct values of ``by``. Must be vectorised over units; e.g. the
        functions of :data:`neurorecord.analysis.selectivity.INDEX_FUNCTIONS`. It is called
        ``n_permutations + 1`` times per block of units, from several threads at once (blocks
        run in parallel): it must not modify its arguments or shared state.
    n_permutations : int, default 1000
        Number of label shuffles.
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng`` drawing the shuffles; None draws a fresh one (it is
        recorded in ``attrs["seed"]``).
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over the units of each region.

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid``, with every neuroid coordinate of ``activity``:

        - ``observed`` (neuroid): the index on the real labels.
        - ``p`` (neuroid): one-sided permutation p value; NaN where ``observed`` is NaN.
        - ``q`` (neuroid): ``p`` corrected over the units of each region.

        attrs: as :func:`anova`, plus ``statistic`` (its name), ``n_permutations``, ``seed``,
        ``alternative`` ("greater").

    Raises
    ------
    AnalysisError
        As :func:`anova`; ``statistic`` is not callable or returns the wrong shape;
        ``n_permutations`` is not a positive integer.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> label = np.repeat([0, 1, 2], 10)
    >>> x = rng.normal(size=(30, 2)); x[label == 1, 0] += 2
    >>> act = xr.DataArray(x, dims=("presentation", "neuroid"), coords={"label": ("presentation", label)})
    >>> def spread(values, codes, levels):          # range of the condition means
    ...     means = np.stack([values[codes == i].mean(axis=0) for i in range(len(levels))])
    ...     return means.max(axis=0) - means.min(axis=0)
    >>> result = permutation_test(act, "label", spread, n_permutations=199, seed=1)
    >>> result["p"].values
    array([0.005, 0.365])
    """
    act, groups = _prepare(activity, by, correction)
    if not callable(statistic):
        raise AnalysisError(
            f"statistic: expected a function (values, codes, levels) -> (n_units,), found {type(statistic).__name__}"
        )
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, Integral) or n_permutations < 1:
        raise AnalysisError(f"n_permutations: expected a positive integer, found {n_permutations!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    elif isinstance(seed, bool) or not isinstance(seed, Integral):
        raise AnalysisError(f"seed: expected an integer or None, found {seed!r}")
    n_permutations, seed = int(n_permutations), int(seed)
    codes, levels = groups.codes.copy(), groups.levels

    def kernel(block: np.ndarray) -> np.ndarray:
        return _permutation_kernel(block, statistic, codes, levels, n_permutations, seed)

    observed, p = _map_blocks(kernel, act, 2)
    q, family = fdr(p, act, correction)
    name = getattr(statistic, "__qualname__", None) or getattr(statistic, "__name__", None) or repr(statistic)
    return unit_dataset(
        act,
        {"observed": (("neuroid",), observed), "p": (("neuroid",), p), "q": (("neuroid",), q)},
        attrs=_attrs("permutation test (label shuffles, one-sided: larger is more selective)",
                     'scipy.stats.permutation_test(permutation_type="independent", alternative="greater")',
                     act, groups, correction, family, statistic=str(name), n_permutations=n_permutations, seed=seed,
                     alternative="greater"),
    )
