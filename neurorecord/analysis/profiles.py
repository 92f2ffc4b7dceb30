"""Functional profiles of units, and their clustering into candidate populations.

A profile is one row per unit over a set of conditions: the unit's mean response in each
condition (:func:`response_profiles`) or the change in each class that lesioning the unit alone
causes (:func:`lesion_profiles`). :func:`cluster_profiles` groups units with similar profiles
(scipy or scikit-learn do the clustering), chooses the number of clusters by a criterion, and
says how stable the partition is when the conditions are resampled.

Methods: ``average`` (scipy average linkage on the correlation distance), ``ward`` (scipy Ward
linkage on profiles z-scored per unit), ``kmeans`` (sklearn ``KMeans``), ``gmm`` (sklearn
``GaussianMixture``). Criteria for the number of clusters: ``silhouette`` (sklearn), ``gap``
(Tibshirani, Walther & Hastie 2001, against a shuffled null) and ``bic`` (``gmm`` only).
"""

from __future__ import annotations

import warnings

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_choice, check_scalar, check_seed
from ..errors import AnalysisError
from ._units import check_activity, grouping, map_unit_blocks
from .lesion_stats import OVERALL
from .tuning import _common_attrs

__all__ = ["CRITERIA", "METHODS", "N_REFS", "cluster_profiles", "lesion_profiles", "response_profiles"]

#: Clustering methods of :func:`cluster_profiles`, and the metric of each one's silhouette and gap.
METHODS = {"average": "correlation", "ward": "euclidean", "kmeans": "euclidean", "gmm": "euclidean"}
#: Criteria for choosing the number of clusters.
CRITERIA = ("silhouette", "gap", "bic")
#: Number of shuffled reference sets of the gap statistic.
N_REFS = 20
#: Normalisations of :func:`response_profiles` and the ``units`` attribute each one gives.
_NORMALISE = {"zscore": "z", "max": "fraction of max", "none": "a.u."}
_MEASURES = ("delta_accuracy", "delta_loss")
_LINKAGE_COLUMNS = ["cluster_a", "cluster_b", "distance", "n_units"]


def _silent(values: np.ndarray) -> np.ndarray:
    """Units (rows) whose finite values do not vary (range <= 1e-12 of their largest |value|:
    rounding of constant responses), or that have fewer than two finite values."""
    finite = np.isfinite(values)
    hi = np.where(finite, values, -np.inf).max(axis=1)
    lo = np.where(finite, values, np.inf).min(axis=1)
    scale = np.where(finite, np.abs(values), 0.0).max(axis=1)
    with np.errstate(invalid="ignore"):
        return (finite.sum(axis=1) < 2) | ~(hi - lo > 1e-12 * scale)


def response_profiles(activity: xr.DataArray, by: str, normalise: str = "zscore") -> xr.DataArray:
    """Each unit's mean response per condition, normalised per unit.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (a ``time_bin`` dim is averaged over first). May be dask-backed. NaN
        responses are skipped (as pandas ``groupby().mean()`` does).
    by : str
        The ``presentation`` coordinate whose values are the conditions (at least two);
        conditions may have unequal numbers of presentations.
    normalise : {"zscore", "max", "none"}, default "zscore"
        Per unit, over its condition means: ``"zscore"`` subtracts their mean and divides by
        their standard deviation (ddof=0); ``"max"`` divides by the largest |mean|; ``"none"``
        keeps the means. NaN means (a condition without a finite response of the unit) are
        left out of the statistics and stay NaN.

    Returns
    -------
    xarray.DataArray, dims (neuroid, condition)
        Named ``profile``. Every ``neuroid`` coordinate of ``activity`` is kept; ``condition``
        holds the sorted levels of ``by``, with coordinate ``n`` (presentations per
        condition); ``silent`` (neuroid, bool) marks units whose condition means do not vary
        (all-zero or constant responses): their profile is NaN under ``"zscore"`` and
        ``"max"`` and the plain means under ``"none"``; :func:`cluster_profiles` sets them
        aside. ``attrs``: ``by``, ``normalise``, ``long_name``, ``units`` (``"z"``,
        ``"fraction of max"`` or ``"a.u."``), ``n_silent``, ``activity_units`` when known.

    Raises
    ------
    AnalysisError
        ``activity`` is not a presentation x neuroid DataArray, ``by`` is not a presentation
        coordinate or has fewer than two values, ``normalise`` is unknown.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> activity = xr.DataArray(
    ...     np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 0.0], [0.0, 0.0]]), dims=("presentation", "neuroid"),
    ...     coords={"label": ("presentation", ["a", "a", "b", "c"]), "neuroid_id": ("neuroid", ["v1.0", "v1.1"])})
    >>> profiles = response_profiles(activity, "label", normalise="max")
    >>> profiles.values
    array([[0.4, 1. , 0. ],
           [nan, nan, nan]])
    >>> profiles["condition"].values.tolist(), profiles["n"].values.tolist(), profiles["silent"].values.tolist()
    (['a', 'b', 'c'], [2, 1, 1], [False, True])
    """
    normalise = check_choice("normalise", normalise, tuple(_NORMALISE), error=AnalysisError)
    if not isinstance(by, str):
        raise AnalysisError(f"by: expected the name of a presentation coordinate (str), found {by!r}")
    act = check_activity(activity, by)
    groups = grouping(act, by)
    one_hot = groups.one_hot()

    def kernel(block: np.ndarray) -> np.ndarray:
        finite = np.isfinite(block)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (one_hot @ np.where(finite, block, 0.0)) / (one_hot @ finite)

    means = map_unit_blocks(kernel, act, groups.n_groups).T  # (neuroid, condition)
    silent = _silent(means)
    values = means.copy()
    if normalise != "none":
        ok = ~silent
        rows = means[ok]
        if normalise == "zscore":
            rows = (rows - np.nanmean(rows, axis=1, keepdims=True)) / np.nanstd(rows, axis=1, keepdims=True)
            long_name = "mean response per condition, z-scored across conditions per unit"
        else:
            rows = rows / np.nanmax(np.abs(rows), axis=1, keepdims=True)
            long_name = "mean response per condition, divided by the unit's largest |mean|"
        values[ok], values[silent] = rows, np.nan
    else:
        long_name = "mean response per condition"
    coords = {k: v for k, v in act.coords.items() if v.dims == ("neuroid",)}
    coords.update(condition=("condition", groups.levels, dict(act[by].attrs)), n=("condition", groups.counts),
                  silent=("neuroid", silent))
    attrs = {"by": by, "normalise": normalise, "long_name": long_name, "units": _NORMALISE[normalise],
             "n_silent": int(silent.sum()), **_common_attrs(act)}
    return xr.DataArray(values, dims=("neuroid", "condition"), coords=coords, name="profile", attrs=attrs)


def lesion_profiles(effects: xr.Dataset, measure: str = "delta_accuracy") -> xr.DataArray:
    """Per-class effect of every single-unit lesion of a sweep, as one profile per lesioned unit.

    Parameters
    ----------
    effects : xarray.Dataset, dims (lesion, class)
        A sweep's effects, as :func:`~neurorecord.analysis.lesion_stats.lesion_effects` (or a
        protocol's lesion entry) returns them. Where a ``lesion_kind`` coordinate exists only
        the ``"single"`` lesions are kept (groups and their controls are dropped).
    measure : {"delta_accuracy", "delta_loss"}, default "delta_accuracy"
        The (lesion, class) variable to read: the accuracy change (percentage points), or a
        per-class loss change where the sweep has one (``delta_loss``).

    Returns
    -------
    xarray.DataArray, dims (neuroid, condition)
        Named after ``measure``. ``neuroid_id`` is the lesion name (``"fc2.17"``); where every
        name is ``"<region>.<channel>"`` the coordinates ``region`` and ``channel`` (int) are
        added, so the rows line up with a recording's units. The other ``lesion`` coordinates
        (``targets``, ``lesion_kind``, ...) are kept on ``neuroid``. ``condition`` holds the
        class labels without ``"overall"`` (classes without stimuli, NaN for every lesion,
        are dropped). ``silent`` (neuroid, bool) marks lesions whose effect does not vary
        across classes (most often: no effect at all); :func:`cluster_profiles` sets them
        aside. ``attrs``: those of the variable (``units``, ``long_name``), and ``measure``,
        ``by`` (``"class"``), ``normalise`` (``"none"``), ``n_silent``.

    Raises
    ------
    AnalysisError
        ``effects`` is not a Dataset, ``measure`` is unknown or not a (lesion, class) variable
        of ``effects`` (the message lists those that are), no lesion is of kind ``"single"``,
        fewer than two classes are left.

    Examples
    --------
    >>> import numpy as np
    >>> from neurorecord.analysis.lesion_stats import lesion_effects
    >>> labels = np.array([0, 0, 1, 1, 2, 2])
    >>> correct = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 1, 0]], bool)
    >>> fx = lesion_effects(correct, np.ones(6, bool), labels, ["fc2.0", "fc2.1", "fc2.2"], n_boot=0)
    >>> profiles = lesion_profiles(fx)
    >>> profiles.values
    array([[-100.,    0.,    0.],
           [   0.,    0.,    0.],
           [   0.,  -50.,  -50.]])
    >>> profiles["channel"].values.tolist(), profiles["silent"].values.tolist(), profiles.attrs["units"]
    ([0, 1, 2], [False, True, False], 'percentage points')
    """
    if not isinstance(effects, xr.Dataset):
        raise AnalysisError(f"effects: expected an xarray.Dataset of lesion effects (lesion x class), found "
                            f"{type(effects).__name__}")
    measure = check_choice("measure", measure, _MEASURES, error=AnalysisError)
    per_class = sorted(str(n) for n, v in effects.data_vars.items() if set(v.dims) == {"lesion", "class"})
    if measure not in per_class:
        per_lesion = sorted(str(n) for n, v in effects.data_vars.items() if v.dims == ("lesion",))
        only = f"; per lesion only (no class dim): {', '.join(per_lesion)}" if per_lesion else ""
        raise AnalysisError(f"measure: expected a (lesion, class) variable of effects, found no {measure!r}; "
                            f"(lesion, class) variables: {', '.join(per_class) or 'none'}{only}")
    da = effects[measure].transpose("lesion", "class")
    if "lesion_kind" in da.coords:
        kinds = np.asarray(da["lesion_kind"].values, dtype=object).astype(str)
        if not (kinds == "single").any():
            raise AnalysisError(f"effects: expected single-unit lesions (lesion_kind 'single'), found kinds "
                                f"{sorted(set(kinds.tolist()))}")
        da = da.isel(lesion=np.flatnonzero(kinds == "single"))
    values = np.asarray(da.values, dtype=np.float64)
    classes = np.asarray(da["class"].values, dtype=object).astype(str)
    keep = (classes != OVERALL) & ~np.isnan(values).all(axis=0)
    if keep.sum() < 2:
        raise AnalysisError(f"effects: expected at least two classes with stimuli besides {OVERALL!r}, found "
                            f"{classes[keep].tolist()}")
    values = values[:, keep]
    names = np.asarray(da["lesion"].values, dtype=object).astype(str)
    coords: dict[str, Any] = {"neuroid_id": ("neuroid", names.astype(object))}
    parts = [name.rsplit(".", 1) for name in names]
    if all(len(p) == 2 and p[0] and p[1].isdigit() for p in parts):
        coords["region"] = ("neuroid", np.array([p[0] for p in parts], dtype=object))
        coords["channel"] = ("neuroid", np.array([int(p[1]) for p in parts], dtype=np.int64))
    for name, coord in da.coords.items():
        if coord.dims == ("lesion",) and name != "lesion":
            coords[str(name)] = ("neuroid", coord.values)
    silent = _silent(values)
    coords.update(condition=classes[keep], silent=("neuroid", silent))
    attrs = {**da.attrs, "measure": measure, "by": "class", "normalise": "none", "n_silent": int(silent.sum())}
    return xr.DataArray(values, dims=("neuroid", "condition"), coords=coords, name=measure, attrs=attrs)


# ----------------------------------------------------------------------------- clustering


def _features(x: np.ndarray, method: str) -> np.ndarray:
    """What ``method`` clusters: the profiles, z-scored per unit (ddof=0) for Ward."""
    if method != "ward":
        return x
    sd = x.std(axis=1, keepdims=True)
    return np.divide(x - x.mean(axis=1, keepdims=True), sd, out=np.zeros_like(x), where=sd > 0)


def _cluster(x: np.ndarray, method: str, ks: Sequence[int], seed: int) -> tuple[list[np.ndarray], np.ndarray | None, list[float]]:
    """Labels (0-based) of ``x``'s rows for every k, the linkage (hierarchical methods) and the BICs (gmm)."""
    f = _features(x, method)
    if method in ("average", "ward"):
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import pdist

        if method == "average":  # a unit constant over resampled conditions: uncorrelated (d = 1)
            d = pdist(f, "correlation")
            z = linkage(np.where(np.isfinite(d), np.maximum(d, 0.0), 1.0), method="average")
        else:
            z = linkage(f, method="ward")
        return [fcluster(z, k, criterion="maxclust") - 1 for k in ks], z, []
    from sklearn.exceptions import ConvergenceWarning

    # profiles with repeated rows (sparse lesion profiles: many units change no class) can hold
    # fewer distinct points than k; sklearn's fit is kept as it is, without a warning per fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if method == "kmeans":
            from sklearn.cluster import KMeans

            return [KMeans(n_clusters=k, n_init=10, random_state=seed).fit(f).labels_ for k in ks], None, []
        from sklearn.mixture import GaussianMixture

        models = [GaussianMixture(n_components=k, covariance_type="diag", random_state=seed).fit(f) for k in ks]
        return [m.predict(f) for m in models], None, [float(m.bic(f)) for m in models]


def _log_dispersion(f: np.ndarray, labels: np.ndarray, metric: str) -> float:
    """log W_k = log sum_r D_r / (2 n_r): squared Euclidean (within sum of squares) or 1 - r."""
    from scipy.spatial.distance import pdist

    w = 0.0
    for r in np.unique(labels):
        rows = f[labels == r]
        if metric == "correlation":
            w += np.nan_to_num(pdist(rows, "correlation"), nan=1.0).sum() / len(rows)
        else:
            w += ((rows - rows.mean(axis=0)) ** 2).sum()
    return float(np.log(max(w, np.finfo(float).tiny)))


def _gap(x: np.ndarray, labels: list[np.ndarray], method: str, ks: list[int], seed: int,
         ref_seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Gap(k) = mean_b log W*_kb - log W_k and s_k = sd_b(log W*_kb) sqrt(1 + 1/B) over N_REFS shuffled sets."""
    metric, rng = METHODS[method], np.random.default_rng(ref_seed)
    f = _features(x, method)
    log_w = np.array([_log_dispersion(f, lab, metric) for lab in labels])
    ref = np.empty((N_REFS, len(ks)))
    for b in range(N_REFS):
        xb = rng.permuted(x, axis=0)  # every condition's values shuffled across units, independently
        fb = _features(xb, method)
        ref[b] = [_log_dispersion(fb, lab, metric) for lab in _cluster(xb, method, ks, seed)[0]]
    return ref.mean(axis=0) - log_w, ref.std(axis=0) * np.sqrt(1.0 + 1.0 / N_REFS)


def _silhouette(x: np.ndarray, labels: list[np.ndarray], method: str) -> np.ndarray:
    from sklearn.metrics import silhouette_score

    f = _features(x, method)
    return np.array([silhouette_score(f, lab, metric=METHODS[method]) if 2 <= len(np.unique(lab)) < len(lab)
                     else np.nan for lab in labels])


def _check_k_range(k_range: Any, low: int, n: int) -> list[int]:
    """The k of ``k_range`` (low to high inclusive), high clipped to n - 1 (n: units clustered)."""
    try:
        lo, hi = k_range
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lo, hi)) and low <= lo < hi
    except (TypeError, ValueError):
        ok = False
    if not ok or lo > n - 1:
        raise AnalysisError(f"k_range: expected two integers (low, high) with {low} <= low < high and low <= "
                            f"{n - 1} (units to cluster - 1), found {k_range!r}")
    return list(range(int(lo), min(int(hi), n - 1) + 1))


def cluster_profiles(profiles: xr.DataArray, method: str = "average", k: int | str = "auto",
                     criterion: str = "silhouette", k_range: tuple[int, int] = (2, 10), n_boot: int = 100,
                     seed: int = 0) -> xr.Dataset:
    """Cluster units by their profiles; choose the number of clusters; measure the partition's stability.

    Parameters
    ----------
    profiles : xarray.DataArray, dims (neuroid, condition)
        From :func:`response_profiles` or :func:`lesion_profiles` (any name of the second dim).
        Units with a non-finite value, constant units and units marked by a ``silent``
        coordinate are set aside: not clustered, labelled -1.
    method : {"average", "ward", "kmeans", "gmm"}, default "average"
        ``"average"``: scipy average linkage on the correlation distance (1 - r) between
        profiles; ``"ward"``: scipy Ward linkage (Euclidean) on the profiles z-scored per unit
        (ddof=0); ``"kmeans"``: sklearn ``KMeans(n_init=10, random_state=seed)``; ``"gmm"``:
        sklearn ``GaussianMixture(covariance_type="diag", random_state=seed)`` (a full
        covariance per cluster would need K(K+1)/2 parameters, and z-scored profiles lie in a
        K-1 dimensional subspace, where it is singular). Hierarchical trees are cut by
        ``fcluster(criterion="maxclust")``.
    k : int or "auto", default "auto"
        Number of clusters, in [2, n_clustered - 1]; ``"auto"`` chooses it within ``k_range``
        by ``criterion``. With an int, ``criterion_curve`` is still computed over ``k_range``,
        for reference.
    criterion : {"silhouette", "gap", "bic"}, default "silhouette"
        ``"silhouette"``: sklearn ``silhouette_score`` of each partition with the method's
        metric (``attrs["metric"]``); the largest wins. ``"gap"``: the gap statistic
        (Tibshirani, Walther & Hastie 2001), ``log W_k`` of :data:`N_REFS` reference sets in
        which each condition's values are permuted independently across units (a shuffled
        null that keeps every condition's distribution and breaks the units' profiles), the
        same procedure applied to each; W_k sums, over clusters, the pairwise distances (squared
        Euclidean, or 1 - r for ``"average"``) divided by twice the cluster size; the smallest
        k with gap(k) >= gap(k+1) - s(k+1) wins (the largest k of the range when none does).
        ``"bic"``: the mixture's BIC (``method="gmm"`` only); the lowest wins. Silhouette and
        gap work with every method.
    k_range : tuple of two int, default (2, 10)
        The k searched, ``low`` to ``high`` inclusive; ``high`` is clipped to n_clustered - 1
        (``attrs["k_range"]`` says what was searched). ``low`` may be 1 for ``"gap"`` and
        ``"bic"`` (is there any structure at all?), not for the silhouette.
    n_boot : int, default 100
        Bootstrap resamples of the conditions (columns of ``profiles``, drawn with
        replacement); each is clustered into ``k_chosen`` clusters. 0 skips the bootstrap.
    seed : int, default 0
        Seeds the k-means and mixture fits (``random_state``), and, through
        ``numpy.random.SeedSequence(seed).spawn(2)``, the bootstrap and the gap references.

    Returns
    -------
    xarray.Dataset
        Every ``neuroid`` coordinate of ``profiles``, and:

        - ``population`` (neuroid), int: the cluster of each unit, -1 for units set aside.
        - ``criterion_curve`` (k): the criterion for each k of ``k_range`` (silhouette, gap or
          BIC); with ``"gap"`` also ``gap_se`` (k), the s_k above.
        - ``consensus`` (neuroid, neuroid2): fraction of bootstrap resamples in which two units
          share a cluster (NaN for units set aside, or without bootstrap); ``neuroid2`` has the
          coordinate ``neuroid_id2``.
        - ``stability``, scalar: mean adjusted Rand index (sklearn) between the full-data
          partition and each resample's; ``boot_ari`` (resample) holds each one. NaN when
          ``k_chosen`` is 1 or ``n_boot`` is 0.
        - ``linkage`` (merge, linkage_column), for ``"average"`` and ``"ward"``: scipy's
          linkage matrix of the full data (columns ``cluster_a``, ``cluster_b``, ``distance``,
          ``n_units``); leaf i is the i-th unit with ``population`` >= 0, for
          ``scipy.cluster.hierarchy.dendrogram``.

        ``attrs``: ``method``, ``criterion``, ``k_chosen``, ``k`` (as given), ``k_range``,
        ``seed``, ``n_boot``, ``metric``, ``features`` (what was clustered), ``null`` (the gap
        null, or that none was used), ``n_refs``, ``set_aside`` (their ``neuroid_id``),
        ``n_clustered``, and ``covariance_type`` for ``"gmm"``.

    Raises
    ------
    AnalysisError
        ``profiles`` is not a (neuroid, condition) DataArray, has fewer than two conditions
        or fewer than three units left to cluster; an unknown ``method`` or ``criterion``;
        ``"bic"`` without ``"gmm"``; ``k``, ``k_range``, ``n_boot`` or ``seed`` out of range.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> shapes = 3 * np.exp(-0.5 * ((np.arange(8) - np.array([[1], [4], [7]])) / 1.5) ** 2)   # 3 tuning peaks
    >>> x = np.repeat(shapes, 5, axis=0) + 0.3 * rng.normal(size=(15, 8))                   # 5 units each
    >>> profiles = xr.DataArray(x, dims=("neuroid", "condition"),
    ...                         coords={"neuroid_id": ("neuroid", [f"fc2.{i}" for i in range(15)])})
    >>> result = cluster_profiles(profiles, k_range=(2, 5), n_boot=20)
    >>> result.attrs["k_chosen"], result["population"].values
    (3, array([0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1]))
    >>> result["criterion_curve"].values.round(2), bool(result["stability"] > 0.9), result["linkage"].shape
    (array([0.71, 0.95, 0.77, 0.73]), True, (14, 4))
    """
    if not isinstance(profiles, xr.DataArray):
        raise AnalysisError(f"profiles: expected an xarray.DataArray (neuroid x condition), found {type(profiles).__name__}")
    if profiles.ndim != 2 or "neuroid" not in profiles.dims:
        raise AnalysisError(f"profiles: expected dims ('neuroid', <condition>), found {profiles.dims}")
    method = check_choice("method", method, tuple(METHODS), error=AnalysisError)
    criterion = check_choice("criterion", criterion, CRITERIA, error=AnalysisError)
    if criterion == "bic" and method != "gmm":
        raise AnalysisError(f"criterion: expected 'silhouette' or 'gap' with method={method!r} ('bic' needs the "
                            f"likelihood of method='gmm'), found 'bic'")
    n_boot = check_scalar("n_boot", n_boot, int, low=0, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    profiles = profiles.transpose("neuroid", ...)
    if profiles.dtype.kind not in "biuf":
        raise AnalysisError(f"profiles: expected numbers, found dtype {profiles.dtype}")
    values = np.asarray(profiles.values, dtype=np.float64)
    if values.shape[1] < 2:
        raise AnalysisError(f"profiles: expected at least 2 conditions, found {values.shape[1]}")
    aside = ~np.isfinite(values).all(axis=1) | _silent(values)
    if "silent" in profiles.coords and profiles.coords["silent"].dims == ("neuroid",):
        aside |= np.asarray(profiles.coords["silent"].values).astype(bool)
    n = int((~aside).sum())
    if n < 3:
        raise AnalysisError(f"profiles: expected at least 3 units to cluster (not silent, all values finite), found {n}")
    ks = _check_k_range(k_range, 2 if criterion == "silhouette" else 1, n)
    if not (isinstance(k, str) and k == "auto"):
        if isinstance(k, str):
            raise AnalysisError(f"k: expected 'auto' or an integer in [2, {n - 1}], found {k!r}")
        k = check_scalar("k", k, int, low=2, high=n - 1, error=AnalysisError)

    x = values[~aside]
    metric = METHODS[method]
    boot_seed, ref_seed = np.random.SeedSequence(seed).spawn(2)
    labels, _, bics = _cluster(x, method, ks, seed)
    se = None
    if criterion == "silhouette":
        curve = _silhouette(x, labels, method)
        best = ks[int(np.nanargmax(curve))] if np.isfinite(curve).any() else ks[0]
    elif criterion == "bic":
        curve = np.array(bics)
        best = ks[int(np.argmin(curve))]
    else:
        curve, se = _gap(x, labels, method, ks, seed, ref_seed)
        best = next((kk for i, kk in enumerate(ks[:-1]) if curve[i] >= curve[i + 1] - se[i + 1]), ks[-1])
    k_chosen = best if k == "auto" else int(k)
    (full_labels,), z, _ = _cluster(x, method, [k_chosen], seed)

    from sklearn.metrics import adjusted_rand_score

    rng, together, ari = np.random.default_rng(boot_seed), np.zeros((n, n)), np.full(n_boot, np.nan)
    for b in range(n_boot):
        cols = rng.integers(0, x.shape[1], size=x.shape[1])
        lab = _cluster(x[:, cols], method, [k_chosen], seed)[0][0]
        together += lab[:, None] == lab[None, :]
        if k_chosen > 1:
            ari[b] = adjusted_rand_score(full_labels, lab)
    kept, consensus = np.flatnonzero(~aside), np.full((len(values), len(values)), np.nan)
    consensus[np.ix_(kept, kept)] = together / n_boot if n_boot else np.nan
    population = np.full(len(values), -1, dtype=np.int64)
    population[kept] = full_labels
    ids = (np.asarray(profiles["neuroid_id"].values, dtype=object).astype(str) if "neuroid_id" in profiles.coords
           else np.arange(len(values)).astype(str))
    stability = float(np.mean(ari)) if n_boot and k_chosen > 1 else np.nan

    coords = {name: c for name, c in profiles.coords.items() if c.dims == ("neuroid",)}
    coords.update(neuroid_id2=("neuroid2", ids.astype(object)), k=np.array(ks))
    curve_name = {"silhouette": f"silhouette score ({metric})", "gap": "gap statistic", "bic": "BIC of the mixture"}
    data: dict[str, Any] = {
        "population": ("neuroid", population, {"long_name": "cluster of each unit (-1: set aside)"}),
        "criterion_curve": ("k", curve, {"long_name": curve_name[criterion]}),
        "consensus": (("neuroid", "neuroid2"), consensus,
                      {"long_name": "fraction of bootstrap resamples in which two units share a cluster"}),
        "stability": ((), stability, {"long_name": "mean adjusted Rand index, full data vs bootstrap resamples"}),
        "boot_ari": (("resample",), ari, {"long_name": "adjusted Rand index of each bootstrap partition"}),
    }
    if se is not None:
        data["gap_se"] = ("k", se, {"long_name": "s_k = sd of the references' log W_k * sqrt(1 + 1/n_refs)"})
    if z is not None:
        data["linkage"] = (("merge", "linkage_column"), z, {"long_name": "scipy linkage matrix of the clustered units"})
        coords["linkage_column"] = _LINKAGE_COLUMNS
    features = "profiles z-scored per unit (ddof=0)" if method == "ward" else "profiles as given"
    null = (f"each condition's values permuted independently across units ({N_REFS} reference sets, seeded), "
            "then clustered like the data" if criterion == "gap" else f"none (criterion {criterion!r})")
    attrs = {"method": method, "criterion": criterion, "k_chosen": int(k_chosen), "k": k, "k_range": [ks[0], ks[-1]],
             "seed": seed, "n_boot": n_boot, "metric": metric, "features": features, "null": null,
             "n_refs": N_REFS if criterion == "gap" else 0, "set_aside": ids[aside].tolist(), "n_clustered": n}
    if method == "gmm":
        attrs["covariance_type"] = "diag"
    return xr.Dataset(data, coords=coords, attrs=attrs)
