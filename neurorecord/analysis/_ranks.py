"""Rank-based per-unit tests: Kruskal-Wallis and Mann-Whitney U of each condition against the rest.

All units of a block are ranked at once by :func:`rank_sums` (exact, ties averaged as
``scipy.stats.rankdata``); ``benchmarks/unit_stats.py`` measures each of its three paths
(counting, float32 keys, argsort) against ``scipy.stats.rankdata``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special

from ._stats_common import prepare, result_attrs
from ._units import fdr, map_unit_blocks, unit_dataset
from .tuning import describe_variables

__all__ = ["kruskal", "mannwhitney_ovr", "rank_sums"]

#: Units ranked together by :func:`rank_sums`: their sort keys (units x presentations, int64)
#: stay in cache for the steps after the sort.
_RANK_UNITS = 32

#: Size of the groups of units that :func:`rank_sums` transposes at once (one row per unit, in
#: the activity's dtype): wide enough that each presentation's values are read as a run of
#: several cache lines, small enough to stay in the L2 cache.
_RANK_CHUNK_BYTES = 2 * 2**20

#: dtypes whose values are all exactly representable in float32 (ranked through the fast keys).
_FLOAT32_EXACT = {np.dtype(t) for t in ("float32", "float16", "int8", "uint8", "int16", "uint16", "bool")}

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
    act, groups = prepare(activity, by, correction)
    exact32 = _rank_kernel_inputs(act)

    def kernel(block: np.ndarray) -> np.ndarray:
        return _kruskal_kernel(block, groups.codes, groups.counts, exact32)

    h, p = map_unit_blocks(kernel, act, 2, native=True)  # rank_sums widens to float64 slice by slice
    q, family = fdr(p, act, correction)
    return describe_variables(unit_dataset(
        act,
        {"H": (("neuroid",), h), "p": (("neuroid",), p), "q": (("neuroid",), q)},
        attrs=result_attrs("Kruskal-Wallis H test (tie-corrected)", "scipy.stats.kruskal", act, groups, correction, family,
                     df=int(groups.n_groups - 1)),
    ), act, {"H": ("Kruskal-Wallis H statistic", "1"), "p": ("p value", "1"), "q": (f"q value ({correction})", "1")})




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
    act, groups = prepare(activity, by, correction)
    exact32 = _rank_kernel_inputs(act)
    k = groups.n_groups

    def kernel(block: np.ndarray) -> np.ndarray:
        return _mannwhitney_kernel(block, groups.codes, groups.counts, exact32)

    out = map_unit_blocks(kernel, act, 2 * k, native=True)  # rank_sums widens to float64 slice by slice
    u, p = out[:k], out[k:]
    q, family = fdr(p, act, correction)
    dims = (by, "neuroid")
    return describe_variables(unit_dataset(
        act, {"U": (dims, u), "p": (dims, p), "q": (dims, q)}, coords={by: (by, groups.levels)},
        attrs=result_attrs("Mann-Whitney U test, one condition vs the rest (two-sided, normal approximation "
                     "with tie and continuity corrections)",
                     'scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True)', act, groups, correction,
                     family),
    ), act, {"U": ("Mann-Whitney U statistic, condition vs rest", "1"), "p": ("p value", "1"),
             "q": (f"q value ({correction})", "1")}, by=(by,))
