"""Cross-validated linear predictivity of biological units from model units (Brain-Score style).

For every biological unit, how well does a linear readout of the model's units predict its
mean response to held-out stimuli? The recipe follows Brain-Score's neural predictivity
(Schrimpf et al. 2018), with ridge regression in place of its PLS:

1. both recordings are averaged per condition (``stimulus_id`` by default; unequal trial
   counts are fine), over the biological recording's conditions;
2. the conditions are split into ``n_folds`` folds (scikit-learn ``KFold``, shuffled with
   ``seed``); for each fold a ridge regression from the model units (standardised on the
   training conditions) to all biological units is fitted on the other folds, with its
   penalty chosen per biological unit among ``alphas`` by efficient leave-one-out
   cross-validation on the training conditions (scikit-learn ``RidgeCV``,
   ``alpha_per_target=True``);
3. each biological unit's score is the Pearson r between its held-out responses and the
   predictions, computed per fold and averaged over folds (Brain-Score's per-split
   correlation, averaged over splits);
4. the ceiling is the unit's split-half reliability (Spearman-Brown corrected,
   :func:`~neurorecord.compare.ceiling.split_half_reliability`); the ceiled score is r divided
   by it. Brain-Score's summary is the median over units, reported in ``attrs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_scalar, check_seed
from ..analysis._units import unit_dataset
from ..errors import AnalysisError
from ._common import align_conditions, condition_means
from .ceiling import pearson_columns, split_half_reliability

__all__ = ["linear_predictivity", "ALPHAS"]

#: The default ridge penalties: 10^-3 ... 10^5, one per decade (on standardised model units).
ALPHAS = tuple(float(a) for a in np.logspace(-3, 5, 9))


def _check_alphas(alphas: Any) -> np.ndarray:
    values = np.asarray(alphas, dtype=np.float64) if np.ndim(alphas) == 1 else None
    if values is None or not len(values) or not np.isfinite(values).all() or (values <= 0).any():
        raise AnalysisError(f"alphas: expected a non-empty list of positive numbers, found {alphas!r}")
    return values


def linear_predictivity(model: xr.DataArray, biology: xr.DataArray, by: str = "stimulus_id", *, n_folds: int = 10,
                        alphas: Any = ALPHAS, seed: int = 0, ceiling: bool = True,
                        n_splits: int = 10) -> xr.Dataset:
    """How well each biological unit's condition means are predicted by a ridge readout of the model.

    Parameters
    ----------
    model : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        The model's responses (the regressors); every condition of ``biology`` must be among its
        conditions. May be dask-backed.
    biology : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        The biological responses (the targets), e.g. spike counts in a window.
    by : str, default "stimulus_id"
        The ``presentation`` coordinate whose values are the conditions (the samples).
    n_folds : int, default 10
        Number of K-fold folds over conditions; each fold must hold at least 3 conditions.
    alphas : sequence of float, default :data:`ALPHAS`
        Ridge penalties ``RidgeCV`` chooses from (per biological unit, per fold).
    seed : int, default 0
        Seed of the fold assignment and of the split halves of the ceiling.
    ceiling : bool, default True
        Compute the split-half reliability ceiling (needs 2 presentations of every condition
        in ``biology``); with False, ``ceiling`` and ``r_ceiled`` are left out.
    n_splits : int, default 10
        Random split halves averaged in the ceiling.

    Returns
    -------
    xarray.Dataset, dims (neuroid[, fold])
        Indexed by ``biology``'s ``neuroid`` with every one of its coordinates
        (``neuroid_id``, ``region``, ...): ``r`` (mean over folds of the held-out Pearson r),
        ``r_fold`` (fold, neuroid), ``alpha`` (fold, neuroid: the penalty chosen), and with
        ``ceiling``: ``ceiling`` (split-half reliability) and ``r_ceiled`` (r / ceiling; NaN
        where the ceiling is not positive). A biological unit that is constant over the
        conditions (silent) gets NaN everywhere and is left out of the medians. ``attrs``: ``analysis``, ``by``, ``n_folds``,
        ``alphas``, ``seed``, ``n_conditions``, ``n_model_units``, ``regression``,
        ``median_r``, ``median_r_ceiled``, ``n_units_nan``, ``long_name``, ``units``.

    Raises
    ------
    neurorecord.errors.AnalysisError
        Wrong dims, unknown ``by``, conditions of ``biology`` missing from ``model``, too few
        conditions for ``n_folds``, bad ``alphas``, ``seed`` or ``n_splits``; a condition with
        one presentation when ``ceiling`` is True.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> features = rng.normal(size=(60, 20))
    >>> ids = np.array([f"s{i:02d}" for i in range(60)])
    >>> model = xr.DataArray(features, dims=("presentation", "neuroid"),
    ...                      coords={"stimulus_id": ("presentation", ids)})
    >>> signal = features @ rng.normal(size=(20, 3))
    >>> trials = np.concatenate([signal + rng.normal(scale=0.5, size=signal.shape) for _ in range(2)])
    >>> biology = xr.DataArray(trials, dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", np.tile(ids, 2)), "neuroid_id": ("neuroid", ["a", "b", "c"])})
    >>> result = linear_predictivity(model, biology, n_folds=5)
    >>> (result["r"] > 0.9).values, result["r"].dims
    (array([ True,  True,  True]), ('neuroid',))
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_folds = check_scalar("n_folds", n_folds, int, low=2, error=AnalysisError)
    alphas = _check_alphas(alphas)
    seed = check_seed("seed", seed, error=AnalysisError)
    n_splits = check_scalar("n_splits", n_splits, int, low=1, error=AnalysisError)
    if not isinstance(ceiling, (bool, np.bool_)):
        raise AnalysisError(f"ceiling: expected True or False, found {ceiling!r}")
    bio = condition_means(biology, by, min_conditions=3)
    x, y, levels = align_conditions(condition_means(model, by), bio)
    n_cond = len(levels)
    if n_cond < 3 * n_folds:
        raise AnalysisError(f"n_folds: expected at most {n_cond // 3} folds for {n_cond} conditions (3 or more "
                            f"conditions per fold), found {n_folds}")
    reliability = split_half_reliability(biology, by, n_splits=n_splits, seed=seed) if ceiling else None

    r_fold = np.empty((n_folds, y.shape[1]))
    alpha = np.empty((n_folds, y.shape[1]))
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (train, test) in enumerate(folds.split(x)):
        fit = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas, alpha_per_target=True)).fit(x[train], y[train])
        r_fold[k] = pearson_columns(y[test], fit.predict(x[test]))
        alpha[k] = np.broadcast_to(fit[-1].alpha_, (y.shape[1],))
    silent = np.ptp(y, axis=0) == 0
    r_fold[:, silent] = np.nan
    r = r_fold.mean(axis=0)
    variables: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        "r": (("neuroid",), r), "r_fold": (("fold", "neuroid"), r_fold), "alpha": (("fold", "neuroid"), alpha)}
    attrs: dict[str, Any] = {
        "analysis": "linear_predictivity", "by": by, "n_folds": n_folds, "alphas": alphas.tolist(), "seed": seed,
        "n_conditions": n_cond, "n_model_units": x.shape[1],
        "regression": "StandardScaler + RidgeCV(alpha_per_target=True, efficient leave-one-out) per fold; "
                      "KFold(shuffle=True) over conditions; Pearson r per fold, mean over folds",
        "median_r": float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan"),
        "n_units_nan": int((~np.isfinite(r)).sum()),
        "long_name": "held-out Pearson r of the ridge prediction", "units": "1",
    }
    if reliability is not None:
        ceil = reliability["reliability"].values
        with np.errstate(invalid="ignore", divide="ignore"):
            ceiled = np.where(ceil > 0, r / ceil, np.nan)
        variables["ceiling"] = (("neuroid",), ceil)
        variables["r_ceiled"] = (("neuroid",), ceiled)
        attrs["ceiling"] = "split-half reliability over presentations, Spearman-Brown corrected (n_splits={})".format(n_splits)
        attrs["median_r_ceiled"] = float(np.nanmedian(ceiled)) if np.isfinite(ceiled).any() else float("nan")
    return unit_dataset(bio.activity, variables, coords={"fold": ("fold", np.arange(n_folds))}, attrs=attrs)
