"""Linear CKA: equal to direct slow implementations (feature-space formula; Song et al.'s
unbiased HSIC written as sums over index triples), its invariances, and the recording API."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from neurorecord.compare import cka, linear_cka
from neurorecord.errors import AnalysisError
from tests.compare.synthetic import planted, recording


def slow_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. (2019), eq. in feature space: ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F), centred."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def slow_hsic_unbiased(k: np.ndarray, m: np.ndarray) -> float:
    """Song et al. (2012), Theorem 2, as sums over distinct indices (the U-statistic):
    (n)_2^-1 sum_{i!=j} k_ij m_ij + (n)_4^-1 sum_{i,j,q,r distinct} k_ij m_qr - 2 (n)_3^-1 sum_{i,j,q distinct} k_ij m_iq."""
    n = len(k)
    t1 = sum(k[i, j] * m[i, j] for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    t2 = sum(k[i, j] * m[q, r] for i, j, q, r in itertools.permutations(range(n), 4)) / (n * (n - 1) * (n - 2) * (n - 3))
    t3 = sum(k[i, j] * m[i, q] for i, j, q in itertools.permutations(range(n), 3)) / (n * (n - 1) * (n - 2))
    return t1 + t2 - 2 * t3


def slow_debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean(0)
    y = y - y.mean(0)
    k, m = x @ x.T, y @ y.T
    return slow_hsic_unbiased(k, m) / np.sqrt(slow_hsic_unbiased(k, k) * slow_hsic_unbiased(m, m))


def test_plain_cka_equals_the_feature_space_formula_with_many_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2000))
    y = x[:, :50] @ rng.normal(size=(50, 300)) + rng.normal(size=(30, 300))
    assert abs(linear_cka(x, y) - slow_cka(x, y)) <= 1e-10


def test_debiased_cka_equals_the_u_statistic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 5))
    y = x @ rng.normal(size=(5, 4)) + rng.normal(size=(8, 4))
    assert abs(linear_cka(x, y, debiased=True) - slow_debiased_cka(x, y)) <= 1e-10


def test_invariances_and_identity():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 15))
    y = rng.normal(size=(20, 10)) + x[:, :10]
    rotation = np.linalg.qr(rng.normal(size=(15, 15)))[0]
    for debiased in (False, True):
        assert abs(linear_cka(x, x, debiased) - 1) <= 1e-12
        base = linear_cka(x, y, debiased)
        assert abs(linear_cka(x @ rotation, y, debiased) - base) <= 1e-12
        assert abs(linear_cka(7.5 * x, 0.01 * y, debiased) - base) <= 1e-12
        assert abs(linear_cka(x + 3.0, y - 1.0, debiased) - base) <= 1e-12  # centring


def test_null_data_near_zero_debiased_and_biased_upwards():
    """Unrelated populations with many units: the plain CKA is biased upwards, the debiased one is not."""
    rng = np.random.default_rng(3)
    values = [linear_cka(rng.normal(size=(40, 500)), rng.normal(size=(40, 500)), debiased) for debiased in (False, True)]
    assert values[0] > 0.5 and abs(values[1]) < 0.05


def test_recordings_unequal_trials_silent_units_labels_and_dask():
    means = planted(16, 30, seed=5)
    model = recording(means @ np.random.default_rng(5).normal(size=(30, 60)), n_rep=1, noise=0.0, seed=1)
    biology = recording(means, n_rep=np.arange(16) % 3 + 1, noise=0.3, seed=2)
    values = biology.values.copy()
    values[:, 4] = 0.0  # silent unit: no effect on CKA
    biology = biology.copy(data=values)
    result = cka(model, biology)
    bio_means = biology.groupby("stimulus_id").mean().values
    assert abs(float(result) - slow_cka(model.sortby("stimulus_id").values, bio_means)) <= 1e-10
    assert abs(float(result) - slow_cka(model.sortby("stimulus_id").values, np.delete(bio_means, 4, 1))) <= 1e-10
    assert float(result) > 0.6
    assert result.attrs["n_conditions"] == 16 and result.attrs["n_units_model"] == 60 and result.attrs["units"] == "1"
    lazy = biology.copy(data=da.from_array(biology.values, chunks=(7, 30)))
    assert float(cka(model, lazy, debiased=True)) == float(cka(model, biology, debiased=True))


def test_errors():
    model = recording(planted(6, 5), n_rep=1)
    biology = recording(planted(6, 5), n_rep=2)
    fewer = model.isel(presentation=model.stimulus_id != "s003")
    with pytest.raises(AnalysisError, match="model: expected every stimulus_id of biology among its conditions, found no s003"):
        cka(fewer, biology)
    with pytest.raises(AnalysisError, match="kind: expected one of 'linear', found 'rbf'"):
        cka(model, biology, kind="rbf")
    flat = model.copy(data=np.ones(model.shape))
    with pytest.raises(AnalysisError, match="model: expected responses that vary over the conditions"):
        cka(flat, biology)
    three = biology.isel(presentation=np.isin(biology.stimulus_id, ["s000", "s001", "s002"]))
    with pytest.raises(AnalysisError, match="debiased CKA needs at least 4 conditions, found 3"):
        cka(model, three, debiased=True)
    with pytest.raises(AnalysisError, match="activity: expected an xarray.DataArray"):
        cka(model.values, biology)
    assert isinstance(cka(model, biology), xr.DataArray)
