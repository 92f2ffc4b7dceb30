"""Agreement analyses (neurorecord.analysis.agreement) against sklearn, scipy, hand computations
and simulated nulls (false-positive rates within binomial error)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from neurorecord.analysis import agreement
from neurorecord.analysis.agreement import (
    indicator_correlations,
    partition_agreement,
    predicts_lesion_impact,
    preferred_vs_most_hurt,
    unit_indicators,
)
from neurorecord.analysis.lesion_stats import lesion_effects
from neurorecord.analysis.selectivity import selectivity
from neurorecord.errors import AnalysisError

N_SIMS = 200
ALPHA = 0.05
#: 99.9 % binomial interval of the number of p < 0.05 among N_SIMS null simulations.
FP_LOW, FP_HIGH = scipy.stats.binom.interval(0.999, N_SIMS, ALPHA)


def labelling(values, ids=None) -> xr.DataArray:
    values = np.asarray(values, dtype=np.int64)
    ids = [f"fc2.{i}" for i in range(len(values))] if ids is None else ids
    return xr.DataArray(values, dims="neuroid", coords={"neuroid_id": ("neuroid", ids),
                                                         "region": ("neuroid", ["fc2"] * len(values))})


def profile(values, ids=None, conditions=None) -> xr.DataArray:
    values = np.asarray(values, dtype=np.float64)
    ids = [f"fc2.{i}" for i in range(values.shape[0])] if ids is None else ids
    conditions = np.arange(values.shape[1]) if conditions is None else conditions
    return xr.DataArray(values, dims=("neuroid", "condition"),
                        coords={"neuroid_id": ("neuroid", ids), "condition": conditions})


def random_partition(rng, n, sizes=(0.5, 0.25, 0.15, 0.1)):
    return rng.choice(len(sizes), size=n, p=np.asarray(sizes) / np.sum(sizes))


# --------------------------------------------------------------------------------------------- partition_agreement


@pytest.mark.parametrize("seed", range(5))
def test_partition_values_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    a, b = random_partition(rng, 150), rng.integers(-1, 6, 150)
    b[:40] = a[:40]  # some agreement
    out = partition_agreement(labelling(a), labelling(b), n_perm=20)
    kept = b >= 0
    assert out["value"].sel(measure="ari").item() == pytest.approx(adjusted_rand_score(a[kept], b[kept]), abs=1e-12)
    assert out["value"].sel(measure="ami").item() == pytest.approx(adjusted_mutual_info_score(a[kept], b[kept]), abs=1e-12)
    np.testing.assert_array_equal(out["label_b"].values, b[kept])


@pytest.mark.parametrize("seed", range(5))
def test_null_transforms_equal_sklearn_on_permuted_tables(seed):
    """The null values come from the table's sums through fixed-margin formulas: they must be sklearn's."""
    rng = np.random.default_rng(seed)
    a, b = random_partition(rng, 90), random_partition(rng, 90, (3, 1, 1, 1, 2, 0.2))
    _, ca = np.unique(a, return_inverse=True)
    _, cb = np.unique(b, return_inverse=True)
    t = agreement._Transforms(np.bincount(ca), np.bincount(cb), 90)
    for perm in [cb, rng.permutation(cb), rng.permutation(cb), ca.copy() % cb.max()]:
        if len(np.unique(perm)) != cb.max() + 1:
            continue
        sq, tl = agreement._tables(ca, perm, ca.max() + 1, cb.max() + 1)
        assert t.ari(sq)[0] == pytest.approx(adjusted_rand_score(ca, perm), abs=1e-12)
        assert t.ami(tl)[0] == pytest.approx(adjusted_mutual_info_score(ca, perm), abs=1e-10)


def test_identical_partitions_give_one_and_the_smallest_p():
    a = random_partition(np.random.default_rng(1), 60)
    out = partition_agreement(labelling(a), labelling(a), n_perm=199, seed=3)
    np.testing.assert_allclose(out["value"].values, [1.0, 1.0])
    np.testing.assert_allclose(out["p"].values, [1 / 200, 1 / 200])
    assert (out["null_mean"].values < 0.1).all() and (out["null_std"].values > 0).all()
    np.testing.assert_array_equal(np.diag(out["contingency"].values), np.bincount(a))


def test_label_permutation_invariance():
    rng = np.random.default_rng(2)
    a, b = random_partition(rng, 80), random_partition(rng, 80)
    b[:30] = a[:30]
    renamed = np.array([7, 3, 11, 0])[b]  # a bijection of the cluster names
    one = partition_agreement(labelling(a), labelling(b), n_perm=99, seed=5)
    two = partition_agreement(labelling(a), labelling(renamed), n_perm=99, seed=5)
    np.testing.assert_allclose(one["value"].values, two["value"].values, atol=1e-12)
    np.testing.assert_allclose(one["p"].values, two["p"].values)
    np.testing.assert_allclose(one["null_mean"].values, two["null_mean"].values, atol=1e-12)


def test_independent_partitions_ari_near_zero_and_false_positive_rate():
    rng = np.random.default_rng(11)
    ari, p = [], []
    for _ in range(N_SIMS):
        a = random_partition(rng, 200, (0.6, 0.2, 0.1, 0.07, 0.03))
        b = random_partition(rng, 200, (0.4, 0.4, 0.15, 0.05))
        out = partition_agreement(labelling(a), labelling(b), n_perm=199, seed=int(rng.integers(2**31)))
        ari.append(out["value"].values)
        p.append(out["p"].values)
    ari, p = np.array(ari), np.array(p)
    assert np.abs(ari.mean(axis=0)).max() < 0.005 and np.abs(ari).max() < 0.1
    false_positives = (p < ALPHA).sum(axis=0)  # ari, ami
    print(f"partition_agreement: false-positive rate ari {false_positives[0] / N_SIMS:.3f}, "
          f"ami {false_positives[1] / N_SIMS:.3f} (binomial 99.9 % range {FP_LOW / N_SIMS:.3f}-{FP_HIGH / N_SIMS:.3f})")
    assert ((FP_LOW <= false_positives) & (false_positives <= FP_HIGH)).all(), false_positives
    assert 0.4 < p.mean() < 0.6


def test_set_aside_units_are_dropped_and_counted():
    a = np.array([0, 0, 1, 1, 2, 2, -1, 0])
    b = np.array([1, 1, 0, -1, 2, 2, 0, -1])
    out = partition_agreement(labelling(a), labelling(b), n_perm=9)
    assert out.attrs["n_units"] == 5 and out.attrs["n_dropped"] == 3
    assert out["neuroid_id"].values.tolist() == ["fc2.0", "fc2.1", "fc2.2", "fc2.4", "fc2.5"]
    kept = (a >= 0) & (b >= 0)
    assert out["value"].sel(measure="ari").item() == pytest.approx(adjusted_rand_score(a[kept], b[kept]))
    assert out["contingency"].values.sum() == 5


def test_alignment_on_neuroid_id():
    rng = np.random.default_rng(4)
    a, b = random_partition(rng, 50), random_partition(rng, 50)
    b[:25] = a[:25]
    order = rng.permutation(50)
    ids = np.array([f"fc2.{i}" for i in range(50)])
    aligned = partition_agreement(labelling(a), labelling(b), n_perm=99)
    shuffled = labelling(np.r_[b[order], 3], list(ids[order]) + ["fc2.99"])  # one unit only in b
    out = partition_agreement(labelling(a), shuffled, n_perm=99)
    np.testing.assert_allclose(out["value"].values, aligned["value"].values)
    np.testing.assert_allclose(out["p"].values, aligned["p"].values)
    assert out.attrs["n_unmatched_b"] == 1 and out.attrs["n_unmatched_a"] == 0
    assert out["neuroid_id"].values.tolist() == ids.tolist()


# --------------------------------------------------------------------------------------------- preferred vs most hurt


def test_planted_match():
    rng = np.random.default_rng(5)
    response = rng.normal(size=(60, 6))
    preferred = response.argmax(axis=1)
    lesion = rng.uniform(-1, 0, size=(60, 6))
    lesion[np.arange(60), preferred] = -5.0
    out = preferred_vs_most_hurt(profile(response), profile(lesion), n_perm=199)
    assert out["fraction_match"].item() == 1.0 and out["p"].item() == pytest.approx(1 / 200)
    freq = np.bincount(preferred, minlength=6) / 60
    assert out["chance"].item() == pytest.approx((freq * freq).sum())  # no ties: sum_k f_pref f_hurt
    np.testing.assert_array_equal(out["preferred"].values, preferred)


def test_ties_rule_and_chance_by_hand():
    response = [[3, 3, 0], [0, 1, 0], [1, 0, 0], [0, 0, 2]]
    lesion = [[0, -2, 0], [-1, -1, 0], [-4, 0, 0], [-1, 0, 0]]
    out = preferred_vs_most_hurt(profile(response), profile(lesion), n_perm=49)
    np.testing.assert_array_equal(out["match"].values, [True, True, True, False])  # u0: tied max {0, 1} meets {1}
    np.testing.assert_array_equal(out["preferred"].values, [0, 1, 0, 2])           # the first tied one
    np.testing.assert_array_equal(out["n_tied_most_hurt"].values, [1, 2, 1, 1])
    pref = np.array(response) >= np.max(response, axis=1, keepdims=True)
    hurt = np.array(lesion) <= np.min(lesion, axis=1, keepdims=True)
    meets = (pref.astype(int) @ hurt.T.astype(int)) > 0
    assert out["chance"].item() == pytest.approx(meets.mean())


def test_preferred_vs_most_hurt_false_positive_rate_with_imbalanced_marginals():
    """Independent profiles whose preferred and most-hurt conditions are both mostly condition 0
    (chance far above 1/K) and quantised lesion changes (ties): p must stay calibrated."""
    rng = np.random.default_rng(6)
    bias = np.array([1.5, 0.6, 0.3, 0.0, 0.0])
    p, excess, chance = [], [], []
    for _ in range(N_SIMS):
        response = rng.normal(size=(120, 5)) + bias
        lesion = np.round(rng.normal(size=(120, 5)) - bias) * 5.0
        out = preferred_vs_most_hurt(profile(response), profile(lesion), n_perm=199, seed=int(rng.integers(2**31)))
        p.append(out["p"].item())
        chance.append(out["chance"].item())
        excess.append(out["fraction_match"].item() - out["chance"].item())
    p = np.array(p)
    false_positives = int((p < ALPHA).sum())
    print(f"preferred_vs_most_hurt: false-positive rate {false_positives / N_SIMS:.3f} "
          f"(binomial 99.9 % range {FP_LOW / N_SIMS:.3f}-{FP_HIGH / N_SIMS:.3f}), mean chance {np.mean(chance):.3f}")
    assert np.mean(chance) > 0.4  # far above 1 / K = 0.2: a test against 1 / K would reject nearly always
    assert FP_LOW <= false_positives <= FP_HIGH
    assert abs(np.mean(excess)) < 0.01
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.001


def test_excluded_units_and_condition_alignment():
    response = profile([[1, 5, 0], [2, 2, 2], [0, 1, 9], [4, 0, 0], [np.nan, 1, 0], [0, 3, 1]], conditions=[3, 7, 9])
    classes = ["overall", "9", "7", "3"]  # another order, and the pooled column
    lesion = np.array([[-2, 0, -3, 0], [-1, -1, 0, 0], [-4, -5, 0, 0], [0, 0, 0, 0], [-1, -1, 0, 0], [-1, 0, 0, -1]])
    ids = [f"fc2.{i}" for i in [5, 4, 3, 2, 1, 0]]  # the units in reverse order
    out = preferred_vs_most_hurt(response, profile(lesion[::-1], ids, classes), n_perm=19)
    assert (out.attrs["n_flat_response"], out.attrs["n_no_effect"], out.attrs["n_missing"]) == (1, 1, 1)
    assert out.attrs["conditions_dropped"] == ["overall"] and out.attrs["conditions"] == [3, 7, 9]
    assert out["neuroid_id"].values.tolist() == ["fc2.0", "fc2.2", "fc2.5"]
    np.testing.assert_array_equal(out["most_hurt"].values, [7, 9, 3])
    np.testing.assert_array_equal(out["match"].values, [True, True, False])


# --------------------------------------------------------------------------------------------- indicators


@pytest.fixture(scope="module")
def recording():
    rng = np.random.default_rng(7)
    n_units, labels = 14, np.repeat(np.arange(4), 8)
    gain = rng.gamma(2.0, 1.0, size=(4, n_units)) * (rng.random((4, n_units)) < 0.5)
    values = gain[labels] + rng.gamma(1.0, 0.5, size=(len(labels), n_units))
    values[:, 3] = 0.0  # a silent unit
    ids = [f"fc2.{i}" for i in range(n_units)]
    activity = xr.DataArray(values, dims=("presentation", "neuroid"), attrs={"units": "a.u."},
                            coords={"label": ("presentation", labels), "neuroid_id": ("neuroid", ids),
                                    "region": ("neuroid", ["fc2"] * n_units)})
    stim_labels = rng.integers(0, 4, 200)
    intact = rng.random(200) < 0.9
    names = ids[2:] + ["fc2:group-1"]  # units 0, 1 not lesioned; one group lesion
    correct = intact & (rng.random((len(names), 200)) < rng.uniform(0.7, 1.0, (len(names), 1)))
    effects = lesion_effects(correct, intact, stim_labels, names, n_boot=0)
    effects["loss"] = ("lesion", rng.uniform(0.3, 0.6, len(names)))
    effects["loss_intact"] = 0.3
    return activity, effects


def test_unit_indicators_match_selectivity_and_keep_labels(recording):
    activity, effects = recording
    ind = unit_indicators(activity, effects)
    assert ind["neuroid_id"].values.tolist() == [f"fc2.{i}" for i in range(2, 14)]
    assert (ind["region"].values == "fc2").all()
    assert (ind.attrs["n_activity_only"], ind.attrs["n_lesions_unmatched"]) == (2, 1)
    sub = activity.isel(neuroid=slice(2, None))
    np.testing.assert_allclose(ind["csi"], selectivity(sub, "label", "csi")["csi"], equal_nan=True)
    np.testing.assert_allclose(ind["magnitude"], selectivity(activity, "label", "magnitude")["magnitude"][2:])
    ls = selectivity(sub, "label", "lifetime_sparseness")["lifetime_sparseness"]
    np.testing.assert_allclose(ind["lifetime_sparseness"], ls, equal_nan=True)
    dprime = selectivity(sub, "label", "dprime")["dprime"]
    np.testing.assert_allclose(ind["dprime"].values[1:], dprime.max("label").values[1:])
    assert np.isnan(ind["dprime"].values[1]) and np.isnan(ind["csi"].values[1])  # fc2.3 is silent
    delta = effects["delta_accuracy"].isel(lesion=slice(0, 12))
    np.testing.assert_allclose(ind["lesion_impact"], -delta.sel({"class": "overall"}).values)
    np.testing.assert_allclose(ind["max_class_impact"], -delta.drop_sel({"class": "overall"}).min("class").values)
    np.testing.assert_allclose(ind["loss_change"], effects["loss"].values[:12] - 0.3)
    assert all({"units", "long_name"} <= set(ind[v].attrs) for v in ind.data_vars)
    assert ind["lesion_impact"].attrs["units"] == "percentage points" and ind["magnitude"].attrs["units"] == "a.u."


def _indicators(rng, n, rho=0.6):
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
    third = rng.gamma(1.0, size=n)
    return xr.Dataset({"csi": ("neuroid", z[:, 0]), "lesion_impact": ("neuroid", np.exp(z[:, 1])),
                       "magnitude": ("neuroid", third), "member": ("neuroid", rng.random(n) < 0.5)})


def test_indicator_correlations_equal_scipy_with_nans_dropped_pairwise():
    rng = np.random.default_rng(8)
    ind = _indicators(rng, 80)
    ind["csi"][[1, 5, 9]] = np.nan
    ind["magnitude"][[5, 20]] = np.nan
    out = indicator_correlations(ind, n_boot=50)
    assert out["indicator"].values.tolist() == ["csi", "lesion_impact", "magnitude"]  # bool 'member' left out
    for x in out["indicator"].values:
        for y in out["indicator2"].values:
            ok = np.isfinite(ind[x].values) & np.isfinite(ind[y].values)
            s = scipy.stats.spearmanr(ind[x].values[ok], ind[y].values[ok])
            r = scipy.stats.pearsonr(ind[x].values[ok], ind[y].values[ok])
            cell = out.sel(indicator=x, indicator2=y)
            np.testing.assert_allclose([cell["spearman"], cell["spearman_p"], cell["pearson"], cell["pearson_p"]],
                                       [s.statistic, s.pvalue, r.statistic, r.pvalue], rtol=1e-10, atol=1e-300)
            assert cell["n"].item() == ok.sum() and cell["n_dropped"].item() == 80 - ok.sum()
    assert out["n_dropped"].sel(indicator="csi", indicator2="magnitude").item() == 4


def test_bootstrap_interval_equals_explicit_resampling():
    """The weighted-rank bootstrap gives scipy's correlation of every explicitly resampled set."""
    rng = np.random.default_rng(9)
    ind = _indicators(rng, 40)
    ind["csi"].values[:] = np.round(ind["csi"].values, 1)  # ties
    ind["csi"][[2, 7]] = np.nan
    out = indicator_correlations(ind[["csi", "lesion_impact"]], n_boot=60, seed=4, ci=0.9)
    x, y = ind["csi"].values, ind["lesion_impact"].values
    ok = np.isfinite(x)
    spearman, pearson = [], []
    for _, _, w in agreement._resample_counts(40, 60, 4):
        for row in w:
            units = np.repeat(np.flatnonzero(ok), row[ok].astype(int))
            spearman.append(scipy.stats.spearmanr(x[units], y[units]).statistic)
            pearson.append(scipy.stats.pearsonr(x[units], y[units]).statistic)
    cell = out.sel(indicator="csi", indicator2="lesion_impact")
    np.testing.assert_allclose([cell["spearman_ci_low"], cell["spearman_ci_high"]], np.percentile(spearman, [5, 95]), rtol=1e-9)
    np.testing.assert_allclose([cell["pearson_ci_low"], cell["pearson_ci_high"]], np.percentile(pearson, [5, 95]), rtol=1e-9)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_units():
    widths = []
    for n in (40, 400):
        out = indicator_correlations(_indicators(np.random.default_rng(10), n), n_boot=300, seed=1)
        cell = out.sel(indicator="csi", indicator2="lesion_impact")
        for name in ("spearman", "pearson"):
            assert cell[f"{name}_ci_low"] <= cell[name] <= cell[f"{name}_ci_high"]
        widths.append((cell["spearman_ci_high"] - cell["spearman_ci_low"]).item())
    assert widths[1] < 0.5 * widths[0]


def test_predicts_lesion_impact_recall_by_hand():
    rng = np.random.default_rng(12)
    n = 53
    impact = rng.integers(0, 30, n).astype(float)  # ties
    csi = impact + rng.normal(0, 8, n)
    csi[4] = np.nan
    ind = xr.Dataset({"lesion_impact": ("neuroid", impact), "csi": ("neuroid", csi),
                      "noise": ("neuroid", rng.random(n))})
    out = predicts_lesion_impact(ind, top=0.1, n_perm=1999, seed=2)
    assert out["indicator"].values.tolist() == ["csi", "noise"]
    ok = np.isfinite(csi)
    x, y = csi[ok], impact[ok]
    k = int(np.ceil(0.1 * ok.sum()))  # 52 units -> 6
    top_y = set(sorted(range(len(y)), key=lambda i: (-y[i], i))[:k])
    top_x = set(sorted(range(len(x)), key=lambda i: (-x[i], i))[:k])
    cell = out.sel(indicator="csi")
    assert (cell["k"].item(), cell["n"].item()) == (k, 52)
    assert cell["recall"].item() == len(top_y & top_x) / k and cell["chance"].item() == k / 52
    assert cell["spearman"].item() == pytest.approx(scipy.stats.spearmanr(x, y).statistic)
    exact = scipy.stats.hypergeom.sf(cell["overlap"].item() - 1, 52, k, k)  # a random k-subset's overlap
    assert cell["p"].item() == pytest.approx(exact, abs=0.02)
    assert out.sel(indicator="noise")["null_mean"].item() == pytest.approx(k / 53, abs=0.01)


def test_seed_fixes_the_permutations():
    rng = np.random.default_rng(13)
    a, b = labelling(random_partition(rng, 40)), labelling(random_partition(rng, 40))
    one, two = partition_agreement(a, b, n_perm=99, seed=1), partition_agreement(a, b, n_perm=99, seed=1)
    xr.testing.assert_identical(one, two)
    assert not np.array_equal(one["null_mean"].values, partition_agreement(a, b, n_perm=99, seed=2)["null_mean"].values)


# --------------------------------------------------------------------------------------------- bad input

_IND = xr.Dataset({"lesion_impact": ("neuroid", np.arange(10.0)), "csi": ("neuroid", np.arange(10.0))})
_LAB = labelling([0, 1, 0, 1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: partition_agreement(np.array([0, 1, 0, 1]), _LAB), r"^a: expected an xarray.DataArray"),
        (lambda: partition_agreement(_LAB, _LAB.astype(float)), r"^b: expected integer cluster labels"),
        (lambda: partition_agreement(_LAB, _LAB - 2), r"^b: expected labels >= 0"),
        (lambda: partition_agreement(_LAB, _LAB.drop_vars("neuroid_id")), r"^b: expected a 'neuroid_id' coordinate"),
        (lambda: partition_agreement(_LAB, _LAB, n_perm=0), r"^n_perm: expected an integer >= 1"),
        (lambda: partition_agreement(_LAB, _LAB * 0 - 1), r"^a, b: expected at least 2 units"),
        (lambda: preferred_vs_most_hurt(np.eye(3), profile(np.eye(3))), r"^response: expected an xarray.DataArray"),
        (lambda: preferred_vs_most_hurt(profile(np.eye(3)), profile(np.eye(3)).T.rename(condition="class")),
         r"^lesion: expected dims"),
        (lambda: preferred_vs_most_hurt(profile(np.eye(3)), profile(-np.eye(3)), seed=-1), r"^seed: expected"),
        (lambda: unit_indicators(np.zeros((4, 2)), _IND), r"^effects: expected the Dataset of lesion_effects"),
        (lambda: indicator_correlations(np.zeros((10, 2))), r"^indicators: expected an xarray.Dataset"),
        (lambda: indicator_correlations(_IND[["csi"]]), r"^indicators: expected at least 2"),
        (lambda: indicator_correlations(_IND, ci=1.0), r"^ci: expected a number in \(0, 1\)"),
        (lambda: predicts_lesion_impact(_IND.to_array()), r"^indicators: expected an xarray.Dataset"),
        (lambda: predicts_lesion_impact(_IND, target="lesion_impacts"), r"^target: expected one of .*did you mean"),
        (lambda: predicts_lesion_impact(_IND, top=0.0), r"^top: expected a number in \(0, 1\)"),
        (lambda: predicts_lesion_impact(_IND, top=1.0), r"^top: expected a number in \(0, 1\)"),
        (lambda: predicts_lesion_impact(_IND, top="10%"), r"^top: expected a number"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(AnalysisError, match=match):
        call()


def test_unit_indicators_bad_activity_and_no_common_units(recording):
    activity, effects = recording
    with pytest.raises(AnalysisError, match=r"^activity: expected an xarray.DataArray"):
        unit_indicators(activity.values, effects)
    with pytest.raises(AnalysisError, match=r"^by: 'colour' is not a coordinate"):
        unit_indicators(activity, effects, by="colour")
    renamed = activity.assign_coords(neuroid_id=("neuroid", [f"v1.{i}" for i in range(14)]))
    with pytest.raises(AnalysisError, match=r"^effects: expected lesion names equal to the activity's neuroid_id"):
        unit_indicators(renamed, effects)
