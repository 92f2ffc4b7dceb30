"""Linear predictivity: equal to a per-unit loop over scikit-learn and scipy, planted and null
data, silent units, unequal trial counts, labels and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from neurorecord.compare import ALPHAS, linear_predictivity, split_half_reliability
from neurorecord.errors import AnalysisError
from tests.compare.synthetic import recording


def make_pair(n_cond=60, n_model=30, n_bio=5, noise=0.5, seed=0, n_rep=2, coupled=True):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_cond, n_model))
    model = recording(features, n_rep=1, noise=0.0, seed=seed, region="fc2")
    signal = features @ rng.normal(size=(n_model, n_bio)) / np.sqrt(n_model) if coupled else \
        rng.normal(size=(n_cond, n_bio))
    biology = recording(signal, n_rep=n_rep, noise=noise, seed=seed + 1, region="V1")
    return model, biology


def test_equals_a_per_unit_loop_over_sklearn_and_scipy():
    model, biology = make_pair(n_cond=40, n_bio=3, seed=1)
    result = linear_predictivity(model, biology, n_folds=4, seed=7, ceiling=False)
    x = model.groupby("stimulus_id").mean().values
    y = biology.groupby("stimulus_id").mean().values
    for unit in range(3):
        rs = []
        for k, (train, test) in enumerate(KFold(4, shuffle=True, random_state=7).split(x)):
            scaler = StandardScaler().fit(x[train])
            fit = RidgeCV(alphas=ALPHAS).fit(scaler.transform(x[train]), y[train, unit])
            rs.append(scipy.stats.pearsonr(y[test, unit], fit.predict(scaler.transform(x[test]))).statistic)
            assert result["alpha"].values[k, unit] == fit.alpha_
        np.testing.assert_allclose(result["r_fold"].values[:, unit], rs, rtol=0, atol=1e-8)
        assert abs(result["r"].values[unit] - np.mean(rs)) <= 1e-8
    assert "ceiling" not in result


def test_planted_mapping_is_predicted_and_ceiled():
    model, biology = make_pair(n_cond=80, n_bio=6, noise=0.7, seed=2)
    result = linear_predictivity(model, biology, n_folds=5)
    assert (result["r"].values > 0.5).all() and np.median(result["r"].values) > 0.7
    np.testing.assert_allclose(result["ceiling"].values,
                               split_half_reliability(biology, n_splits=10, seed=0)["reliability"].values)
    np.testing.assert_allclose(result["r_ceiled"].values, result["r"].values / result["ceiling"].values)
    assert 0.8 < result.attrs["median_r_ceiled"] < 1.3
    assert result.dims == {"neuroid": 6, "fold": 5}
    assert result.neuroid_id.values.tolist() == biology.neuroid_id.values.tolist()
    assert result.region.values.tolist() == ["V1"] * 6
    assert result.attrs["n_model_units"] == 30 and result.attrs["n_folds"] == 5 and result.attrs["units"] == "1"


def test_null_data_gives_predictivity_and_ceiling_near_zero():
    model, biology = make_pair(n_cond=90, n_bio=8, noise=1.0, seed=3, coupled=False, n_rep=4)
    unrelated = biology.copy(data=np.random.default_rng(4).normal(size=biology.shape))  # no signal at all
    result = linear_predictivity(model, unrelated, n_folds=5)
    assert abs(result.attrs["median_r"]) < 0.15
    assert np.abs(result["ceiling"].values).max() < 0.5 and abs(np.median(result["ceiling"].values)) < 0.2


def test_silent_unit_unequal_trials_and_subset_of_conditions():
    model, biology = make_pair(n_cond=45, n_bio=4, seed=5, n_rep=3)
    keep = ~((biology.repetition == 2) & (biology.label == 0))  # unequal trial counts (2 or 3)
    biology = biology.isel(presentation=keep.values)
    values = biology.values.copy()
    values[:, 1] = 0.0
    biology = biology.copy(data=values)
    result = linear_predictivity(model, biology, n_folds=5)
    assert np.isnan(result["r"].values[1]) and np.isnan(result["ceiling"].values[1])  # documented NaN
    assert np.isfinite(np.delete(result["r"].values, 1)).all()
    assert result.attrs["n_units_nan"] == 1
    assert result.attrs["median_r"] == pytest.approx(np.median(np.delete(result["r"].values, 1)))
    subset = biology.isel(presentation=np.isin(biology.stimulus_id, model.stimulus_id.values[:30]))
    assert linear_predictivity(model, subset, n_folds=5).attrs["n_conditions"] == 30


def test_errors():
    model, biology = make_pair(n_cond=20, n_bio=2)
    with pytest.raises(AnalysisError, match="n_folds: expected at most 6 folds for 20 conditions"):
        linear_predictivity(model, biology, n_folds=10)
    with pytest.raises(AnalysisError, match="alphas: expected a non-empty list of positive numbers"):
        linear_predictivity(model, biology, n_folds=2, alphas=[0.0, 1.0])
    one = biology.isel(presentation=(biology.repetition == 0).values)
    with pytest.raises(AnalysisError, match="at least 2 presentations of every stimulus_id"):
        linear_predictivity(model, one, n_folds=2)
    assert "ceiling" not in linear_predictivity(model, one, n_folds=2, ceiling=False)
    other = model.assign_coords(stimulus_id=("presentation", [f"x{i}" for i in range(20)]))
    with pytest.raises(AnalysisError, match="model: expected every stimulus_id of biology among its conditions"):
        linear_predictivity(other, biology, n_folds=2)
