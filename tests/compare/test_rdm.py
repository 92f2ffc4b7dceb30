"""RDMs: equal to rsatoolbox's calc_rdm and to scipy's pdist on the same data, unequal trial
counts, silent units, labels, dask, and the error messages."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import rsatoolbox
import xarray as xr
from rsatoolbox.data.noise import prec_from_unbalanced
from scipy.spatial.distance import pdist

from neurorecord.compare import rdm, rdm_from_means, upper_triangle
from neurorecord.errors import AnalysisError
from tests.compare.synthetic import planted, recording


def as_rsatoolbox(activity: xr.DataArray) -> rsatoolbox.data.Dataset:
    return rsatoolbox.data.Dataset(np.asarray(activity.values, dtype=np.float64),
                                   obs_descriptors={c: np.asarray(activity.coords[c].values)
                                                    for c in ("stimulus_id", "repetition")})


def rsa_vector(result, ours: xr.DataArray) -> np.ndarray:
    """rsatoolbox's RDM in our condition order (checked against its pattern descriptor)."""
    labels = [str(v) for v in result.pattern_descriptors["stimulus_id"]]
    order = [labels.index(str(v)) for v in ours.condition.values]
    return upper_triangle(result.get_matrices()[0][np.ix_(order, order)])


@pytest.fixture(scope="module")
def correlated():
    """7 conditions x 12 units, 4 repetitions, correlated noise."""
    rng = np.random.default_rng(3)
    act = recording(planted(7, 12, seed=3), n_rep=4, noise=0.0, seed=3)
    mixing = rng.normal(size=(12, 12))
    return act.copy(data=act.values + 0.5 * rng.normal(size=act.shape) @ mixing)


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_equals_rsatoolbox_and_pdist_with_unequal_trial_counts(method):
    act = recording(planted(9, 15), n_rep=np.array([1, 2, 3, 4, 5, 2, 3, 1, 6]), seed=1)
    ours = rdm(act, method=method)
    reference = rsatoolbox.rdm.calc_rdm(as_rsatoolbox(act), method=method, descriptor="stimulus_id")
    np.testing.assert_allclose(upper_triangle(ours.values), rsa_vector(reference, ours), rtol=0, atol=1e-10)
    means = act.groupby("stimulus_id").mean().sel(stimulus_id=ours.condition.values).values  # slow path: pdist
    slow = pdist(means, "correlation") if method == "correlation" else pdist(means, "sqeuclidean") / means.shape[1]
    np.testing.assert_allclose(upper_triangle(ours.values), slow, rtol=0, atol=1e-12)
    assert np.allclose(ours.values, ours.values.T) and (np.diag(ours.values) == 0).all()
    assert ours.n.values.tolist() == [1, 2, 3, 4, 5, 2, 3, 1, 6]


@pytest.mark.parametrize("noise, reference_method", [("shrinkage", "shrinkage_eye"), ("diag", "diag"), ("identity", None)])
def test_crossnobis_equals_rsatoolbox(correlated, noise, reference_method):
    data = as_rsatoolbox(correlated)
    precision = prec_from_unbalanced(data, "stimulus_id", method=reference_method) if reference_method else None
    with np.errstate(invalid="ignore"):
        reference = rsatoolbox.rdm.calc_rdm(data, method="crossnobis", descriptor="stimulus_id", noise=precision,
                                            cv_descriptor="repetition")
    ours = rdm(correlated, method="crossnobis", noise=noise)
    np.testing.assert_allclose(upper_triangle(ours.values), rsa_vector(reference, ours), rtol=0, atol=1e-10)
    assert ours.attrs["n_folds"] == 4 and ours.attrs["noise_dof"] == 28 - 7 and ours.attrs["noise"] == noise
    if noise == "shrinkage":
        assert 0 < ours.attrs["shrinkage"] < 1


def slow_crossnobis(values, codes, folds, precision):
    """Pair by pair, fold by fold: (train_i - train_j) P (test_i - test_j) / units, over usable folds."""
    n_cond, n_units = codes.max() + 1, values.shape[1]
    out = np.zeros((n_cond, n_cond))
    for i in range(n_cond):
        for j in range(i + 1, n_cond):
            terms = []
            for f in np.unique(folds):
                test, train = folds == f, folds != f
                sets = [values[(codes == c) & s] for s in (train, test) for c in (i, j)]
                if all(len(s) for s in sets):
                    a = sets[0].mean(0) - sets[1].mean(0)
                    b = sets[2].mean(0) - sets[3].mean(0)
                    terms.append(a @ precision @ b / n_units)
            out[i, j] = out[j, i] = np.mean(terms)
    return out


def test_crossnobis_with_unequal_trial_counts_equals_the_slow_path():
    act = recording(planted(6, 8, seed=5), n_rep=np.array([2, 3, 4, 2, 5, 3]), noise=0.7, seed=5)
    ours = rdm(act, method="crossnobis", noise="identity")
    codes = np.unique(act.stimulus_id.values, return_inverse=True)[1]
    slow = slow_crossnobis(act.values, codes, act.repetition.values, np.eye(8))
    np.testing.assert_allclose(ours.values, slow, rtol=0, atol=1e-12)
    assert ours.attrs["n_folds"] == 5


def test_crossnobis_is_unbiased_where_correlation_and_euclidean_are_not():
    """Pure noise: the crossnobis distances scatter around 0; Euclidean ones are all > 0."""
    act = recording(np.zeros((10, 30)), n_rep=6, noise=1.0, seed=7)
    cross = upper_triangle(rdm(act, method="crossnobis").values)
    euclid = upper_triangle(rdm(act, method="euclidean").values)
    assert (euclid > 0).all()
    assert abs(cross.mean()) < 3 * cross.std() / np.sqrt(len(cross)) + 1e-3
    assert (cross < 0).any()


def test_silent_units():
    """A silent unit enters correlation/Euclidean RDMs as rsatoolbox's do (no NaN), and is left
    out of a crossnobis RDM (no residual variance; counted in the attrs)."""
    act = recording(planted(6, 10), n_rep=3, seed=2)
    values = act.values.copy()
    values[:, [2, 7]] = 0.0
    silent = act.copy(data=values)
    for method in ("correlation", "euclidean"):
        ours = rdm(silent, method=method)
        reference = rsatoolbox.rdm.calc_rdm(as_rsatoolbox(silent), method=method, descriptor="stimulus_id")
        np.testing.assert_allclose(upper_triangle(ours.values), rsa_vector(reference, ours), atol=1e-10)
        assert np.isfinite(ours.values).all()
    cross = rdm(silent, method="crossnobis")
    without = rdm(silent.isel(neuroid=[i for i in range(10) if i not in (2, 7)]), method="crossnobis")
    np.testing.assert_allclose(cross.values, without.values, atol=1e-12)
    assert cross.attrs["n_units_dropped"] == 2 and cross.attrs["n_units_used"] == 8


def test_constant_pattern_gives_documented_nan_rows():
    means = planted(5, 6)
    means[1] = 3.0  # condition 1 is the same for every unit: its correlation is undefined
    d = rdm_from_means(means, "correlation")
    assert np.isnan(d[1]).all() and np.isnan(d[:, 1]).all()
    assert np.isfinite(np.delete(np.delete(d, 1, 0), 1, 1)).all()


def test_labels_units_and_by_any_coordinate():
    act = recording(planted(6, 10), n_rep=2, seed=4)
    d = rdm(act)
    assert d.dims == ("condition", "condition_")
    assert d.condition.values.tolist() == sorted(set(act.stimulus_id.values.tolist()))
    assert d.label.values.tolist() == [i % 3 for i in range(6)]  # constant within a stimulus: kept
    assert "repetition" not in d.coords  # varies within a stimulus: not a label of the condition
    assert d.attrs["method"] == "correlation" and d.attrs["units"] == "1" and d.attrs["n_units"] == 10
    assert rdm(act, method="euclidean").attrs["units"] == "(spikes)^2"
    by_label = rdm(act, by="label", method="euclidean")
    assert by_label.condition.values.tolist() == [0, 1, 2] and by_label.n.values.tolist() == [4, 4, 4]


def test_dask_equals_numpy():
    act = recording(planted(8, 40), n_rep=3, seed=6)
    lazy = act.copy(data=da.from_array(act.values, chunks=(5, 40)))
    for method in ("correlation", "euclidean", "crossnobis"):
        np.testing.assert_array_equal(rdm(lazy, method=method).values, rdm(act, method=method).values)


ERRORS = [
    (dict(method="cosine"), r"method: expected one of 'correlation', 'euclidean', 'crossnobis', found 'cosine'"),
    (dict(by="orientation"), r"by: 'orientation' is not a coordinate on 'presentation'.*stimulus_id"),
    (dict(method="crossnobis", cv="session"), r"cv: 'session' is not a coordinate on 'presentation'.*repetition"),
    (dict(method="crossnobis", noise="ledoit"), r"noise: expected one of 'shrinkage', 'diag', 'identity', found 'ledoit'"),
]


@pytest.mark.parametrize("kwargs, message", ERRORS)
def test_error_messages(kwargs, message):
    act = recording(planted(4, 5), n_rep=2)
    with pytest.raises(AnalysisError, match=message):
        rdm(act, **kwargs)


def test_crossnobis_needs_noise_and_folds():
    means = planted(4, 5)
    act = recording(means, n_rep=2, noise=0.0)
    with pytest.raises(AnalysisError, match="crossnobis needs trial-to-trial variability"):
        rdm(act, method="crossnobis")
    one = recording(means, n_rep=1)
    with pytest.raises(AnalysisError, match="cv: crossnobis needs at least 2 values of 'repetition'"):
        rdm(one, method="crossnobis")
    with pytest.raises(AnalysisError, match="activity: expected dims 'presentation' and 'neuroid'"):
        rdm(act.rename(neuroid="unit"))


def test_one_presentation_per_condition_in_any_order():
    """The condition means of single presentations are the rows themselves, reordered by label."""
    act = recording(planted(9, 12), n_rep=1, seed=8)
    order = np.argsort(act.stimulus_id.values)
    for method in ("correlation", "euclidean"):
        slow = pdist(act.values[order], "correlation") if method == "correlation" else \
            pdist(act.values[order], "sqeuclidean") / 12
        np.testing.assert_allclose(upper_triangle(rdm(act, method=method).values), slow, rtol=0, atol=1e-12)


def test_crossnobis_pair_without_a_usable_fold_is_an_error():
    """s000 has one presentation (repetition 0): it is never both left out and left in."""
    act = recording(planted(4, 5), n_rep=np.array([1, 2, 2, 2]), noise=0.5)
    with pytest.raises(AnalysisError, match="cv: conditions 's000' and 's001' of 'stimulus_id' are never both in a "
                                            "left-out fold of 'repetition' and in the rest"):
        rdm(act, method="crossnobis")
