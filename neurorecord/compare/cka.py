"""Linear centred kernel alignment (CKA) between two recordings over the same conditions.

CKA (Kornblith et al. 2019) compares two populations' responses to the same conditions
without pairing their units: with X (conditions x units) and Y the condition means centred per
unit and K = X X^T, L = Y Y^T their linear Gram matrices,

    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),   HSIC(K, L) = <K, L>_F  (for centred X, Y).

It is 1 for a representation compared with itself and is unchanged by an orthogonal transform
or an isotropic scaling of either population. The plain estimate is biased upwards when the
number of units is large against the number of conditions; ``debiased=True`` uses the
unbiased HSIC estimator of Song et al. (2012) instead (as Kornblith's reference code does for
"debiased" CKA): with K~, L~ the Gram matrices with their diagonals set to 0 and n conditions,

    HSIC_u(K, L) = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2 1'K~L~1 / (n-2)] / (n (n-3)).

The Gram matrices are n x n, so many units cost one matrix product each.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._validation import check_choice
from ..errors import AnalysisError
from ._common import align_conditions, condition_means
from .rdm import _gram

__all__ = ["cka", "linear_cka", "hsic"]


def hsic(gram_x: np.ndarray, gram_y: np.ndarray, debiased: bool = False) -> float:
    """HSIC of two linear Gram matrices of centred data: <K, L>_F, or Song et al.'s unbiased estimate.

    >>> k = np.array([[2.0, -2.0], [-2.0, 2.0]])
    >>> hsic(k, k)
    16.0
    """
    if not debiased:
        return float(np.einsum("ij,ij->", gram_x, gram_y))
    n = gram_x.shape[0]
    k, m = gram_x.copy(), gram_y.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(m, 0.0)
    ones_k, ones_m = k.sum(axis=0), m.sum(axis=0)
    value = np.einsum("ij,ij->", k, m) + ones_k.sum() * ones_m.sum() / ((n - 1) * (n - 2)) - 2.0 * (ones_k @ ones_m) / (n - 2)
    return float(value / (n * (n - 3)))


def linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    """Linear CKA of two (conditions, units) arrays with the same rows; NaN where one has no variance.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(10, 4))
    >>> round(linear_cka(x, 3.0 * x @ np.linalg.qr(rng.normal(size=(4, 4)))[0]), 12)
    1.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    k = _gram(x - x.mean(axis=0))
    m = _gram(y - y.mean(axis=0))
    den = hsic(k, k, debiased) * hsic(m, m, debiased)
    return float(hsic(k, m, debiased) / np.sqrt(den)) if den > 0 else float("nan")


def cka(model: xr.DataArray, biology: xr.DataArray, by: str = "stimulus_id", *, debiased: bool = False,
        kind: str = "linear") -> xr.DataArray:
    """Linear CKA between two recordings' condition means (model vs biology, or any two).

    Parameters
    ----------
    model, biology : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses; each is averaged per condition of ``by`` (unequal trial counts are fine).
        Every condition of ``biology`` must be among ``model``'s; the comparison is over
        ``biology``'s conditions. May be dask-backed.
    by : str, default "stimulus_id"
        The ``presentation`` coordinate whose values are the conditions.
    debiased : bool, default False
        Use the unbiased HSIC estimator (needs at least 4 conditions); can be slightly
        negative for unrelated representations.
    kind : {"linear"}, default "linear"
        The kernel (only the linear one).

    Returns
    -------
    xarray.DataArray, scalar
        CKA (unitless; in [0, 1] for the plain estimate). Units that never vary (silent units)
        have no effect. ``attrs``: ``analysis``, ``kind``, ``debiased``, ``by``,
        ``n_conditions``, ``n_units_model``, ``n_units_biology``, ``long_name``, ``units``.

    Raises
    ------
    neurorecord.errors.AnalysisError
        Wrong dims, unknown ``by``, conditions of ``biology`` missing from ``model``, fewer
        than 4 conditions for ``debiased``, a recording with no variance over conditions.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ids = [f"s{i}" for i in range(12)]
    >>> model = xr.DataArray(rng.normal(size=(12, 50)), dims=("presentation", "neuroid"),
    ...                      coords={"stimulus_id": ("presentation", ids)})
    >>> rotated = model.copy(data=model.values @ np.linalg.qr(rng.normal(size=(50, 50)))[0])
    >>> float(cka(model, rotated).round(10))
    1.0
    """
    check_choice("kind", kind, ("linear",), error=AnalysisError)
    if not isinstance(debiased, (bool, np.bool_)):
        raise AnalysisError(f"debiased: expected True or False, found {debiased!r}")
    m = condition_means(model, by)
    b = condition_means(biology, by)
    x, y, levels = align_conditions(m, b)
    if debiased and len(levels) < 4:
        raise AnalysisError(f"biology: debiased CKA needs at least 4 conditions, found {len(levels)}")
    for name, values in (("model", x), ("biology", y)):
        if not np.ptp(values, axis=0).any():
            raise AnalysisError(f"{name}: expected responses that vary over the conditions of {by!r}, found none that do")
    value = linear_cka(x, y, debiased)
    attrs = {"analysis": "cka", "kind": kind, "debiased": bool(debiased), "by": by, "n_conditions": len(levels),
             "n_units_model": x.shape[1], "n_units_biology": y.shape[1],
             "long_name": "debiased linear CKA" if debiased else "linear CKA", "units": "1"}
    return xr.DataArray(value, attrs=attrs)
