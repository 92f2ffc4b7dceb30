"""Agreement between unit-level results: two partitions of the units, each unit's preferred condition
and the condition its lesion hurts most, and selectivity indicators against single-unit lesion impact.

==============================  =================================================================
:func:`partition_agreement`     ARI and AMI of two labellings of the same units, permutation p
:func:`preferred_vs_most_hurt`  does a unit's lesion hurt its preferred condition most? fraction,
                                chance level, permutation p
:func:`unit_indicators`         per unit: magnitude, CSI, d', lifetime sparseness, lesion impact
:func:`indicator_correlations`  Spearman and Pearson between indicators, bootstrap CIs
:func:`predicts_lesion_impact`  does an indicator find the most damaging units? rho, recall at k
==============================  =================================================================

Units are matched by ``neuroid_id`` (inner join, in the first input's order); what is left out
is counted in ``attrs``. Permutation p values are ``(1 + #{null >= observed}) / (1 + n_perm)``
(one-sided, larger = more agreement), drawn from ``numpy.random.default_rng(seed)``. The nulls
are vectorised: a permutation keeps the cluster sizes, so ARI and AMI are monotone in sum n_ij**2
and sum n_ij log n_ij of the permuted table, computed for a block of permutations at once.

(Over 600 lines, one job: agreement between unit-level results; five analyses, each with its numpydoc
and example, about 260 lines of them, sharing the vectorised permutation nulls.)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr
from scipy.special import gammaln, xlogy

from .._validation import check_choice, check_scalar, check_seed
from ..errors import AnalysisError
from ._stats_common import reaching
from ._units import check_activity, unit_dataset
from .lesion_stats import OVERALL
from .selectivity import selectivity

__all__ = ["indicator_correlations", "partition_agreement", "predicts_lesion_impact", "preferred_vs_most_hurt",
           "unit_indicators"]

#: Target size in bytes of the blocks (permutations or resamples x units) built at once.
_BLOCK_BYTES = 16 * 2**20
_EPS = np.finfo(np.float64).eps
_P_RULE = "p = (1 + #{null >= observed}) / (1 + n_perm)"


def _ids(name: str, value: xr.DataArray) -> np.ndarray:
    coord = value.coords.get("neuroid_id")
    if coord is None or coord.dims != ("neuroid",):
        raise AnalysisError(f"{name}: expected a 'neuroid_id' coordinate on 'neuroid', found coordinates "
                            f"{sorted(map(str, value.coords))}")
    ids = np.asarray(coord.values, dtype=object).astype(str)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise AnalysisError(f"{name}: expected distinct neuroid_id values, found repeated {uniq[counts > 1][:5].tolist()!r}")
    return ids


def _join(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``first`` and ``second`` of their common names, in ``first``'s order."""
    _, i, j = np.intersect1d(first, second, assume_unique=True, return_indices=True)
    order = np.argsort(i)
    return i[order], j[order]


def _dataarray(name: str, value: Any, dims: tuple[str, ...], what: str) -> xr.DataArray:
    if not isinstance(value, xr.DataArray):
        raise AnalysisError(f"{name}: expected an xarray.DataArray of {what} {dims}, found {type(value).__name__}")
    if sorted(value.dims) != sorted(dims):
        raise AnalysisError(f"{name}: expected dims {dims}, found {value.dims}")
    return value.transpose(*dims)


def _indicator_names(indicators: Any) -> list[str]:
    if not isinstance(indicators, xr.Dataset):
        raise AnalysisError(f"indicators: expected an xarray.Dataset of per-unit variables (neuroid,), "
                            f"found {type(indicators).__name__}")
    return [str(k) for k, v in indicators.data_vars.items() if v.dims == ("neuroid",) and v.dtype.kind in "iuf"]


def _blocks(total: int, width: int) -> Iterator[tuple[int, int]]:
    rows = max(1, _BLOCK_BYTES // (8 * max(width, 1)))
    for start in range(0, total, rows):
        yield start, min(total, start + rows)


def _p_value(null: np.ndarray, threshold: float) -> float:
    return float((1 + np.count_nonzero(null >= threshold)) / (1 + len(null)))


def _shuffled(codes: np.ndarray, n_perm: int, rng: np.random.Generator, width: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Blocks of ``n_perm`` permutations of ``codes``, one per row."""
    for start, stop in _blocks(n_perm, width):
        yield start, stop, rng.permuted(np.tile(codes, (stop - start, 1)), axis=1)


# --------------------------------------------------------------------------------------------- partitions


def _expected_mi(a: np.ndarray, b: np.ndarray, n: int) -> float:
    """E[MI] (nats) of labellings with cluster sizes ``a`` and ``b`` under random assignment (hypergeometric n_ij)."""
    total, bj = 0.0, b[:, None].astype(np.float64)
    for ai in a.astype(np.float64):
        nij = np.arange(1, min(ai, b.max()) + 1, dtype=np.float64)[None, :]
        ok = (nij <= bj) & (nij >= ai + bj - n)
        rest = [np.where(ok, v, 0) + 1 for v in (ai - nij, bj - nij, n - ai - bj + nij)]
        log_p = (gammaln(ai + 1) + gammaln(bj + 1) + gammaln(n - ai + 1) + gammaln(n - bj + 1) - gammaln(n + 1)
                 - gammaln(nij + 1) - sum(gammaln(v) for v in rest))
        total += float((nij / n * np.log(n * nij / (ai * bj)) * np.exp(np.where(ok, log_p, -np.inf))).sum())
    return total


class _Transforms:
    """sklearn's ARI from sum n_ij**2 and AMI (arithmetic) from sum n_ij log n_ij, for fixed cluster sizes."""

    def __init__(self, a: np.ndarray, b: np.ndarray, n: int):
        self.n, self.single = n, (len(a) == 1, len(b) == 1)
        self.pa, self.pb, self.pairs = (a * (a - 1) / 2).sum(), (b * (b - 1) / 2).sum(), n * (n - 1) / 2
        self.marg = (xlogy(a, a).sum() + xlogy(b, b).sum()) / n
        self.emi = 0.0 if any(self.single) else _expected_mi(a, b, n)
        self.norm = np.log(n) - self.marg / 2  # (H(a) + H(b)) / 2

    def ari(self, sum_sq: np.ndarray) -> np.ndarray:
        s, expected = (sum_sq - self.n) / 2, self.pa * self.pb / self.pairs
        with np.errstate(invalid="ignore", divide="ignore"):
            ari = (s - expected) / ((self.pa + self.pb) / 2 - expected)
        return np.where((s == self.pa) & (s == self.pb), 1.0, ari)

    def ami(self, sum_tlogt: np.ndarray) -> np.ndarray:
        if any(self.single):
            return np.full(np.shape(sum_tlogt), 1.0 if all(self.single) else 0.0)
        mi = np.clip(sum_tlogt / self.n + np.log(self.n) - self.marg, 0.0, None)
        num, den = mi - self.emi, self.norm - self.emi  # sklearn keeps both away from 0, sign preserved
        den = min(den, -_EPS) if den < 0 else max(den, _EPS)
        return np.where(num < 0, np.minimum(num, -_EPS), np.maximum(num, _EPS)) / den


def _tables(ca: np.ndarray, cb: np.ndarray, ka: int, kb: int) -> tuple[np.ndarray, np.ndarray]:
    """sum n_ij**2 (int64) and sum n_ij log n_ij of the contingency table of ``ca`` with each row of ``cb``."""
    cb = np.atleast_2d(cb)
    cells = np.arange(cb.shape[0])[:, None] * (ka * kb) + ca[None, :] * kb + cb
    t = np.bincount(cells.ravel(), minlength=cb.shape[0] * ka * kb).reshape(cb.shape[0], -1)
    return (t * t).sum(axis=1), xlogy(t, t).sum(axis=1)


def partition_agreement(a: xr.DataArray, b: xr.DataArray, n_perm: int = 1000, seed: int = 0) -> xr.Dataset:
    """Agreement of two partitions of the units: adjusted Rand index and adjusted mutual information.

    Units are matched by ``neuroid_id``; those set aside (-1) in either labelling are dropped.
    ARI and AMI (arithmetic normalisation, nats) are ``sklearn.metrics.adjusted_rand_score``
    and ``adjusted_mutual_info_score``: 1 for the same partition under any label names, about
    0 for independent ones. Null: ``b`` permuted across the units (both sets of cluster sizes
    kept; the same permutations for both measures).

    Parameters
    ----------
    a, b : xarray.DataArray of int, dims (neuroid,), coordinate ``neuroid_id``
        Cluster of each unit (integers >= 0; -1: set aside).
    n_perm : int >= 1, default 1000
        Number of permutations.
    seed : int >= 0, default 0
        Seed of the permutations.

    Returns
    -------
    xarray.Dataset
        ``value``, ``p``, ``null_mean``, ``null_std`` (measure: ``"ari"``, ``"ami"``);
        ``label_a``, ``label_b`` (neuroid: the units used, neuroid coordinates of ``a``);
        ``contingency`` (cluster_a, cluster_b), int64. attrs: ``n_units``, ``n_dropped`` (set
        aside in either), ``n_unmatched_a``, ``n_unmatched_b`` (in one input only), ``n_perm``,
        ``seed``, ``null``.

    Raises
    ------
    AnalysisError
        ``a`` or ``b`` is not a DataArray (neuroid,) of integers >= -1 with distinct
        ``neuroid_id``; fewer than 2 units left; bad ``n_perm`` or ``seed``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ids = [f"fc2.{i}" for i in range(12)]
    >>> a = xr.DataArray(np.repeat([0, 1, 2], 4), dims="neuroid", coords={"neuroid_id": ("neuroid", ids)})
    >>> b = a.copy(data=np.r_[2 - a.values[:11], -1])       # clusters renamed, one unit set aside
    >>> agree = partition_agreement(a, b, n_perm=199)
    >>> agree["value"].values, agree["p"].values, agree.attrs["n_dropped"]
    (array([1., 1.]), array([0.005, 0.005]), 1)
    """
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    found = []
    for name, value in (("a", a), ("b", b)):
        value = _dataarray(name, value, ("neuroid",), "cluster labels")
        labels = np.asarray(value.values)
        if labels.dtype.kind not in "iu":
            raise AnalysisError(f"{name}: expected integer cluster labels (-1: set aside), found dtype {labels.dtype}")
        if labels.size and labels.min() < -1:
            raise AnalysisError(f"{name}: expected labels >= 0 (or -1: set aside), found {labels.min()}")
        found.append((value, labels.astype(np.int64), _ids(name, value)))
    n_perm = check_scalar("n_perm", n_perm, int, low=1, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    (va, la, ida), (_, lb, idb) = found
    ia, ib = _join(ida, idb)
    keep = (la[ia] >= 0) & (lb[ib] >= 0)
    n_matched, (ia, ib) = len(ia), (ia[keep], ib[keep])
    if len(ia) < 2:
        raise AnalysisError(f"a, b: expected at least 2 units assigned in both (matched by neuroid_id), found {len(ia)}")
    (levels_a, ca), (levels_b, cb) = (np.unique(x, return_inverse=True) for x in (la[ia], lb[ib]))
    ca, cb, ka, kb, n = ca.reshape(-1), cb.reshape(-1), len(levels_a), len(levels_b), len(ia)
    sq_obs, tl_obs = _tables(ca, cb, ka, kb)
    sq, tl = np.empty(n_perm, np.int64), np.empty(n_perm)
    for start, stop, perm in _shuffled(cb, n_perm, np.random.default_rng(seed), max(n, ka * kb)):
        sq[start:stop], tl[start:stop] = _tables(ca, perm, ka, kb)
    t = _Transforms(np.bincount(ca), np.bincount(cb), n)
    nulls = (t.ari(sq), t.ami(tl))
    attrs = {"analysis": "partition_agreement", "n_units": n, "n_dropped": n_matched - n,
             "n_unmatched_a": len(ida) - n_matched, "n_unmatched_b": len(idb) - n_matched, "n_perm": n_perm,
             "seed": seed, "null": f"b permuted across the units (cluster sizes of a and b kept); {_P_RULE}"}
    ds = unit_dataset(va.isel(neuroid=ia), {"label_a": (("neuroid",), la[ia]), "label_b": (("neuroid",), lb[ib])},
                      attrs=attrs)
    return ds.assign(
        value=("measure", [adjusted_rand_score(la[ia], lb[ib]), adjusted_mutual_info_score(la[ia], lb[ib])]),
        p=("measure", [_p_value(sq, sq_obs[0]), _p_value(tl, reaching(tl_obs)[0])]),
        null_mean=("measure", [x.mean() for x in nulls]), null_std=("measure", [x.std() for x in nulls]),
        contingency=(("cluster_a", "cluster_b"), np.bincount(ca * kb + cb, minlength=ka * kb).reshape(ka, kb)),
    ).assign_coords(measure=["ari", "ami"], cluster_a=levels_a, cluster_b=levels_b)


# --------------------------------------------------------------------------------------------- preferred vs most hurt


def _profile(name: str, value: Any) -> tuple[xr.DataArray, np.ndarray, np.ndarray, np.ndarray]:
    value = _dataarray(name, value, ("neuroid", "condition"), "per-condition profiles")
    conditions = np.asarray(value.coords["condition"].values, dtype=object) if "condition" in value.coords else None
    if conditions is None or value.dtype.kind not in "iuf" or len(np.unique(conditions.astype(str))) < len(conditions):
        raise AnalysisError(f"{name}: expected numbers with distinct 'condition' coordinate values, found dtype "
                            f"{value.dtype} and conditions {None if conditions is None else conditions.tolist()}")
    return value, np.asarray(value.values, dtype=np.float64), conditions, _ids(name, value)


def _tied(values: np.ndarray, largest: bool) -> np.ndarray:
    """(units, conditions) bool: within 100 epsilons (relative) of each row's maximum (minimum)."""
    tol = 100 * _EPS * np.abs(values).max(axis=1, keepdims=True)
    return values >= values.max(axis=1, keepdims=True) - tol if largest else values <= values.min(axis=1, keepdims=True) + tol


def preferred_vs_most_hurt(response: xr.DataArray, lesion: xr.DataArray, n_perm: int = 1000, seed: int = 0) -> xr.Dataset:
    """Whether lesioning each unit hurts most the condition that the unit prefers.

    ``preferred``: the condition of the largest response; ``most_hurt``: that of the most
    negative lesion change. **Ties** (within 100 float64 epsilons): a unit matches when any of
    its tied preferred conditions is one of its tied most-hurt ones; ``preferred`` and
    ``most_hurt`` report the first tied one in condition order. ``chance`` is the expected
    fraction of matches when most-hurt profiles go to units independently of the preferred
    ones, with the observed marginal frequencies: ``sum_ij M_ij / n**2`` (``M_ij``: unit i's
    preferred set meets unit j's most-hurt set), ``sum_k f_pref(k) f_hurt(k)`` without ties.
    Null: the most-hurt profiles shuffled across units. Units whose lesion changes nothing
    (0 in every condition), whose response is flat, or with a NaN are left out and counted.

    Parameters
    ----------
    response : xarray.DataArray, dims (neuroid, condition)
        Mean response per condition (higher = preferred); coordinates ``neuroid_id`` and
        ``condition``.
    lesion : xarray.DataArray, dims (neuroid, condition)
        Accuracy change per class (percentage points) when the unit is lesioned, e.g.
        ``delta_accuracy`` of :func:`~neurorecord.analysis.lesion_stats.lesion_effects`
        renamed ``lesion -> neuroid``, ``class -> condition``. Conditions are matched by
        their string form (3 matches the class "3"); ``"overall"`` drops out.
    n_perm : int >= 1, default 1000
        Number of permutations.
    seed : int >= 0, default 0
        Seed of the permutations.

    Returns
    -------
    xarray.Dataset
        Per included unit (neuroid, neuroid coordinates of ``response``): ``preferred``,
        ``most_hurt`` (conditions), ``match`` (bool), ``n_tied_preferred``,
        ``n_tied_most_hurt``. Scalars ``fraction_match``, ``chance``, ``p``, ``null_mean``,
        ``null_std``. attrs: ``n_units``, ``n_no_effect``, ``n_flat_response``, ``n_missing``,
        ``n_unmatched_response``, ``n_unmatched_lesion``, ``conditions``,
        ``conditions_dropped``, ``ties``, ``null``, ``n_perm``, ``seed``.

    Raises
    ------
    AnalysisError
        An input is not a numeric DataArray (neuroid, condition) with distinct
        ``neuroid_id`` and ``condition``; fewer than 2 common conditions or included units;
        bad ``n_perm`` or ``seed``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> coords = {"neuroid_id": ("neuroid", ["u0", "u1", "u2", "u3"]), "condition": [0, 1, 2]}
    >>> response = xr.DataArray(np.eye(3)[[0, 1, 2, 0]], dims=("neuroid", "condition"), coords=coords)
    >>> lesion = response.copy(data=-10 * np.eye(4, 3))             # no effect of lesioning u3
    >>> out = preferred_vs_most_hurt(response, lesion, n_perm=99)
    >>> out["match"].values, float(out["fraction_match"]), round(float(out["chance"]), 3), out.attrs["n_no_effect"]
    (array([ True,  True,  True]), 1.0, 0.333, 1)
    """
    r_da, r, r_cond, r_ids = _profile("response", response)
    _, les, l_cond, l_ids = _profile("lesion", lesion)
    n_perm = check_scalar("n_perm", n_perm, int, low=1, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    ir, il = _join(r_ids, l_ids)
    kr, kl = _join(r_cond.astype(str), l_cond.astype(str))
    if len(kr) < 2:
        raise AnalysisError(f"response, lesion: expected at least 2 common conditions, found {len(kr)}")
    r, les = r[np.ix_(ir, kr)], les[np.ix_(il, kl)]
    missing = ~(np.isfinite(r).all(axis=1) & np.isfinite(les).all(axis=1))
    no_effect = ~missing & (les == 0).all(axis=1)
    pref, hurt = _tied(np.nan_to_num(r), True), _tied(np.nan_to_num(les), False)
    flat = ~missing & ~no_effect & pref.all(axis=1)
    keep = ~(missing | no_effect | flat)
    n = int(keep.sum())
    if n < 2:
        raise AnalysisError(f"response, lesion: expected at least 2 units with a lesion effect and a preference, found {n}")
    pref, hurt = pref[keep], hurt[keep]
    (sets_p, sp), (sets_h, sh) = (np.unique(x, axis=0, return_inverse=True) for x in (pref, hurt))
    meets = (sets_p.astype(np.int64) @ sets_h.T.astype(np.int64)) > 0  # (preferred sets, most-hurt sets)
    sp, sh = sp.reshape(-1), sh.reshape(-1)
    match = meets[sp, sh]
    null = np.empty(n_perm, np.int64)
    for start, stop, perm in _shuffled(sh, n_perm, np.random.default_rng(seed), n):
        null[start:stop] = meets[sp[None, :], perm].sum(axis=1)
    conditions = r_cond[kr]
    per_unit = {"preferred": conditions[pref.argmax(axis=1)], "most_hurt": conditions[hurt.argmax(axis=1)],
                "match": match, "n_tied_preferred": pref.sum(axis=1), "n_tied_most_hurt": hurt.sum(axis=1)}
    attrs = {"analysis": "preferred_vs_most_hurt", "n_units": n, "n_no_effect": int(no_effect.sum()),
             "n_flat_response": int(flat.sum()), "n_missing": int(missing.sum()),
             "n_unmatched_response": len(r_ids) - len(ir), "n_unmatched_lesion": len(l_ids) - len(ir),
             "conditions": conditions.tolist(),
             "conditions_dropped": sorted(map(str, set(r_cond.astype(str)) ^ set(l_cond.astype(str)))),
             "ties": "match if any tied preferred condition is a tied most-hurt one; preferred and most_hurt: "
                     "the first tied condition", "null": f"most-hurt profiles shuffled across units; {_P_RULE}",
             "n_perm": n_perm, "seed": seed}
    ds = unit_dataset(r_da.isel(neuroid=ir[keep]), {k: (("neuroid",), v) for k, v in per_unit.items()}, attrs=attrs)
    return ds.assign(fraction_match=match.mean(), chance=float(np.bincount(sp) @ meets @ np.bincount(sh)) / n**2,
                     p=_p_value(null, match.sum()), null_mean=null.mean() / n, null_std=null.std() / n)


# --------------------------------------------------------------------------------------------- indicators


def unit_indicators(activity: xr.DataArray, effects: xr.Dataset, by: str = "label") -> xr.Dataset:
    """Per-unit selectivity indicators next to the effect of lesioning that unit alone.

    The indicators are :func:`~neurorecord.analysis.selectivity.selectivity` of ``activity``
    grouped by ``by``; the lesion measures come from single-unit lesion ``effects`` whose
    lesion names (``"fc2.17"``) are ``neuroid_id`` values. Units in both are kept, in the
    activity's order; group and control lesions do not match and are counted.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses, coordinates ``neuroid_id`` and ``by``. May be dask-backed.
    effects : xarray.Dataset
        From :func:`~neurorecord.analysis.lesion_stats.lesion_effects`: ``delta_accuracy``
        (lesion, class) with class ``"overall"``; optionally ``loss`` (lesion) and
        ``loss_intact``, as a lesion experiment stores them.
    by : str, default "label"
        The ``presentation`` coordinate whose values are the conditions.

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid`` (every neuroid coordinate), each variable with ``units`` and
        ``long_name``: ``magnitude`` (mean |response|, the mean activation for non-negative
        responses; activity units), ``csi`` and ``lifetime_sparseness`` (NaN for a unit with
        a negative condition mean, ``negative="nan"``, or all means 0), ``dprime`` (largest
        finite one-vs-rest d' over conditions), ``lesion_impact`` (``-delta_accuracy`` of
        ``"overall"``, percentage points, > 0: the lesion hurts), ``max_class_impact`` (the
        largest ``-delta_accuracy`` over classes), ``loss_change`` (``loss - loss_intact``,
        when present). attrs: ``by``, ``n_units``, ``n_activity_only``, ``n_lesions_unmatched``.

    Raises
    ------
    AnalysisError
        ``activity`` or ``by`` is not valid (as for ``selectivity``), ``effects`` is not such
        a Dataset, or no lesion name is a ``neuroid_id`` of the activity.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis.lesion_stats import lesion_effects
    >>> labels = np.array([0, 0, 1, 1])
    >>> activity = xr.DataArray([[2.0, 1.0, 1.0], [2.0, 1.0, 2.0], [0.0, 1.0, 1.0], [0.0, 1.0, 2.0]],
    ...                         dims=("presentation", "neuroid"), coords={"label": ("presentation", labels),
    ...                         "neuroid_id": ("neuroid", ["fc2.0", "fc2.1", "fc2.2"])})
    >>> fx = lesion_effects([[0, 1, 1, 1], [1, 1, 1, 1]], np.ones(4, bool), labels, ["fc2.0", "fc2.1"], n_boot=0)
    >>> ind = unit_indicators(activity, fx)
    >>> ind["csi"].values, ind["lesion_impact"].values, ind["max_class_impact"].values
    (array([1., 0.]), array([25.,  0.]), array([50.,  0.]))
    """
    if not (isinstance(effects, xr.Dataset) and "delta_accuracy" in effects.data_vars
            and sorted(effects["delta_accuracy"].dims) == ["class", "lesion"]
            and OVERALL in np.asarray(effects["class"].values, dtype=object).astype(str)):
        found = (f"variables {sorted(map(str, effects.data_vars))}" if isinstance(effects, xr.Dataset)
                 else type(effects).__name__)
        raise AnalysisError(f"effects: expected the Dataset of lesion_effects (delta_accuracy (lesion, class) with "
                            f"class {OVERALL!r}), found {found}")
    if not isinstance(by, str):
        raise AnalysisError(f"by: expected the name of a presentation coordinate, found {by!r}")
    act = check_activity(activity, by)
    ids, names = _ids("activity", act), np.asarray(effects["lesion"].values, dtype=object).astype(str)
    ia, il = _join(ids, names)
    if len(ia) == 0:
        raise AnalysisError(f"effects: expected lesion names equal to the activity's neuroid_id ({ids[:2].tolist()} ...), "
                            f"found none in common ({names[:2].tolist()} ...)")
    sub = act.isel(neuroid=ia)
    delta = effects["delta_accuracy"].transpose("lesion", "class").values[il]
    pooled = np.asarray(effects["class"].values, dtype=object).astype(str) == OVERALL
    per_class = np.where(np.isnan(delta[:, ~pooled]), -np.inf, 0.0 - delta[:, ~pooled]).max(axis=1, initial=-np.inf)
    dprime = selectivity(sub, by, "dprime")["dprime"].values
    dprime = np.where(np.isfinite(dprime), dprime, -np.inf).max(axis=0)
    pp = "percentage points"
    variables = {
        "magnitude": (selectivity(sub, by, "magnitude")["magnitude"], str(act.attrs.get("units", "a.u.")),
                      "mean |response| over all presentations"),
        "csi": (selectivity(sub, by, "csi", negative="nan")["csi"], "1", "class selectivity index"),
        "dprime": (np.where(np.isinf(dprime), np.nan, dprime), "1", "largest one-vs-rest d' over conditions"),
        "lifetime_sparseness": (selectivity(sub, by, "lifetime_sparseness", negative="nan")["lifetime_sparseness"], "1",
                                "lifetime sparseness over condition means"),
        "lesion_impact": (0.0 - delta[:, pooled][:, 0], pp, "overall accuracy lost when the unit is lesioned"),
        "max_class_impact": (np.where(np.isinf(per_class), np.nan, per_class), pp, "largest class accuracy lost"),
    }
    if "loss" in effects.data_vars and "loss_intact" in effects.data_vars:
        variables["loss_change"] = (effects["loss"].values[il] - float(effects["loss_intact"]),
                                    str(effects["loss"].attrs.get("units", "nats")), "lesioned minus intact loss")
    ds = unit_dataset(sub, {k: (("neuroid",), np.asarray(v[0], dtype=np.float64)) for k, v in variables.items()},
                      attrs={"analysis": "unit_indicators", "by": by, "n_units": len(ia),
                             "n_activity_only": len(ids) - len(ia), "n_lesions_unmatched": len(names) - len(ia)})
    for k, (_, units, long_name) in variables.items():
        ds[k].attrs.update(units=units, long_name=long_name)
    return ds


def _ranks(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-ranks of ``x`` in each resample (``w``: (resamples, units) counts of each unit drawn),
    centred and times sqrt(w); and whether the resample's values are all equal."""
    order = np.argsort(x, kind="stable")
    new = np.r_[True, x[order][1:] != x[order][:-1]]
    group = np.empty(len(x), np.int64)
    group[order] = np.cumsum(new) - 1
    wg = w[:, order] if new.all() else np.add.reduceat(w[:, order], np.flatnonzero(new), axis=1)
    total = w.sum(axis=1, keepdims=True)
    mid = np.cumsum(wg, axis=1) - wg + (wg + 1) / 2 - (total + 1) / 2
    return np.sqrt(w) * mid[:, group], wg.max(axis=1) == total[:, 0]


def _bootstrap(w: np.ndarray, x: np.ndarray, y: np.ndarray, rx: tuple, ry: tuple) -> np.ndarray:
    """(2, resamples): Pearson and Spearman of each resample from the counts ``w`` and the :func:`_ranks`."""
    x, y, s = x - x.mean(), y - y.mean(), w.sum(axis=1)
    mx, my = w @ x / s, w @ y / s

    def dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", u, v)

    cov = np.stack([w @ (x * y) / s - mx * my, dot(rx[0], ry[0])])
    var_x = np.stack([w @ (x * x) / s - mx * mx, dot(rx[0], rx[0])])
    var = var_x * np.stack([w @ (y * y) / s - my * my, dot(ry[0], ry[0])])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(cov / np.sqrt(var), -1.0, 1.0)
    r[:, rx[1] | ry[1]] = np.nan
    return r


def _resample_counts(n_units: int, n_boot: int, seed: int, n_arrays: int = 1) -> Iterator[tuple[int, int, np.ndarray]]:
    """Bootstrap resamples as counts (resamples, units), in blocks sized for ``n_arrays`` such
    arrays: resample r is ``default_rng(seed).integers(0, n_units, (n_boot, n_units))[r]``."""
    draws = np.random.default_rng(seed).integers(0, n_units, (n_boot, n_units))
    for start, stop in _blocks(n_boot, n_units * n_arrays):
        cells = np.arange(stop - start)[:, None] * n_units + draws[start:stop]
        yield start, stop, np.bincount(cells.ravel(), minlength=cells.size).reshape(cells.shape).astype(np.float64)


def _correlate(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    from scipy.stats import pearsonr, spearmanr

    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return (np.nan,) * 4
    s, p = spearmanr(x, y), pearsonr(x, y)
    return float(s.statistic), float(s.pvalue), float(p.statistic), float(p.pvalue)


def indicator_correlations(indicators: xr.Dataset, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> xr.Dataset:
    """Spearman and Pearson correlations between every pair of per-unit indicators, with bootstrap CIs.

    Each pair uses the units where both are finite (silent units' NaN drop out pairwise); p
    values are scipy's two-sided ``spearmanr`` and ``pearsonr``. The percentile interval
    resamples units with replacement (the same draws for every pair), keeping for each pair
    the drawn units complete for it; resamples where a variable is constant are left out.

    Parameters
    ----------
    indicators : xarray.Dataset
        Per-unit variables (neuroid,), as from :func:`unit_indicators`; every numeric,
        non-bool one is used.
    n_boot : int >= 0, default 1000
        Number of resamples (0: no CI); ``n_boot x n_units`` int64 draws are held.
    seed : int >= 0, default 0
        Seed of the resamples.
    ci : float in (0, 1), default 0.95
        Coverage of the interval.

    Returns
    -------
    xarray.Dataset
        Dims (indicator, indicator2), the variable names: ``spearman``, ``pearson``, each with
        ``_p``, ``_ci_low``, ``_ci_high``; ``n`` (units used), ``n_dropped`` (with a NaN in
        either). NaN with fewer than 3 units or a constant variable. attrs: ``n_units``,
        ``n_boot``, ``seed``, ``ci``, ``bootstrap``.

    Raises
    ------
    AnalysisError
        ``indicators`` is not a Dataset with at least 2 numeric variables over ``neuroid``;
        bad ``n_boot``, ``seed`` or ``ci``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ind = xr.Dataset({"csi": ("neuroid", [0.1, 0.5, 0.3, 0.9, np.nan]),
    ...                   "lesion_impact": ("neuroid", [0.0, 2.0, 1.0, 5.0, 3.0])})
    >>> corr = indicator_correlations(ind, n_boot=200)
    >>> float(corr["spearman"].sel(indicator="csi", indicator2="lesion_impact")), int(corr["n_dropped"][0, 1])
    (1.0, 1)
    """
    names = _indicator_names(indicators)
    if len(names) < 2:
        raise AnalysisError(f"indicators: expected at least 2 numeric variables over 'neuroid', found {names}")
    n_boot = check_scalar("n_boot", n_boot, int, low=0, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    ci = check_scalar("ci", ci, float, low=0, high=1, closed="neither", error=AnalysisError)
    values = [np.asarray(indicators[k].values, dtype=np.float64) for k in names]
    k, n_units = len(names), len(values[0])
    keys = [f"{m}{s}" for m in ("pearson", "spearman") for s in ("", "_p", "_ci_low", "_ci_high")]
    out = {key: np.full((k, k), np.nan) for key in keys}
    used = np.zeros((k, k), np.int64)
    pairs = [(i, j) for i in range(k) for j in range(i, k)]
    complete = [np.isfinite(values[i]) & np.isfinite(values[j]) for i, j in pairs]
    boot = np.full((len(pairs), 2, n_boot), np.nan)
    by_mask: dict[bytes, list[int]] = {}  # pairs with the same complete units share their ranks
    for p, (i, j) in enumerate(pairs):
        by_mask.setdefault(complete[p].tobytes(), []).append(p)
        used[i, j] = used[j, i] = complete[p].sum()
        s, s_p, r, r_p = _correlate(values[i][complete[p]], values[j][complete[p]])
        for key, v in (("spearman", s), ("spearman_p", s_p), ("pearson", r), ("pearson_p", r_p)):
            out[key][i, j] = out[key][j, i] = v
    for start, stop, w in _resample_counts(n_units, n_boot, seed, k) if n_units else ():
        for members in by_mask.values():
            mask = complete[members[0]]
            if mask.sum() >= 3:
                wm = w[:, mask]
                ranks = {v: _ranks(wm, values[v][mask]) for v in {v for p in members for v in pairs[p]}}
                for p in members:
                    i, j = pairs[p]
                    boot[p, :, start:stop] = _bootstrap(wm, values[i][mask], values[j][mask], ranks[i], ranks[j])
    if n_boot:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: constant variables
            tails = np.nanpercentile(boot, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2], axis=-1)
        for p, (i, j) in enumerate(pairs):
            for m, name in enumerate(("pearson", "spearman")):
                for t, side in enumerate(("_ci_low", "_ci_high")):
                    out[name + side][i, j] = out[name + side][j, i] = tails[t, p, m]
    dims = ("indicator", "indicator2")
    return xr.Dataset({**{key: (dims, v) for key, v in out.items()}, "n": (dims, used), "n_dropped": (dims, n_units - used)},
                      coords={"indicator": names, "indicator2": names},
                      attrs={"analysis": "indicator_correlations", "n_units": n_units, "n_boot": n_boot, "seed": seed,
                             "ci": ci, "bootstrap": "percentile interval; units resampled with replacement (the same "
                                                    "draws for every pair), units with a NaN dropped pairwise"})


def predicts_lesion_impact(indicators: xr.Dataset, target: str = "lesion_impact", top: float = 0.10,
                           n_perm: int = 1000, seed: int = 0) -> xr.Dataset:
    """How well each indicator finds the units whose lesion does the most damage.

    For every other indicator, on the n units where it and ``target`` are finite: Spearman rho
    with ``target`` (scipy p), and the recall at ``k = ceil(top * n)``: the fraction of the k
    units with the largest ``target`` that are among the k with the largest indicator (ties at
    the k-th place: the unit first in ``neuroid`` order). Chance is ``k / n``; the null
    shuffles the indicator across the units, so its top k is a random k-subset (the same
    draws for indicators with the same n). Larger is taken to predict more damage: negate an
    indicator for the reverse.

    Parameters
    ----------
    indicators : xarray.Dataset
        Per-unit variables (neuroid,), as from :func:`unit_indicators`.
    target : str, default "lesion_impact"
        The variable to predict (larger = more damage).
    top : float in (0, 1), default 0.10
        Fraction of the units in each top set.
    n_perm : int >= 1, default 1000
        Number of permutations.
    seed : int >= 0, default 0
        Seed of the permutations.

    Returns
    -------
    xarray.Dataset
        Dim ``indicator`` (the other variables): ``spearman``, ``spearman_p``, ``recall``,
        ``chance``, ``p``, ``null_mean`` (mean null recall), ``overlap`` (units in both top
        sets), ``k``, ``n``; NaN (``overlap``, ``k``: 0) with fewer than 3 units. attrs:
        ``target``, ``top``, ``n_perm``, ``seed``, ``ties``, ``null``.

    Raises
    ------
    AnalysisError
        ``indicators`` is not a Dataset with ``target`` and another numeric variable over
        ``neuroid``, ``top`` is not in (0, 1), or bad ``n_perm`` or ``seed``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> impact = np.arange(20.0)
    >>> ind = xr.Dataset({"lesion_impact": ("neuroid", impact), "csi": ("neuroid", impact[::-1])})
    >>> out = predicts_lesion_impact(ind, top=0.1, n_perm=99)
    >>> out["recall"].values, out["chance"].values, out["k"].values
    (array([0.]), array([0.1]), array([2]))
    """
    names = _indicator_names(indicators)
    target = check_choice("target", target, names, error=AnalysisError)
    if len(names) < 2:
        raise AnalysisError(f"indicators: expected a numeric variable over 'neuroid' besides {target!r}, found none")
    top = check_scalar("top", top, float, low=0, high=1, closed="neither", error=AnalysisError)
    n_perm = check_scalar("n_perm", n_perm, int, low=1, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    others = [k for k in names if k != target]
    y_all = np.asarray(indicators[target].values, dtype=np.float64)
    out = {key: np.full(len(others), np.nan) for key in
           ("spearman", "spearman_p", "recall", "chance", "p", "null_mean", "overlap", "k", "n")}
    for i, name in enumerate(others):
        x_all = np.asarray(indicators[name].values, dtype=np.float64)
        ok = np.isfinite(x_all) & np.isfinite(y_all)
        x, y, n = x_all[ok], y_all[ok], int(ok.sum())
        out["n"][i] = n
        if n < 3:
            continue
        k = max(1, int(np.ceil(top * n - 1e-9)))
        in_top = np.zeros(n, bool)
        in_top[np.argsort(-y, kind="stable")[:k]] = True
        overlap = int(in_top[np.argsort(-x, kind="stable")[:k]].sum())
        null, rng = np.empty(n_perm, np.int64), np.random.default_rng(seed)
        for start, stop in _blocks(n_perm, n):
            null[start:stop] = in_top[rng.random((stop - start, n)).argpartition(k - 1, axis=1)[:, :k]].sum(axis=1)
        out["spearman"][i], out["spearman_p"][i] = _correlate(x, y)[:2]
        out["recall"][i], out["chance"][i], out["p"][i] = overlap / k, k / n, _p_value(null, overlap)
        out["null_mean"][i], out["overlap"][i], out["k"][i] = null.mean() / k, overlap, k
    return xr.Dataset(
        {key: ("indicator", np.nan_to_num(v).astype(np.int64) if key in ("overlap", "k", "n") else v)
         for key, v in out.items()},
        coords={"indicator": others},
        attrs={"analysis": "predicts_lesion_impact", "target": target, "top": top, "n_perm": n_perm, "seed": seed,
               "ties": "at the k-th place, the unit first in neuroid order; k = ceil(top * n)",
               "null": f"indicator shuffled across units (its top k a random k-subset); {_P_RULE}"})
