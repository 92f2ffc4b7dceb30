"""Per-unit tests (neurorecord.analysis.stats) against scipy / statsmodels / pingouin, unit by unit."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.stats
import xarray as xr
from statsmodels.stats.multitest import multipletests

import neurorecord
from neurorecord.analysis import _units, stats
from neurorecord.analysis._units import AnalysisError

RTOL = 1e-10


def make_activity(n_presentations: int, n_units: int, n_levels: int, kind: str, seed: int = 0,
                  dtype=np.float32, by: str = "label") -> xr.DataArray:
    """Random responses with unequal group sizes, a constant unit (0), a unit constant within
    each condition (1), a strongly selective unit (2), and two regions."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(n_levels, size=n_presentations, p=np.arange(1, n_levels + 1) / (n_levels * (n_levels + 1) / 2))
    codes[:n_levels] = np.arange(n_levels)  # every level present
    if kind == "normal":
        x = rng.normal(size=(n_presentations, n_units))
    elif kind == "counts":  # spike counts: integers, many ties
        x = rng.poisson(rng.uniform(0.5, 4.0, size=n_units), size=(n_presentations, n_units)).astype(float)
    elif kind == "relu":  # rectified activations: a tie at zero plus continuous values
        x = np.maximum(rng.normal(size=(n_presentations, n_units)), 0.0)
    elif kind == "offset":  # large mean, small spread: needs the centring
        x = 1e4 + rng.normal(size=(n_presentations, n_units))
    elif kind == "sorted":  # presentations in condition order, strong condition effects on a large mean
        codes = np.sort(codes)
        x = 1e5 + 30.0 * codes[:, None] * rng.normal(size=n_units) + rng.normal(size=(n_presentations, n_units))
    else:
        raise ValueError(kind)
    x[:, 0] = 3.0
    x[:, 1] = 2.0 * codes
    x[:, 2] += 3.0 * (codes == n_levels - 1)
    x = x.astype(dtype)
    regions = ["v1"] * (n_units // 2) + ["v2"] * (n_units - n_units // 2)
    return xr.DataArray(
        x,
        dims=("presentation", "neuroid"),
        coords={
            "stimulus_id": ("presentation", [f"s{i:04d}" for i in range(n_presentations)]),
            by: ("presentation", np.array([f"c{c}" for c in codes]) if by == "label" else codes),
            "repetition": ("presentation", np.zeros(n_presentations, dtype=int)),
            "neuroid_id": ("neuroid", [f"{r}.{i}" for i, r in enumerate(regions)]),
            "region": ("neuroid", regions),
        },
        attrs={"units": "a.u."},
    )


CASES = {
    "normal-float32": dict(n_presentations=120, n_units=40, n_levels=4, kind="normal"),
    "counts-float64": dict(n_presentations=90, n_units=30, n_levels=3, kind="counts", dtype=np.float64),
    "counts-float32-wide": dict(n_presentations=60, n_units=150, n_levels=5, kind="counts"),
    "relu": dict(n_presentations=80, n_units=25, n_levels=6, kind="relu", dtype=np.float64),
    "offset-float64": dict(n_presentations=70, n_units=12, n_levels=3, kind="offset", dtype=np.float64),
    "sorted-selective": dict(n_presentations=90, n_units=12, n_levels=4, kind="sorted", dtype=np.float64),
    "two-groups": dict(n_presentations=31, n_units=9, n_levels=2, kind="normal", dtype=np.float64),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> xr.DataArray:
    return make_activity(**CASES[request.param], seed=len(request.param))


def groups_of(activity: xr.DataArray, by: str = "label"):
    labels = activity[by].values
    levels = np.unique(labels)
    x = activity.values.astype(np.float64)
    return x, labels, levels


def close(actual, expected, rtol=RTOL, atol=0.0) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def reference(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------- against scipy


def test_anova_matches_f_oneway(case):
    result = stats.anova(case, "label")
    x, labels, levels = groups_of(case)
    ref = np.array([reference(scipy.stats.f_oneway, *[x[labels == g, j] for g in levels]) for j in range(x.shape[1])])
    close(result["F"].values, ref[:, 0])
    close(result["p"].values, ref[:, 1], atol=1e-300)
    assert np.isnan(result["F"].values[0]) and np.isnan(result["p"].values[0])  # constant unit
    assert result["F"].values[1] == np.inf and result["p"].values[1] == 0.0  # constant within conditions
    assert int(result["df_between"]) == len(levels) - 1 and int(result["df_within"]) == x.shape[0] - len(levels)


def test_kruskal_matches_scipy(case):
    result = stats.kruskal(case, "label")
    x, labels, levels = groups_of(case)
    ref = np.array([reference(scipy.stats.kruskal, *[x[labels == g, j] for g in levels]) for j in range(x.shape[1])])
    close(result["H"].values, ref[:, 0])
    close(result["p"].values, ref[:, 1], atol=1e-300)
    assert np.isnan(result["H"].values[0]) and np.isnan(result["p"].values[0])  # all identical


def test_ttest_ovr_matches_ttest_ind(case):
    result = stats.ttest_ovr(case, "label")
    x, labels, levels = groups_of(case)
    assert result["t"].dims == ("label", "neuroid")
    assert result["label"].values.tolist() == levels.tolist()
    for i, g in enumerate(levels):
        ref = np.array([reference(scipy.stats.ttest_ind, x[labels == g, j], x[labels != g, j], equal_var=False)[:2]
                        for j in range(x.shape[1])])
        # t near 0 is rounding noise around an exact 0 (equal means): compare absolutely there
        close(result["t"].values[i], ref[:, 0], atol=1e-9)
        close(result["p"].values[i], ref[:, 1], atol=1e-12)


def test_mannwhitney_ovr_matches_scipy(case):
    result = stats.mannwhitney_ovr(case, "label")
    x, labels, levels = groups_of(case)
    assert result["U"].dims == ("label", "neuroid")
    for i, g in enumerate(levels):
        ref = np.array([reference(scipy.stats.mannwhitneyu, x[labels == g, j], x[labels != g, j],
                                  method="asymptotic", use_continuity=True)[:2] for j in range(x.shape[1])])
        close(result["U"].values[i], ref[:, 0])
        close(result["p"].values[i], ref[:, 1], atol=1e-300)


def test_rank_sums_match_rankdata():
    rng = np.random.default_rng(5)
    n, u, k = 57, 150, 4  # more units than one slice of the ranking
    codes = rng.integers(0, k, size=n)
    values = rng.poisson(1.5, size=(n, u)).astype(np.float64) - 1.0
    values[:, 3] = rng.normal(size=n)  # float64 values, not float32: the argsort path
    values[::2, 4] = -0.0  # -0.0 ties with 0.0
    values[1::2, 4] = 0.0
    values[7, 5], values[9, 5] = np.inf, -np.inf
    values[3, 70] = np.nan
    values[:, 80] = 1e-300  # float64 only; all tied
    values[:, 90] = rng.normal(size=n).astype(np.float32)  # float32 values, no ties
    sums, tie_term, has_nan = stats.rank_sums(values, codes, k)
    for j in range(u):
        if j == 70:
            continue
        ranks = scipy.stats.rankdata(values[:, j])
        expected = [ranks[codes == g].sum() for g in range(k)]
        np.testing.assert_array_equal(sums[:, j], expected, err_msg=f"column {j}")
        _, t = np.unique(values[:, j], return_counts=True)
        assert tie_term[j] == (t**3 - t).sum(), j
    assert has_nan.tolist() == [j == 70 for j in range(u)]
    # integers only (spike counts, negatives, -0.0, a wide range): ranked by counting, not sorting
    counts = rng.poisson(2.0, size=(n, u)).astype(np.float64) - 1.0
    counts[::3, 6] = -0.0
    counts[:, 7] = rng.integers(-5000, 5000, size=n)  # range too wide to count: sorted
    sums, tie_term, has_nan = stats.rank_sums(counts, codes, k)
    for j in range(u):
        ranks = scipy.stats.rankdata(counts[:, j])
        np.testing.assert_array_equal(sums[:, j], [ranks[codes == g].sum() for g in range(k)], err_msg=f"column {j}")
        _, t = np.unique(counts[:, j], return_counts=True)
        assert tie_term[j] == (t**3 - t).sum(), j
    assert not has_nan.any()
    # the same with the float32 promise, on float32 data
    values32 = values[:, 5:].astype(np.float32).astype(np.float64)
    fast = stats.rank_sums(values32, codes, k, float32_exact=True)
    slow = stats.rank_sums(values32 + 0.0, codes, k)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


# the Rayleigh test (tuning-curve resultant, permutation null) has its own file: test_rayleigh.py


def test_permutation_test_is_the_obvious_loop():
    act = make_activity(40, 7, 3, "normal", seed=3, dtype=np.float64)

    def spread(values, codes, levels):
        means = np.stack([values[codes == i].mean(axis=0) for i in range(len(levels))])
        return means.max(axis=0) - means.min(axis=0)

    result = stats.permutation_test(act, "label", spread, n_permutations=300, seed=11)
    x, labels, levels = groups_of(act)
    codes = np.searchsorted(levels, labels)
    rng = np.random.default_rng(11)
    observed = spread(x, codes, levels)
    exceed = np.zeros(x.shape[1])
    for _ in range(300):
        exceed += spread(x, rng.permutation(codes), levels) >= observed * (1 - 100 * np.finfo(float).eps)
    np.testing.assert_array_equal(result["observed"].values, observed)
    np.testing.assert_array_equal(result["p"].values, (1 + exceed) / 301)
    assert result.attrs["n_permutations"] == 300 and result.attrs["seed"] == 11
    assert result.attrs["statistic"].endswith("spread")


def test_permutation_test_agrees_with_scipy():
    act = make_activity(36, 4, 3, "normal", seed=8, dtype=np.float64)
    x, labels, levels = groups_of(act)

    def spread(values, codes, levels):
        means = np.stack([values[codes == i].mean(axis=0) for i in range(len(levels))])
        return means.max(axis=0) - means.min(axis=0)

    n = 4000
    result = stats.permutation_test(act, "label", spread, n_permutations=n, seed=0)
    for j in (2, 3):
        samples = [x[labels == g, j] for g in levels]

        def statistic(*groups):
            values = np.concatenate(groups)[:, None]
            codes = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
            return spread(values, codes, levels)[0]

        ref = scipy.stats.permutation_test(samples, statistic, permutation_type="independent", vectorized=False,
                                           n_resamples=n, alternative="greater", random_state=1)
        # two Monte Carlo estimates of the same p: their difference has sd <= sqrt(2 * 0.25 / n) = 0.011
        assert abs(result["p"].values[j] - ref.pvalue) < 0.045
        assert result["observed"].values[j] == pytest.approx(ref.statistic, rel=1e-12)
    assert result["p"].values[2] < 0.01  # the selective unit


def test_permutation_test_takes_an_index_of_any_unit_count():
    act = make_activity(30, 5, 3, "normal", seed=2)
    with pytest.raises(AnalysisError, match=r"statistic: expected an array of shape \(n_units,\) = \(5,\)"):
        stats.permutation_test(act, "label", lambda v, c, lv: v.mean(), n_permutations=5)
    with pytest.raises(AnalysisError, match="statistic: expected a function"):
        stats.permutation_test(act, "label", "csi", n_permutations=5)
    with pytest.raises(AnalysisError, match="n_permutations: expected an integer >= 1, found 0"):
        stats.permutation_test(act, "label", lambda v, c, lv: v.mean(axis=0), n_permutations=0)


# ----------------------------------------------------------------------------- FDR


@pytest.mark.parametrize("correction", ["fdr_bh", "bonferroni"])
def test_q_is_multipletests_per_region(correction):
    act = make_activity(60, 20, 3, "normal", seed=4)
    for test in (stats.anova, stats.kruskal, stats.ttest_ovr, stats.mannwhitney_ovr):
        result = test(act, "label", correction=correction)
        regions = act["region"].values
        for region in ("v1", "v2"):
            cols = regions == region
            p = result["p"].values[..., cols]
            ok = ~np.isnan(p)
            expected = np.full(p.shape, np.nan)
            expected[ok] = multipletests(p[ok], method=correction)[1]
            np.testing.assert_array_equal(result["q"].values[..., cols], expected)
        assert result.attrs["correction"] == correction
        n_tests = 10 * (3 if test in (stats.ttest_ovr, stats.mannwhitney_ovr) else 1)
        assert result.attrs["family"].startswith(f"{correction} over the {n_tests} ")
        assert "region v1" in result.attrs["family"] and "region v2" in result.attrs["family"]


# ----------------------------------------------------------------------------- labels, attrs, dask


ALL_TESTS = {
    "anova": lambda a: stats.anova(a, "label"),
    "kruskal": lambda a: stats.kruskal(a, "label"),
    "ttest_ovr": lambda a: stats.ttest_ovr(a, "label"),
    "mannwhitney_ovr": lambda a: stats.mannwhitney_ovr(a, "label", correction="bonferroni"),
    "rayleigh": lambda a: stats.rayleigh(abs(a), "angle", period=180, n_permutations=50, seed=2),
    "permutation_test": lambda a: stats.permutation_test(
        a, "label", lambda v, c, lv: np.abs(v[c == 0].mean(axis=0) - v.mean(axis=0)), n_permutations=20, seed=3),
}


@pytest.fixture(scope="module")
def small() -> xr.DataArray:
    act = make_activity(50, 23, 4, "counts", seed=9)
    return act.assign_coords(angle=("presentation", (np.arange(50) % 6) * 30.0))


@pytest.mark.parametrize("name", list(ALL_TESTS))
def test_dask_gives_the_numpy_result(name, small, monkeypatch):
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * 50 * 5)  # blocks of 5 units: several blocks
    expected = ALL_TESTS[name](small)
    lazy = small.copy(data=da.from_array(small.values, chunks=(16, 23)))  # chunked along presentation
    result = ALL_TESTS[name](lazy)
    xr.testing.assert_identical(result, expected)
    unblocked = ALL_TESTS[name](small.copy())
    monkeypatch.setattr(_units, "BLOCK_BYTES", 64 * 2**20)
    xr.testing.assert_allclose(ALL_TESTS[name](small), unblocked, rtol=1e-12)


@pytest.mark.parametrize("name", list(ALL_TESTS))
def test_labels_and_attrs_survive(name, small):
    result = ALL_TESTS[name](small)
    assert result["neuroid_id"].values.tolist() == small["neuroid_id"].values.tolist()
    assert result["region"].values.tolist() == small["region"].values.tolist()
    by = result.attrs["by"]
    assert result.attrs["levels"] == np.unique(small[by].values).tolist()
    assert result.attrs["n_per_level"] == np.unique(small[by].values, return_counts=True)[1].tolist()
    assert result.attrs["activity_units"] == "a.u."
    assert {"test", "reference", "correction", "family"} <= set(result.attrs)
    assert result["q"].shape == result["p"].shape
    assert np.all((result["q"] >= result["p"]) | np.isnan(result["p"]))


def test_time_bins_are_averaged(small):
    binned = xr.concat([small, small * 3], dim="time_bin").transpose("presentation", "neuroid", "time_bin")
    xr.testing.assert_allclose(stats.anova(binned, "label"), stats.anova(small * 2, "label"))


# ----------------------------------------------------------------------------- errors


def test_unknown_by_lists_the_coordinates(small):
    with pytest.raises(AnalysisError, match=r"by: 'lable' is not a coordinate on 'presentation'.*label.*"
                                            r"presentation coordinates: angle, label, repetition, stimulus_id"):
        stats.anova(small, "lable")


@pytest.mark.parametrize("name", list(ALL_TESTS))
def test_wrong_dims_are_refused(name, small):
    with pytest.raises(AnalysisError, match="activity: expected dims 'presentation' and 'neuroid'"):
        ALL_TESTS[name](small.rename(neuroid="unit"))


def test_bad_arguments(small):
    with pytest.raises(AnalysisError, match="correction: expected one of 'fdr_bh', 'bonferroni', found 'holm'"):
        stats.kruskal(small, "label", correction="holm")
    with pytest.raises(AnalysisError, match="by: coordinate 'repetition' has 1 distinct value"):
        stats.anova(small, "repetition")
    with pytest.raises(AnalysisError, match=r"by: expected angles in degrees \(numbers\) for the rayleigh test, found "
                                            r"coordinate 'label' with values such as 'c0'"):
        stats.rayleigh(small, "label", period=180)
    with pytest.raises(AnalysisError, match=r"period: expected a number > 0, found -1"):
        stats.rayleigh(small, "angle", period=-1)
    with pytest.raises(AnalysisError, match=r"activity: expected non-negative responses \(.*\), found negative values "
                                            r"in 2 of 23 units \(e.g. v1.3, v2.17\)"):
        stats.rayleigh(small.where(~small["neuroid_id"].isin(["v1.3", "v2.17"]), -1.0), "angle", period=180)
    with pytest.raises(AnalysisError, match="expected an xarray.DataArray"):
        stats.ttest_ovr(small.values, "label")


# ----------------------------------------------------------------------------- a model recording


def test_anova_on_a_model_recording(tmp_path):
    tree = neurorecord.run(neurorecord.default_protocol_path(), tmp_path / "rec", quiet=True)
    activity = tree["fc2"]["activity"]
    assert activity.chunks is not None  # dask-backed, as opened from the store
    result = stats.anova(activity, "label")
    x = activity.values.astype(np.float64)
    labels = activity["label"].values
    ref = np.array([reference(scipy.stats.f_oneway, *[x[labels == g, j] for g in np.unique(labels)])
                    for j in range(x.shape[1])])
    close(result["F"].values, ref[:, 0])
    close(result["p"].values, ref[:, 1], atol=1e-300)
    assert result["neuroid_id"].values.tolist() == activity["neuroid_id"].values.tolist()
    assert result.attrs["family"] == f"fdr_bh over the {x.shape[1]} units of region fc2"
