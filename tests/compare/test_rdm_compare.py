"""RDM comparisons: equal to rsatoolbox.rdm.compare, the bootstrap equal to rsatoolbox's pattern
subsampling resample by resample, planted structure and null data, labels and errors."""

from __future__ import annotations

import numpy as np
import pytest
import rsatoolbox
import xarray as xr

from neurorecord.compare import compare_rdms, rdm, upper_triangle
from neurorecord.compare.rdm_compare import RSATOOLBOX_NAMES
from neurorecord.errors import AnalysisError
from tests.compare.synthetic import planted, recording

METHODS = list(RSATOOLBOX_NAMES)


def as_rdm(matrix: np.ndarray, labels=None) -> xr.DataArray:
    labels = labels if labels is not None else [f"s{i:03d}" for i in range(len(matrix))]
    return xr.DataArray(matrix, dims=("condition", "condition_"), coords={"condition": labels, "condition_": labels})


def random_rdm(n: int, rng, ties: bool = False) -> np.ndarray:
    values = rng.integers(0, 5, size=n * (n - 1) // 2).astype(float) if ties else rng.gamma(2.0, size=n * (n - 1) // 2)
    from scipy.spatial.distance import squareform

    return squareform(values)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("method", METHODS)
def test_equals_rsatoolbox(method, ties):
    rng = np.random.default_rng(11)
    a, b = random_rdm(15, rng, ties), random_rdm(15, rng, ties)
    b = 0.5 * a + b  # related, not identical
    ours = compare_rdms(as_rdm(a), as_rdm(b), method)
    reference = rsatoolbox.rdm.compare(rsatoolbox.rdm.RDMs(upper_triangle(a)[None]),
                                       rsatoolbox.rdm.RDMs(upper_triangle(b)[None]), RSATOOLBOX_NAMES[method])
    assert abs(float(ours["similarity"]) - reference[0, 0]) <= 1e-10
    assert ours.attrs["rsatoolbox_method"] == RSATOOLBOX_NAMES[method] and ours.attrs["n_pairs"] == 105


@pytest.mark.parametrize("method", METHODS)
def test_bootstrap_equals_rsatoolbox_on_each_resample(method):
    """Resample k: the same conditions drawn (same generator calls), rsatoolbox's
    ``subsample_pattern`` (NaN for a condition with its own copy) and ``compare``."""
    rng = np.random.default_rng(5)
    a = random_rdm(10, rng)
    b = a + random_rdm(10, rng)
    result = compare_rdms(as_rdm(a), as_rdm(b), method, n_boot=20, seed=3)
    draws = np.random.default_rng(3)
    rsa_a = rsatoolbox.rdm.RDMs(upper_triangle(a)[None])
    rsa_b = rsatoolbox.rdm.RDMs(upper_triangle(b)[None])
    for k in range(20):
        pick = draws.integers(0, 10, 10)
        if len(np.unique(pick)) < 3:
            continue
        reference = rsatoolbox.rdm.compare(rsa_a.subsample_pattern("index", pick), rsa_b.subsample_pattern("index", pick),
                                           RSATOOLBOX_NAMES[method])
        assert abs(result["bootstrap"].values[k] - reference[0, 0]) <= 1e-10, k
    assert result.ci_low <= result.similarity <= result.ci_high
    again = compare_rdms(as_rdm(a), as_rdm(b), method, n_boot=20, seed=3)
    np.testing.assert_array_equal(again["bootstrap"].values, result["bootstrap"].values)
    assert not np.array_equal(compare_rdms(as_rdm(a), as_rdm(b), method, n_boot=20, seed=4)["bootstrap"].values,
                              result["bootstrap"].values)


def test_planted_structure_and_null():
    """A noisy copy of a recording matches its RDM; one without the planted clusters does not."""
    means = planted(15, 40, seed=1)
    first = rdm(recording(means, n_rep=3, noise=0.5, seed=1))
    copy = rdm(recording(means, n_rep=3, noise=0.5, seed=2))
    unrelated = rdm(recording(np.random.default_rng(9).normal(size=(15, 40)), n_rep=3, noise=0.5, seed=3))
    for method in METHODS:
        assert float(compare_rdms(first, copy, method)["similarity"]) > 0.6, method
    for method in ("spearman", "tau_a", "pearson"):
        null = compare_rdms(first, unrelated, method, n_boot=200, seed=0)
        assert abs(float(null["similarity"])) < 0.3, method
        assert null.ci_low < 0 < null.ci_high or abs(float(null.similarity)) < 0.15, method


def test_conditions_are_aligned_by_label():
    rng = np.random.default_rng(2)
    a = random_rdm(6, rng)
    b = a + 0.3 * random_rdm(6, rng)
    labels = [f"s{i:03d}" for i in range(6)]
    order = [3, 0, 5, 1, 4, 2]
    shuffled = as_rdm(b[np.ix_(order, order)], [labels[i] for i in order])
    np.testing.assert_allclose(float(compare_rdms(as_rdm(a), shuffled)["similarity"]),
                               float(compare_rdms(as_rdm(a), as_rdm(b))["similarity"]), atol=1e-15)


def test_error_messages():
    rng = np.random.default_rng(0)
    a = as_rdm(random_rdm(5, rng))
    with pytest.raises(AnalysisError, match="method: expected one of 'spearman', 'tau_a', 'cosine', 'pearson', found 'kendall'"):
        compare_rdms(a, a, "kendall")
    other = as_rdm(random_rdm(5, rng), [f"t{i}" for i in range(5)])
    with pytest.raises(AnalysisError, match="rdm_b: expected the same conditions as rdm_a.*only in rdm_a: s000"):
        compare_rdms(a, other)
    with_nan = a.copy(data=np.where(np.eye(5, k=1) > 0, np.nan, a.values))
    with pytest.raises(AnalysisError, match="rdm_b: expected finite dissimilarities, found NaN for condition"):
        compare_rdms(a, with_nan)
    with pytest.raises(AnalysisError, match=r"rdm_a: expected a square RDM with dims \(condition, condition_\)"):
        compare_rdms(a.rename(condition="x"), a)
    with pytest.raises(AnalysisError, match="n_boot: expected an integer >= 0, found -1"):
        compare_rdms(a, a, n_boot=-1)
    with pytest.raises(AnalysisError, match=r"ci: expected a number in \(0, 1\), found 1.5"):
        compare_rdms(a, a, ci=1.5)
