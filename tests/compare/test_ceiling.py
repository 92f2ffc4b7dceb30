"""Noise ceilings: RDM bounds equal to rsatoolbox's boot_noise_ceiling; split-half reliability
equal to the slow path (pandas group means, scipy's Pearson r, Spearman-Brown); null data."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rsatoolbox
import scipy.stats
from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling

from neurorecord.compare import rdm, rdm_noise_ceiling, split_half_reliability, split_rdms, upper_triangle
from neurorecord.compare.ceiling import split_halves
from neurorecord.compare.rdm_compare import RSATOOLBOX_NAMES
from neurorecord.errors import AnalysisError
from tests.compare.synthetic import planted, recording


@pytest.fixture(scope="module")
def repeated():
    return recording(planted(10, 25, seed=4), n_rep=5, noise=1.5, seed=4)


@pytest.mark.parametrize("method", list(RSATOOLBOX_NAMES))
def test_rdm_noise_ceiling_equals_rsatoolbox(repeated, method):
    rdms = split_rdms(repeated)
    assert rdms.dims == ("split", "condition", "condition_") and rdms.split.values.tolist() == [0, 1, 2, 3, 4]
    assert "repetition" not in rdms.coords and rdms.label.dims == ("condition",)  # labels of the conditions kept
    vectors = np.stack([upper_triangle(rdms.sel(split=k).values) for k in range(5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox warns that a tau ceiling pools ranks; so do we
        lower, upper = boot_noise_ceiling(rsatoolbox.rdm.RDMs(vectors), method=RSATOOLBOX_NAMES[method])
    ours = rdm_noise_ceiling(rdms, method)
    assert abs(float(ours.lower) - lower) <= 1e-10 and abs(float(ours.upper) - upper) <= 1e-10
    assert float(ours.lower) < float(ours.upper)
    assert ours.attrs["n_splits"] == 5 and ours.lower_per_split.dims == ("split",)


def test_each_split_rdm_is_the_rdm_of_that_repetition(repeated):
    rdms = split_rdms(repeated, method="euclidean")
    np.testing.assert_array_equal(rdms.sel(split=2).values,
                                  rdm(repeated.where(repeated.repetition == 2, drop=True), method="euclidean").values)


def test_noise_ceiling_of_null_data_is_near_zero():
    null = recording(np.zeros((12, 30)), n_rep=6, noise=1.0, seed=8)
    ceiling = rdm_noise_ceiling(split_rdms(null), "spearman")
    assert abs(float(ceiling.lower)) < 0.1
    strong = rdm_noise_ceiling(split_rdms(recording(planted(12, 30), n_rep=6, noise=0.2, seed=8)), "spearman")
    assert float(strong.lower) > 0.8


def test_split_half_reliability_equals_the_slow_path():
    """The same random halves (split_halves, same seed), then per split and unit: pandas group
    means of each half and scipy's Pearson r; mean over splits; Spearman-Brown."""
    act = recording(planted(15, 6), n_rep=np.arange(15) % 4 + 2, noise=1.0, seed=3)
    result = split_half_reliability(act, n_splits=4, seed=1)
    codes = np.unique(act.stimulus_id.values, return_inverse=True)[1]
    halves = split_halves(codes, 4, 1)
    assert (np.bincount(codes[halves[0]], minlength=15) == np.bincount(codes) // 2).all()
    frame = pd.DataFrame(act.values).assign(code=codes)
    for unit in range(6):
        rs = []
        for half in halves:
            a = frame[half].groupby("code")[unit].mean()
            b = frame[~half].groupby("code")[unit].mean()
            rs.append(scipy.stats.pearsonr(a.values, b.values).statistic)
        r = np.mean(rs)
        assert abs(result["half_r"].values[unit] - r) <= 1e-12
        assert abs(result["reliability"].values[unit] - 2 * r / (1 + r)) <= 1e-12
    assert result.neuroid_id.values.tolist() == act.neuroid_id.values.tolist()
    assert result.region.values.tolist() == ["v1"] * 6


def test_split_half_reliability_null_signal_silent_units_unequal_counts_and_dask():
    rng = np.random.default_rng(0)
    means = np.concatenate([3.0 * rng.normal(size=(40, 3)), np.zeros((40, 3))], axis=1)
    act = recording(means, n_rep=rng.integers(2, 7, size=40), noise=1.0, seed=5)
    values = act.values.copy()
    values[:, 5] = 0.0  # a silent unit
    act = act.copy(data=values)
    result = split_half_reliability(act, n_splits=20, seed=2)
    assert (result["reliability"].values[:3] > 0.8).all()
    assert (np.abs(result["reliability"].values[3:5]) < 0.35).all()
    assert np.isnan(result["reliability"].values[5])  # documented: a silent unit has no reliability
    lazy = act.copy(data=da.from_array(act.values, chunks=(50, 6)))
    np.testing.assert_array_equal(split_half_reliability(lazy, n_splits=20, seed=2)["half_r"].values,
                                  result["half_r"].values)
    assert not np.array_equal(split_half_reliability(act, n_splits=20, seed=3)["half_r"].values[:5],
                              result["half_r"].values[:5])


def test_errors():
    act = recording(planted(6, 4), n_rep=np.array([1, 2, 2, 2, 2, 2]))
    with pytest.raises(AnalysisError, match="at least 2 presentations of every stimulus_id, found 1 for s000"):
        split_half_reliability(act)
    with pytest.raises(AnalysisError, match="split: repetition=1 has no presentation of stimulus_id s000"):
        split_rdms(act)
    with pytest.raises(AnalysisError, match=r"rdms: expected a DataArray with dims \(split, condition, condition_\)"):
        rdm_noise_ceiling(rdm(act))
    with pytest.raises(AnalysisError, match="n_splits: expected an integer >= 1, found 0"):
        split_half_reliability(act, n_splits=0)
