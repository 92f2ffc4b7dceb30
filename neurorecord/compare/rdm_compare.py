"""How alike two RDMs are: rank, Kendall tau-a, cosine and Pearson similarity, with a bootstrap.

:func:`compare_rdms` compares the upper triangles of two RDMs over the same conditions (the
entries above the diagonal, in the same order), as ``rsatoolbox.rdm.compare`` does; the tests
check equality with rsatoolbox to 1e-10:

=============  ====================================================  ====================
``method``     definition over the two upper-triangle vectors        rsatoolbox name
=============  ====================================================  ====================
``spearman``   Pearson r of the ranks (ties get their mean rank)      ``'spearman'``
``tau_a``      Kendall tau-a: (concordant - discordant) / pairs,      ``'tau-a'``
               ties counted in neither
``cosine``     x . y / (|x| |y|)                                      ``'cosine'``
``pearson``    Pearson r                                              ``'corr'``
=============  ====================================================  ====================

The bootstrap resamples conditions with replacement (seeded) and recomputes the similarity on
the resampled RDMs, leaving out the pairs of a condition with its own copy (they are not
dissimilarities), as rsatoolbox's pattern bootstrap does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.stats
import xarray as xr

from .._validation import check_choice, check_scalar, check_seed
from ..errors import AnalysisError

__all__ = ["compare_rdms", "similarity", "check_rdm", "align_rdms", "RSATOOLBOX_NAMES"]

#: Our names of the comparisons and rsatoolbox's.
RSATOOLBOX_NAMES = {"spearman": "spearman", "tau_a": "tau-a", "cosine": "cosine", "pearson": "corr"}


def check_rdm(rdm: Any, name: str) -> xr.DataArray:
    """Validate an RDM (dims ``(condition, condition_)``, square, no NaN); return it."""
    if not isinstance(rdm, xr.DataArray):
        raise AnalysisError(f"{name}: expected an xarray.DataArray RDM with dims (condition, condition_), "
                            f"found {type(rdm).__name__}")
    if rdm.dims != ("condition", "condition_") or rdm.shape[0] != rdm.shape[1]:
        raise AnalysisError(f"{name}: expected a square RDM with dims (condition, condition_), found dims {rdm.dims} "
                            f"and shape {rdm.shape}")
    if rdm.shape[0] < 3:
        raise AnalysisError(f"{name}: expected an RDM over at least 3 conditions, found {rdm.shape[0]}")
    values = np.asarray(rdm.values, dtype=np.float64)
    bad = np.isnan(values).any(axis=0)
    if bad.any():
        labels = [str(v) for v in np.asarray(rdm.condition.values)[bad][:5]]
        raise AnalysisError(f"{name}: expected finite dissimilarities, found NaN for condition(s) {', '.join(labels)} "
                            f"(a correlation RDM is NaN for a condition whose mean pattern is constant over units); "
                            f"select the other conditions first")
    return rdm


def align_rdms(rdm_a: xr.DataArray, rdm_b: xr.DataArray, names: tuple[str, str] = ("rdm_a", "rdm_b")) -> np.ndarray:
    """``rdm_b``'s values reordered to ``rdm_a``'s conditions (both must hold the same conditions)."""
    a = [str(v) for v in np.asarray(rdm_a.condition.values)]
    b = [str(v) for v in np.asarray(rdm_b.condition.values)]
    if sorted(a) != sorted(b) or len(set(a)) != len(a):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise AnalysisError(f"{names[1]}: expected the same conditions as {names[0]} ({len(a)}), found {len(b)}; "
                            f"only in {names[0]}: {', '.join(only_a[:5]) or 'none'}; only in {names[1]}: "
                            f"{', '.join(only_b[:5]) or 'none'}")
    where = {label: i for i, label in enumerate(b)}
    order = np.array([where[label] for label in a])
    return np.asarray(rdm_b.values, dtype=np.float64)[np.ix_(order, order)]


def _tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-a from scipy's tau-b: tau_a = tau_b sqrt((n0 - n1)(n0 - n2)) / n0."""
    n0 = len(x) * (len(x) - 1) / 2.0
    ties = [float((c * (c - 1) / 2.0).sum()) for c in (np.unique(x, return_counts=True)[1],
                                                        np.unique(y, return_counts=True)[1])]
    if ties[0] == n0 or ties[1] == n0:
        return float("nan")
    tau_b = scipy.stats.kendalltau(x, y, variant="b").statistic
    return float(tau_b * np.sqrt((n0 - ties[0]) * (n0 - ties[1])) / n0)


def similarity(x: np.ndarray, y: np.ndarray, method: str = "spearman") -> float:
    """Similarity of two dissimilarity vectors (upper triangles) by ``method`` (see the module).

    >>> x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    >>> round(similarity(x, y, "spearman"), 12), round(similarity(x, y, "tau_a"), 12)
    (0.8, 0.666666666667)
    """
    method = check_choice("method", method, tuple(RSATOOLBOX_NAMES), error=AnalysisError)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if method == "tau_a":
        return _tau_a(x, y)
    if method == "spearman":
        x, y = scipy.stats.rankdata(x), scipy.stats.rankdata(y)
    if method in ("spearman", "pearson"):
        x, y = x - x.mean(), y - y.mean()
    norms = np.sqrt(x @ x) * np.sqrt(y @ y)
    return float(x @ y / norms) if norms > 0 else float("nan")


def compare_rdms(rdm_a: xr.DataArray, rdm_b: xr.DataArray, method: str = "spearman", *, n_boot: int = 0,
                 ci: float = 0.95, seed: int = 0) -> xr.Dataset:
    """Similarity of two RDMs over the same conditions, with a bootstrap interval over conditions.

    Parameters
    ----------
    rdm_a, rdm_b : xarray.DataArray, dims (condition, condition_)
        RDMs from :func:`~neurorecord.compare.rdm.rdm` (e.g. a model's and a biological
        recording's), over the same conditions in any order (``rdm_b`` is reordered to
        ``rdm_a``); at least 3 conditions, no NaN.
    method : {"spearman", "tau_a", "cosine", "pearson"}, default "spearman"
        The comparison of the upper triangles (see the module docstring).
    n_boot : int, default 0
        Number of bootstrap resamples of the conditions (0: no interval).
    ci : float, default 0.95
        Confidence level of the percentile interval, in (0, 1).
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    xarray.Dataset
        ``similarity`` (scalar, unitless). With ``n_boot`` > 0 also ``ci_low`` and ``ci_high``
        (percentile interval), ``boot_std`` and ``bootstrap`` (dim ``boot``: every resample's
        similarity; NaN for a resample whose vectors are constant). ``attrs``: ``analysis``,
        ``method``, ``rsatoolbox_method``, ``n_conditions``, ``n_pairs``, ``n_boot``, ``ci``,
        ``seed``, ``long_name``, ``units``.

    Raises
    ------
    neurorecord.errors.AnalysisError
        An RDM with other dims, fewer than 3 conditions or NaN; RDMs over different conditions;
        an unknown ``method``; ``n_boot``, ``ci`` or ``seed`` out of range.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> def as_rdm(m):
    ...     return xr.DataArray(np.array(m, dtype=float), dims=("condition", "condition_"),
    ...                         coords={"condition": list("abcd"), "condition_": list("abcd")})
    >>> a = as_rdm([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]])
    >>> b = as_rdm([[0, 1, 2, 3], [1, 0, 5, 4], [2, 5, 0, 6], [3, 4, 6, 0]])
    >>> float(compare_rdms(a, b)["similarity"].round(4))
    0.9429
    >>> result = compare_rdms(a, b, "pearson", n_boot=200, seed=1)
    >>> bool(result.ci_low <= result.similarity <= result.ci_high)
    True
    """
    method = check_choice("method", method, tuple(RSATOOLBOX_NAMES), error=AnalysisError)
    n_boot = check_scalar("n_boot", n_boot, int, low=0, error=AnalysisError)
    ci = check_scalar("ci", ci, float, low=0, high=1, closed="neither", error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    check_rdm(rdm_a, "rdm_a")
    check_rdm(rdm_b, "rdm_b")
    a = np.asarray(rdm_a.values, dtype=np.float64)
    b = align_rdms(rdm_a, rdm_b)
    n = a.shape[0]
    rows, cols = np.triu_indices(n, 1)
    value = similarity(a[rows, cols], b[rows, cols], method)
    variables: dict[str, Any] = {"similarity": ((), value)}
    if n_boot:
        rng = np.random.default_rng(seed)
        boot = np.empty(n_boot)
        for k in range(n_boot):
            pick = rng.integers(0, n, n)
            i, j = pick[rows], pick[cols]
            distinct = i != j  # a condition paired with its own copy is not a dissimilarity
            x, y = a[i[distinct], j[distinct]], b[i[distinct], j[distinct]]
            boot[k] = similarity(x, y, method) if len(x) >= 2 else np.nan
        with np.errstate(invalid="ignore"):
            low, high = np.nanquantile(boot, [(1 - ci) / 2, (1 + ci) / 2])
        variables.update({"ci_low": ((), low), "ci_high": ((), high), "boot_std": ((), np.nanstd(boot, ddof=1)),
                          "bootstrap": (("boot",), boot)})
    attrs = {"analysis": "compare_rdms", "method": method, "rsatoolbox_method": RSATOOLBOX_NAMES[method],
             "n_conditions": n, "n_pairs": len(rows), "n_boot": n_boot, "ci": ci, "seed": seed,
             "bootstrap": "conditions resampled with replacement; pairs of a condition with its copy left out",
             "long_name": f"RDM similarity ({method})", "units": "1"}
    for name in ("by", "method"):
        if name in rdm_a.attrs:
            attrs[f"rdm_{name}"] = rdm_a.attrs[name]
    return xr.Dataset({k: xr.Variable(dims, v) for k, (dims, v) in variables.items()}, attrs=attrs)
