"""Representational dissimilarity matrices (RDMs) over the conditions of a recording.

An RDM holds, for every pair of conditions (stimuli, digit labels, grating directions), how
differently a population responds to them. It is computed from the condition means (every
presentation of a condition averaged, whatever the number of presentations), so a model
recording and a biological one give RDMs over the same conditions that can be compared
(:func:`~neurorecord.compare.rdm_compare.compare_rdms`).

The dissimilarities follow rsatoolbox's ``calc_rdm`` conventions exactly (the tests check
equality to 1e-10):

- ``"correlation"``: 1 - Pearson r between the two conditions' mean patterns over units;
- ``"euclidean"``: the squared Euclidean distance between the mean patterns divided by the
  number of units (rsatoolbox's ``'euclidean'`` is this squared, per-unit distance);
- ``"crossnobis"``: the cross-validated squared Mahalanobis distance per unit: leave one fold
  of the cross-validation coordinate (``repetition``) out, take (train mean difference) x
  precision x (test mean difference), average over folds. Unbiased: its expected value is 0
  for two conditions with the same true response.

The correlation and Euclidean RDMs are one matrix product (BLAS) of the condition means, as
rsatoolbox's Euclidean RDM is; ``benchmarks/rdm.py`` times them against rsatoolbox.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_choice
from ..analysis._units import check_activity, grouping
from ..analysis.tuning import group_means
from ..errors import AnalysisError, did_you_mean
from ._common import ConditionMeans, condition_coords, condition_means

__all__ = ["rdm", "rdm_from_means", "noise_covariance", "upper_triangle", "METHODS", "NOISE"]

#: The dissimilarity measures of :func:`rdm`.
METHODS = ("correlation", "euclidean", "crossnobis")
#: Noise covariance estimates of the crossnobis RDM (see :func:`noise_covariance`).
NOISE = ("shrinkage", "diag", "identity")


def _gram(values: np.ndarray) -> np.ndarray:
    """``values @ values.T`` (rows x rows), made exactly symmetric (upper triangle mirrored)."""
    values = np.asarray(values, dtype=np.float64)
    product = np.triu(values @ values.T)
    return product + np.triu(product, 1).T


def upper_triangle(matrix: np.ndarray | xr.DataArray) -> np.ndarray:
    """The entries above the diagonal, row by row (scipy's ``squareform`` and rsatoolbox's order).

    >>> upper_triangle(np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]]))
    array([1, 2, 3])
    """
    values = np.asarray(matrix)
    return values[np.triu_indices(values.shape[0], 1)]


def rdm_from_means(means: np.ndarray, method: str = "correlation") -> np.ndarray:
    """Correlation or Euclidean RDM of condition means (conditions, units), as a float64 matrix.

    ``"correlation"``: ``1 - r`` (NaN rows and columns for a condition whose mean pattern is
    constant over units); ``"euclidean"``: squared distance / number of units (computed on
    means centred per unit, which leaves it unchanged and avoids cancellation). The diagonal
    is 0.

    >>> rdm_from_means(np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [0.0, 2.0, 4.0]])).round(12)
    array([[0., 2., 0.],
           [2., 0., 2.],
           [0., 2., 0.]])
    >>> rdm_from_means(np.array([[0.0, 0.0], [3.0, 4.0]]), "euclidean")
    array([[ 0. , 12.5],
           [12.5,  0. ]])
    """
    method = check_choice("method", method, ("correlation", "euclidean"), error=AnalysisError)
    means = np.asarray(means, dtype=np.float64)
    n_units = means.shape[1]
    if method == "correlation":
        centred = means - means.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
        with np.errstate(invalid="ignore", divide="ignore"):
            centred /= norms[:, None]  # our own copy: normalised in place
        dissimilarity = 1.0 - _gram(centred)
        np.fill_diagonal(dissimilarity, np.where(norms > 0, 0.0, np.nan))
        return dissimilarity
    centred = means - means.mean(axis=0, keepdims=True)
    squares = np.einsum("ij,ij->i", centred, centred)
    dissimilarity = np.maximum(squares[:, None] + squares[None, :] - 2.0 * _gram(centred), 0.0) / n_units
    np.fill_diagonal(dissimilarity, 0.0)
    return dissimilarity


def noise_covariance(residuals: np.ndarray, dof: int, noise: str = "shrinkage") -> tuple[np.ndarray, float]:
    """Noise covariance over units from residuals (presentation minus its condition mean).

    ``"shrinkage"``: Ledoit & Wolf (2004) shrinkage towards a multiple of the identity
    (scikit-learn's ``ledoit_wolf`` on the residuals), rescaled from 1/n to 1/dof: rsatoolbox's
    ``cov_from_unbalanced(method="shrinkage_eye")``. ``"diag"``: the residual variances only
    (univariate noise normalisation). ``"identity"``: the identity (crossnobis is then the
    cross-validated Euclidean distance). Returns the covariance and the shrinkage intensity
    (1.0 for ``"diag"``, NaN for ``"identity"``).

    >>> cov, shrinkage = noise_covariance(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]), 2, "diag")
    >>> cov
    array([[1., 0.],
           [0., 4.]])
    """
    noise = check_choice("noise", noise, NOISE, error=AnalysisError)
    n_res, n_units = residuals.shape
    if noise == "identity":
        return np.eye(n_units), float("nan")
    if noise == "diag":
        return np.diag(np.einsum("ij,ij->j", residuals, residuals) / dof), 1.0
    from sklearn.covariance import ledoit_wolf

    cov, shrinkage = ledoit_wolf(residuals, assume_centered=True)
    return cov * (n_res / dof), float(shrinkage)


def _crossnobis(act: xr.DataArray, by: str, cv: str, noise: str) -> tuple[np.ndarray, ConditionMeans, dict[str, Any]]:
    groups = grouping(act, by, min_groups=2)
    codes, n_cond = groups.codes, groups.n_groups
    folds, fold_codes = np.unique(np.asarray(act.coords[cv].values), return_inverse=True)
    fold_codes = fold_codes.reshape(-1)
    if len(folds) < 2:
        raise AnalysisError(f"cv: crossnobis needs at least 2 values of {cv!r} to cross-validate, found {len(folds)}")
    values = np.asarray(act.values, dtype=np.float64)
    means = group_means(values, codes, n_cond)
    residuals = values - means[codes]
    keep = np.einsum("ij,ij->j", residuals, residuals) > 0  # units without trial-to-trial variation
    if not keep.any():
        raise AnalysisError(f"activity: crossnobis needs trial-to-trial variability, but no unit varies between the "
                            f"presentations of a {by}; use method='correlation' or 'euclidean'")
    dof = len(codes) - n_cond
    cov, shrinkage = noise_covariance(residuals[:, keep], dof, noise)
    try:
        precision = np.linalg.inv(cov)
    except np.linalg.LinAlgError as exc:
        raise AnalysisError(f"noise: the {noise!r} noise covariance of {int(keep.sum())} units from {dof} degrees of "
                            f"freedom is singular ({exc}); use noise='shrinkage' or 'diag'") from exc
    total = np.zeros((n_cond, n_cond))
    n_pairs = np.zeros((n_cond, n_cond), dtype=np.int64)
    for fold in range(len(folds)):
        test = fold_codes == fold
        test_means = group_means(values[test][:, keep], codes[test], n_cond)
        train_means = group_means(values[~test][:, keep], codes[~test], n_cond)
        ok = np.isfinite(test_means[:, 0]) & np.isfinite(train_means[:, 0])
        kernel = np.nan_to_num(train_means) @ precision @ np.nan_to_num(test_means).T
        diag = np.diag(kernel)
        pair = ok[:, None] & ok[None, :]
        total += np.where(pair, diag[:, None] + diag[None, :] - kernel - kernel.T, 0.0)
        n_pairs += pair
    never = np.argwhere(np.triu(n_pairs == 0, 1))
    if len(never):
        i, j = never[0]
        raise AnalysisError(f"cv: conditions '{groups.levels[i]}' and '{groups.levels[j]}' of {by!r} are never both "
                            f"in a left-out fold of {cv!r} and in the rest ({len(never)} such pairs); crossnobis "
                            f"needs each pair in at least one fold")
    with np.errstate(invalid="ignore", divide="ignore"):  # the diagonal may have no usable fold: set to 0 below
        dissimilarity = total / n_pairs / int(keep.sum())
    np.fill_diagonal(dissimilarity, 0.0)
    cm = ConditionMeans(by, means, groups.levels, groups.counts, codes, act,
                        condition_coords(act, by, groups.levels, codes))
    attrs = {"cv": cv, "n_folds": len(folds), "noise": noise, "noise_dof": dof, "n_units_used": int(keep.sum()),
             "n_units_dropped": int((~keep).sum())}
    if noise == "shrinkage":
        attrs["shrinkage"] = shrinkage
    return dissimilarity, cm, attrs


def rdm(activity: xr.DataArray, by: str = "stimulus_id", method: str = "correlation", *, cv: str = "repetition",
        noise: str = "shrinkage") -> xr.DataArray:
    """The representational dissimilarity matrix of a recording over its conditions.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses of the units (a ``time_bin`` dim is averaged over). May be dask-backed
        (``"correlation"`` and ``"euclidean"`` read it block by block; ``"crossnobis"`` loads it).
    by : str, default "stimulus_id"
        The ``presentation`` coordinate whose values are the conditions (rows of the RDM);
        presentations of one condition are averaged, whatever their number.
    method : {"correlation", "euclidean", "crossnobis"}, default "correlation"
        The dissimilarity, in rsatoolbox's conventions: ``1 - r`` of the condition means over
        units; squared Euclidean distance / number of units; or the crossnobis estimate (leave
        one value of ``cv`` out, average over folds; see the module docstring).
    cv : str, default "repetition"
        Crossnobis only: the ``presentation`` coordinate whose values are the cross-validation
        folds. A pair of conditions is averaged over the folds in which both have presentations
        left out and left in, so unequal trial counts work.
    noise : {"shrinkage", "diag", "identity"}, default "shrinkage"
        Crossnobis only: the noise covariance from the residuals (presentations minus their
        condition mean), with ``n_presentations - n_conditions`` degrees of freedom:
        Ledoit-Wolf shrinkage towards a multiple of the identity, residual variances, or none.
        Units with no residual variance (silent or noise-free units) are left out of a
        crossnobis RDM and counted in ``attrs["n_units_dropped"]``. The precision is a units x
        units matrix (800 MB of float64 for 10,000 units): for very large populations use the
        correlation or Euclidean RDM, or a subset of units.

    Returns
    -------
    xarray.DataArray, dims (condition, condition_), float64
        Symmetric, 0 on the diagonal. ``condition`` and ``condition_`` carry the sorted values
        of ``by``; ``n`` (presentations per condition) and every presentation coordinate that
        is constant within a condition (``label`` of a ``stimulus_id``) are coords on
        ``condition`` (and, with a trailing ``_``, on ``condition_``), except coordinates
        named ``condition`` or ``n``, which would clash. A correlation RDM has NaN
        rows for conditions whose mean pattern is constant over units. ``attrs``: ``analysis``,
        ``method``, ``by``, ``n_units``, ``long_name``, ``units``, ``activity_units`` and, for
        crossnobis, ``cv``, ``n_folds``, ``noise``, ``noise_dof``, ``shrinkage``, ``n_units_used``.

    Raises
    ------
    neurorecord.errors.AnalysisError
        Wrong dims, ``by`` or ``cv`` not a presentation coordinate, fewer than two conditions,
        an unknown ``method`` or ``noise``, a crossnobis RDM without two folds or without any
        trial-to-trial variability.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> activity = xr.DataArray(
    ...     [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.1, 0.0]], dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b", "c", "a"]),
    ...             "neuroid_id": ("neuroid", ["v1.0", "v1.1", "v1.2"])})
    >>> d = rdm(activity)
    >>> d.dims, d.condition.values
    (('condition', 'condition_'), array(['a', 'b', 'c'], dtype='<U1'))
    >>> d.round(3).values
    array([[0.   , 1.461, 1.538],
           [1.461, 0.   , 1.5  ],
           [1.538, 1.5  , 0.   ]])
    >>> d.n.values
    array([2, 1, 1])
    """
    method = check_choice("method", method, METHODS, error=AnalysisError)
    if method == "crossnobis":
        check_choice("noise", noise, NOISE, error=AnalysisError)
        if not isinstance(cv, str):
            raise AnalysisError(f"cv: expected the name of a presentation coordinate, found {cv!r}")
        if not isinstance(by, str):
            raise AnalysisError(f"by: expected the name of a presentation coordinate, found {by!r}")
        act = check_activity(activity, by)
        if cv not in act.coords or act.coords[cv].dims != ("presentation",):
            valid = sorted(c for c in act.coords if act.coords[c].dims == ("presentation",))
            raise AnalysisError(f"cv: {cv!r} is not a coordinate on 'presentation'{did_you_mean(cv, valid)}; "
                                f"presentation coordinates: {', '.join(valid)}")
        dissimilarity, cm, extra = _crossnobis(act, by, cv, noise)
        n_units = cm.values.shape[1]
    else:
        cm = condition_means(activity, by)
        dissimilarity, extra = rdm_from_means(cm.values, method), {}
        n_units = cm.values.shape[1]
    return _label(dissimilarity, cm, method, n_units, extra)


_DESCRIPTION = {
    "correlation": ("1 - Pearson r of the condition means over units", "1"),
    "euclidean": ("squared Euclidean distance of the condition means / number of units", "squared"),
    "crossnobis": ("cross-validated squared Mahalanobis distance / number of units (crossnobis)", "whitened"),
}


def _label(dissimilarity: np.ndarray, cm: ConditionMeans, method: str, n_units: int,
           extra: dict[str, Any]) -> xr.DataArray:
    coords: dict[str, Any] = {"condition": cm.levels, "condition_": cm.levels, "n": ("condition", cm.counts)}
    for name, values in cm.coords.items():
        if name.rstrip("_") in ("condition", "n"):
            continue  # the RDM's own names win (a recording's own ``condition`` index is left out)
        coords[name] = ("condition", values)
        coords[f"{name}_"] = ("condition_", values)
    long_name, units = _DESCRIPTION[method]
    activity_units = cm.activity.attrs.get("units")
    if units == "whitened" and extra.get("noise") == "identity":
        units = "squared"
    if units == "squared":  # the Euclidean RDM is in the activity's units, squared
        units = f"({activity_units})^2" if activity_units is not None else "(activity units)^2"
    elif units == "whitened":  # the precision cancels the activity's units
        units = "1"
    attrs: dict[str, Any] = {"analysis": "rdm", "method": method, "by": cm.by, "n_units": n_units,
                             "long_name": long_name, "units": units}
    if activity_units is not None:
        attrs["activity_units"] = str(activity_units)
    attrs.update(extra)
    return xr.DataArray(dissimilarity, dims=("condition", "condition_"), coords=coords, attrs=attrs)
