"""Parametric per-unit tests: one-way ANOVA and Welch's t-test of each condition against the rest.

Both kernels sum groups by matrix products with the one-hot matrix of the conditions
(``Grouping.one_hot() @ block``), never looping over units; see :mod:`neurorecord.analysis.stats`
for the shared conventions.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special

from ._stats_common import CONSTANT_RTOL, constant_groups, first_of_groups, prepare, result_attrs
from ._units import fdr, map_unit_blocks, unit_dataset
from .tuning import describe_variables

__all__ = ["anova", "ttest_ovr"]

# --------------------------------------------------------------------------------------------
# ANOVA


def _anova_kernel(block: np.ndarray, one_hot: np.ndarray, counts: np.ndarray, codes: np.ndarray,
                  first: np.ndarray) -> np.ndarray:
    """F and p of a one-way ANOVA for every column of ``block`` (presentation, units).

    ``scipy.stats.f_oneway``'s computation, for all columns at once: the block is widened to
    float64 (float32 values are exact there) and centred on each column's grand mean, the group
    sums are one matrix product with the one-hot matrix, the sums of squares one ``einsum``.
    (A pass summing slices of rows in cache, uncentred where the data allowed it, gained at most
    1.3x on the whole call: ``benchmarks/README.md``.)
    """
    n, u = block.shape
    with np.errstate(invalid="ignore"):  # NaN and infinite responses give NaN, as in scipy
        values = block.astype(np.float64)
        centre = values.mean(axis=0)
        values -= centre
        sums = one_hot @ values
        squares = np.einsum("ij,ij->j", values, values)
    k = len(counts)
    # the algebra of scipy.stats.f_oneway on the centred values
    normalized = sums.sum(axis=0) ** 2 / n
    ss_total = squares - normalized
    ss_between = (sums**2 / counts[:, None]).sum(axis=0) - normalized
    ss_within = ss_total - ss_between
    df_between, df_within = k - 1, n - k
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_between / df_between) / (ss_within / df_within) if df_within > 0 else np.full(u, np.nan)
    # groups of identical values: F is inf (groups differ) or NaN (all identical), as in scipy
    candidates = np.flatnonzero(ss_within <= CONSTANT_RTOL * (squares + n * centre**2))
    if len(candidates) and df_within > 0:
        constant = constant_groups(block, candidates, codes, first, one_hot).all(axis=0)
        same = (block[:, candidates] == block[0, candidates]).all(axis=0)
        f[candidates[constant]] = np.inf
        f[candidates[same]] = np.nan
    p = special.fdtrc(df_between, df_within, f)
    return np.stack([f, p])


def anova(activity: xr.DataArray, by: str, correction: str = "fdr_bh") -> xr.Dataset:
    """One-way ANOVA of every unit's response across the conditions ``by``.

    Tests, for each unit separately, whether its mean response differs between the levels of
    ``by`` (H0: equal means in all conditions), with the F test of a one-way ANOVA. All units are
    tested at once: the responses of a block of units are centred on each unit's grand mean, as
    ``scipy.stats.f_oneway`` does, their group sums come from one matrix product and the sums of
    squares from ``f_oneway``'s algebra. The result equals ``f_oneway`` on the same values in
    float64 to about 1e-12 (relative). float32 activity is widened exactly, so this holds for it
    too; ``f_oneway`` given the float32 arrays themselves computes in float32 and differs by up
    to about 1e-6.

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
    act, groups = prepare(activity, by, correction)
    one_hot = groups.one_hot()
    first = first_of_groups(groups.codes, groups.n_groups)

    def kernel(block: np.ndarray) -> np.ndarray:
        return _anova_kernel(block, one_hot, groups.counts, groups.codes, first)

    f, p = map_unit_blocks(kernel, act, 2, native=True)  # the kernel widens float32 to float64 itself
    q, family = fdr(p, act, correction)
    n, k = len(groups.codes), groups.n_groups
    return describe_variables(unit_dataset(
        act,
        {"F": (("neuroid",), f), "p": (("neuroid",), p), "q": (("neuroid",), q),
         "df_between": ((), np.int64(k - 1)), "df_within": ((), np.int64(n - k))},
        attrs=result_attrs("one-way ANOVA (F test)", "scipy.stats.f_oneway", act, groups, correction, family),
    ), act, {"F": ("F statistic", "1"), "p": ("p value", "1"), "q": (f"q value ({correction})", "1"),
             "df_between": ("degrees of freedom between conditions", None),
             "df_within": ("degrees of freedom within conditions", None)})



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
    candidates = np.flatnonzero((within <= CONSTANT_RTOL * scale).any(axis=0))
    if len(candidates):
        constant = constant_groups(block, candidates, codes, first, one_hot)
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
    act, groups = prepare(activity, by, correction)
    one_hot = groups.one_hot()
    first = first_of_groups(groups.codes, groups.n_groups)
    k = groups.n_groups

    def kernel(block: np.ndarray) -> np.ndarray:
        return _welch_kernel(block, one_hot, groups.counts, groups.codes, first)

    out = map_unit_blocks(kernel, act, 2 * k)
    t, p = out[:k], out[k:]
    q, family = fdr(p, act, correction)
    dims = (by, "neuroid")
    return describe_variables(unit_dataset(
        act, {"t": (dims, t), "p": (dims, p), "q": (dims, q)}, coords={by: (by, groups.levels)},
        attrs=result_attrs("Welch t-test, one condition vs the rest (two-sided)", "scipy.stats.ttest_ind(equal_var=False)",
                     act, groups, correction, family),
    ), act, {"t": ("Welch t statistic, condition vs rest", "1"), "p": ("p value", "1"),
             "q": (f"q value ({correction})", "1")}, by=(by,))

