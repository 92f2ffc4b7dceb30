"""Profiles and their clustering (neurorecord.analysis.profiles) against pandas, scipy and scikit-learn,
on planted population structure and on structure-free controls."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.cluster.hierarchy import dendrogram, fcluster, linkage
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from neurorecord.analysis.lesion_stats import lesion_effects
from neurorecord.analysis.profiles import N_REFS, cluster_profiles, lesion_profiles, response_profiles
from neurorecord.errors import AnalysisError

N_CONDITIONS, N_PER_GROUP = 8, 20


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny k-means fits on a shared machine: OpenMP threads only add contention."""
    with threadpool_limits(1):
        yield


def planted_activity(seed: int, noise: float = 0.5) -> tuple[xr.DataArray, np.ndarray]:
    """3 groups of 20 units tuned to conditions 1, 4 and 7 of 8 (Gaussian bumps) plus trial noise."""
    rng = np.random.default_rng(seed)
    c = np.arange(N_CONDITIONS)
    shapes = 2.0 * np.exp(-0.5 * ((c[None, :] - np.array([[1], [4], [7]])) / 1.2) ** 2)
    truth = np.repeat(np.arange(3), N_PER_GROUP)
    label = np.repeat(c, 10)
    x = shapes[truth][:, label].T + noise * rng.normal(size=(len(label), len(truth)))
    n = len(truth)
    return xr.DataArray(x, dims=("presentation", "neuroid"), coords={
        "label": ("presentation", label), "neuroid_id": ("neuroid", [f"fc2.{i}" for i in range(n)]),
        "region": ("neuroid", ["fc2"] * n), "channel": ("neuroid", np.arange(n))}), truth


@pytest.fixture(scope="module")
def planted() -> tuple[xr.DataArray, np.ndarray]:
    activity, truth = planted_activity(0)
    return response_profiles(activity, "label"), truth


def noise_profiles(seed: int, n: int = 60) -> xr.DataArray:
    x = np.random.default_rng(seed).normal(size=(n, N_CONDITIONS))
    return xr.DataArray(x, dims=("neuroid", "condition"), coords={"neuroid_id": ("neuroid", [f"u{i}" for i in range(n)])})


def zscore_rows(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- response_profiles


def test_response_profiles_match_pandas_groupby():
    rng = np.random.default_rng(4)
    levels = np.array(["cat", "dog", "eel", "fox", "gnu"])
    label = np.repeat(levels, [3, 9, 4, 12, 6])  # unequal trial counts
    rng.shuffle(label)
    x = rng.gamma(2.0, size=(len(label), 7, 3))  # (presentation, neuroid, time_bin)
    x[0, 2, :] = np.nan  # a missing response: skipped, as pandas does
    act = xr.DataArray(x, dims=("presentation", "neuroid", "time_bin"), attrs={"units": "spikes/bin"},
                       coords={"label": ("presentation", label), "neuroid_id": ("neuroid", [f"v1.{i}" for i in range(7)]),
                               "region": ("neuroid", ["v1"] * 7), "depth": ("neuroid", rng.random(7))})
    frame = pd.DataFrame(x.mean(axis=2)).assign(label=label)
    means = frame.groupby("label").mean().to_numpy().T  # (neuroid, condition), sorted labels
    expected = {"none": means, "zscore": zscore_rows(means), "max": means / np.abs(means).max(axis=1, keepdims=True)}
    for normalise, values in expected.items():
        profiles = response_profiles(act, "label", normalise=normalise)
        assert profiles.dims == ("neuroid", "condition")
        np.testing.assert_allclose(profiles.values, values, rtol=1e-12)
        assert profiles["condition"].values.tolist() == levels.tolist()
        assert profiles["n"].values.tolist() == [3, 9, 4, 12, 6]
        assert profiles["neuroid_id"].values.tolist() == act["neuroid_id"].values.tolist()
        np.testing.assert_array_equal(profiles["depth"].values, act["depth"].values)
        assert not profiles["silent"].values.any()
        assert profiles.attrs["units"] == {"none": "a.u.", "zscore": "z", "max": "fraction of max"}[normalise]
        assert profiles.attrs["by"] == "label" and profiles.attrs["normalise"] == normalise
    np.testing.assert_allclose(profiles.values, response_profiles(act.chunk({"presentation": 10}), "label", "max").values)
    np.testing.assert_allclose(response_profiles(act, "label").std("condition").values, 1.0)


def test_silent_units_are_flagged_not_nan_silently():
    act, _ = planted_activity(1)
    act = act.copy()
    act[:, 3] = 0.0  # all-zero unit
    act[:, 8] = 0.1  # constant unit: its condition means differ only by rounding
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = response_profiles(act, "label")
        raw = response_profiles(act, "label", normalise="none")
        result = cluster_profiles(z, k=3, n_boot=5)
    silent = np.zeros(act.sizes["neuroid"], bool)
    silent[[3, 8]] = True
    np.testing.assert_array_equal(z["silent"].values, silent)
    assert np.isnan(z.values[silent]).all() and np.isfinite(z.values[~silent]).all() and z.attrs["n_silent"] == 2
    np.testing.assert_allclose(raw.values[8], 0.1)  # plain means kept, still flagged
    assert raw["silent"].values[[3, 8]].all()
    assert result.attrs["set_aside"] == ["fc2.3", "fc2.8"]
    assert (result["population"].values[silent] == -1).all() and (result["population"].values[~silent] >= 0).all()
    assert np.isnan(result["consensus"].values[silent]).all() and np.isnan(result["consensus"].values[:, silent]).all()
    # the others are clustered exactly as without the silent units; the raw profiles too (flag honoured)
    alone = cluster_profiles(z.isel(neuroid=~silent), k=3, n_boot=0)
    np.testing.assert_array_equal(result["population"].values[~silent], alone["population"].values)
    assert cluster_profiles(raw, k=3, n_boot=0).attrs["set_aside"] == ["fc2.3", "fc2.8"]


def test_nan_rows_are_set_aside():
    profiles = noise_profiles(0, n=12)
    profiles[2, 0] = np.nan
    result = cluster_profiles(profiles, method="kmeans", k=2, n_boot=0)
    assert result.attrs["set_aside"] == ["u2"] and result["population"].values[2] == -1
    assert result.attrs["n_clustered"] == 11


# ----------------------------------------------------------------------------- planted structure and controls

COMBOS = [("average", "silhouette"), ("average", "gap"), ("ward", "silhouette"), ("ward", "gap"),
          ("kmeans", "silhouette"), ("kmeans", "gap"), ("gmm", "bic"), ("gmm", "silhouette")]


@pytest.mark.parametrize("method, criterion", COMBOS)
def test_planted_populations_recovered(planted, method, criterion):
    profiles, truth = planted
    result = cluster_profiles(profiles, method=method, criterion=criterion, k_range=(2, 6), n_boot=20, seed=1)
    assert result.attrs["k_chosen"] == 3
    assert adjusted_rand_score(truth, result["population"].values) > 0.9
    assert float(result["stability"]) > 0.9
    assert result["neuroid_id"].values.tolist() == profiles["neuroid_id"].values.tolist()
    assert result["region"].values.tolist() == ["fc2"] * 60 and result.attrs["set_aside"] == []
    assert result["criterion_curve"]["k"].values.tolist() == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("method", ["average", "ward", "kmeans", "gmm"])
def test_structure_free_control(planted, method):
    noise = noise_profiles(7)
    result = cluster_profiles(noise, method=method, k_range=(2, 6), n_boot=20, seed=1)
    structured = cluster_profiles(planted[0], method=method, k_range=(2, 6), n_boot=20, seed=1)
    assert float(result["stability"]) < 0.5 < 0.9 < float(structured["stability"])
    assert result["criterion_curve"].max() < 0.35 < 0.8 < structured["criterion_curve"].max()
    if method == "gmm":  # BIC prefers one cluster on noise
        one = cluster_profiles(noise, method="gmm", criterion="bic", k_range=(1, 6), n_boot=5)
        assert one.attrs["k_chosen"] == 1 and (one["population"].values == 0).all()
        assert np.isnan(float(one["stability"])) and (one["consensus"].values == 1).all()
    else:  # no gap on noise, a large one at the planted k
        gap = cluster_profiles(noise, method=method, criterion="gap", k_range=(1, 6), n_boot=0)
        planted_gap = cluster_profiles(planted[0], method=method, criterion="gap", k_range=(1, 6), n_boot=0)
        assert gap["criterion_curve"].max() < 0.1 and planted_gap["criterion_curve"].sel(k=3) > 1.0
        assert gap.attrs["k_chosen"] == 1 and planted_gap.attrs["k_chosen"] == 3
        assert "permuted independently across units" in gap.attrs["null"] and gap.attrs["n_refs"] == N_REFS


def test_independent_noise_partitions_do_not_agree():
    a = cluster_profiles(noise_profiles(11), method="kmeans", k=3, n_boot=0)["population"].values
    b = cluster_profiles(noise_profiles(12), method="kmeans", k=3, n_boot=0)["population"].values
    assert abs(adjusted_rand_score(a, b)) < 0.1


# ----------------------------------------------------------------------------- against scipy / scikit-learn


def test_average_and_ward_equal_scipy(planted):
    profiles, _ = planted
    x = profiles.values
    for method, z in [("average", linkage(x, method="average", metric="correlation")),
                      ("ward", linkage(zscore_rows(x), method="ward"))]:
        for k in (3, 5):
            result = cluster_profiles(profiles, method=method, k=k, n_boot=0)
            np.testing.assert_allclose(result["linkage"].values, z, rtol=1e-10, atol=1e-12)
            np.testing.assert_array_equal(result["population"].values, fcluster(z, k, criterion="maxclust") - 1)
    leaves = dendrogram(result["linkage"].values, no_plot=True)["leaves"]
    assert sorted(leaves) == list(range(60))


def test_kmeans_equals_sklearn(planted):
    x = planted[0].values
    result = cluster_profiles(planted[0], method="kmeans", k=4, n_boot=0, seed=5)
    np.testing.assert_array_equal(result["population"].values, KMeans(4, n_init=10, random_state=5).fit(x).labels_)
    assert "linkage" not in result


def test_gmm_bic_curve_equals_sklearn():
    profiles, _ = planted_activity(2)
    profiles = response_profiles(profiles, "label", normalise="none")
    x = profiles.values
    result = cluster_profiles(profiles, method="gmm", criterion="bic", k_range=(1, 5), n_boot=0, seed=3)
    models = [GaussianMixture(k, covariance_type="diag", random_state=3).fit(x) for k in range(1, 6)]
    np.testing.assert_allclose(result["criterion_curve"].values, [m.bic(x) for m in models], rtol=1e-10)
    best = int(np.argmin([m.bic(x) for m in models]))
    assert result.attrs["k_chosen"] == best + 1 == 3
    np.testing.assert_array_equal(result["population"].values, models[best].predict(x))


@pytest.mark.parametrize("method, metric", [("average", "correlation"), ("ward", "euclidean"), ("kmeans", "euclidean")])
def test_silhouette_curve_equals_sklearn(planted, method, metric):
    profiles, _ = planted
    result = cluster_profiles(profiles, method=method, k_range=(2, 5), n_boot=0)
    features = zscore_rows(profiles.values) if method == "ward" else profiles.values
    expected = []
    for k in range(2, 6):
        labels = cluster_profiles(profiles, method=method, k=k, n_boot=0)["population"].values
        expected.append(silhouette_score(features, labels, metric=metric))
    np.testing.assert_allclose(result["criterion_curve"].values, expected, rtol=1e-12)
    assert result.attrs["metric"] == metric


def test_gap_statistic_by_hand():
    """Ward's gap recomputed from the documented definition: shuffled references, within sum of squares."""
    profiles = noise_profiles(3, n=30)
    x = profiles.values
    result = cluster_profiles(profiles, method="ward", criterion="gap", k_range=(1, 4), n_boot=0, seed=2)

    def log_w(data, k):
        z = zscore_rows(data)
        labels = fcluster(linkage(z, method="ward"), k, criterion="maxclust")
        return np.log(sum(((z[labels == r] - z[labels == r].mean(0)) ** 2).sum() for r in np.unique(labels)))

    rng = np.random.default_rng(np.random.SeedSequence(2).spawn(2)[1])
    refs = [rng.permuted(x, axis=0) for _ in range(N_REFS)]
    ref = np.array([[log_w(r, k) for k in range(1, 5)] for r in refs])
    gap = ref.mean(0) - np.array([log_w(x, k) for k in range(1, 5)])
    np.testing.assert_allclose(result["criterion_curve"].values, gap, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result["gap_se"].values, ref.std(0) * np.sqrt(1 + 1 / N_REFS), rtol=1e-10, atol=1e-12)
    s = result["gap_se"].values
    chosen = next((k for k in range(1, 4) if gap[k - 1] >= gap[k] - s[k]), 4)
    assert result.attrs["k_chosen"] == chosen


def test_bootstrap_consensus_and_stability_by_hand(planted):
    profiles = planted[0].isel(neuroid=slice(0, 60, 3))  # 20 units
    x = profiles.values
    result = cluster_profiles(profiles, method="average", k=3, n_boot=6, seed=9)
    full = result["population"].values
    rng = np.random.default_rng(np.random.SeedSequence(9).spawn(2)[0])
    together, ari = np.zeros((20, 20)), []
    for _ in range(6):
        cols = rng.integers(0, x.shape[1], size=x.shape[1])
        labels = fcluster(linkage(x[:, cols], method="average", metric="correlation"), 3, criterion="maxclust")
        together += labels[:, None] == labels[None, :]
        ari.append(adjusted_rand_score(full, labels))
    np.testing.assert_allclose(result["consensus"].values, together / 6)
    np.testing.assert_allclose(result["boot_ari"].values, ari)
    assert float(result["stability"]) == pytest.approx(np.mean(ari))
    assert result["consensus"].dims == ("neuroid", "neuroid2")
    assert result["neuroid_id2"].values.tolist() == profiles["neuroid_id"].values.tolist()
    again = cluster_profiles(profiles, method="average", k=3, n_boot=6, seed=9)
    xr.testing.assert_identical(result, again)
    assert {"method", "criterion", "k_chosen", "seed", "n_boot", "metric", "null", "set_aside"} <= set(result.attrs)


# ----------------------------------------------------------------------------- lesion_profiles


@pytest.fixture(scope="module")
def sweep() -> xr.Dataset:
    """A protocol-like single-unit sweep of 6 fc2 units plus a group lesion and its control."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array([3, 5, 8]), 40)
    intact = rng.random(120) < 0.9
    correct = np.repeat(intact[None], 8, axis=0)
    for unit, cls in [(0, 3), (1, 3), (2, 5), (3, 8), (4, 8)]:  # unit 5 changes nothing
        correct[unit, (labels == cls) & (rng.random(120) < 0.5)] = False
    correct[6:] &= rng.random((2, 120)) < 0.7
    names = [f"fc2.{u}" for u in range(6)] + ["fc2.0+fc2.1", "fc2.0+fc2.1/control0"]
    fx = lesion_effects(correct, intact, labels, names, n_boot=0)
    fx = fx.assign_coords(lesion_kind=("lesion", np.array(["single"] * 6 + ["group", "control"], dtype=object)),
                          targets=("lesion", np.array(names, dtype=object)))
    fx["loss"] = ("lesion", rng.random(8))
    return fx


def test_lesion_profiles_from_lesion_effects(sweep):
    profiles = lesion_profiles(sweep)
    assert profiles.dims == ("neuroid", "condition") and profiles.shape == (6, 3)
    assert profiles["neuroid_id"].values.tolist() == [f"fc2.{u}" for u in range(6)]
    assert profiles["region"].values.tolist() == ["fc2"] * 6 and profiles["channel"].values.tolist() == list(range(6))
    assert profiles["condition"].values.tolist() == ["3", "5", "8"]
    assert profiles["lesion_kind"].values.tolist() == ["single"] * 6
    expected = sweep["delta_accuracy"].isel(lesion=slice(0, 6)).sel({"class": ["3", "5", "8"]}).values
    np.testing.assert_array_equal(profiles.values, expected)
    assert profiles.attrs["units"] == "percentage points" and profiles.attrs["measure"] == "delta_accuracy"
    assert profiles["silent"].values.tolist() == [False] * 5 + [True]
    result = cluster_profiles(profiles, k=3, n_boot=0)
    assert result.attrs["set_aside"] == ["fc2.5"]
    assert adjusted_rand_score(result["population"].values[:5], [0, 0, 1, 2, 2]) == 1.0
    # a per-class loss change, where a sweep has one
    with_loss = sweep.assign(delta_loss=(("lesion", "class"), np.ones(sweep["delta_accuracy"].shape), {"units": "nats"}))
    loss = lesion_profiles(with_loss, measure="delta_loss")
    assert loss.name == "delta_loss" and loss.attrs["units"] == "nats" and loss.shape == (6, 3)


def test_lesion_profiles_without_delta_loss_names_what_exists(sweep):
    with pytest.raises(AnalysisError, match=r"measure: expected a \(lesion, class\) variable of effects, found no "
                                            r"'delta_loss'; \(lesion, class\) variables: accuracy, b, c, .*delta_accuracy.*; "
                                            r"per lesion only \(no class dim\): loss"):
        lesion_profiles(sweep, measure="delta_loss")


# ----------------------------------------------------------------------------- bad input

PROFILES = noise_profiles(0, n=10)
ACT, _ = planted_activity(0)

BAD = [
    (lambda: response_profiles(ACT.values, "label"), r"activity: expected an xarray.DataArray"),
    (lambda: response_profiles(ACT, "lable"), r"by: 'lable' is not a coordinate on 'presentation' \(did you mean 'label'\?\)"),
    (lambda: response_profiles(ACT, "label", normalise="l2"), r"normalise: expected one of 'zscore', 'max', 'none', found 'l2'"),
    (lambda: lesion_profiles(np.zeros((3, 4))), r"effects: expected an xarray.Dataset .*found ndarray"),
    (lambda: lesion_profiles(xr.Dataset(), measure="accuracy"), r"measure: expected one of 'delta_accuracy', 'delta_loss'"),
    (lambda: cluster_profiles(PROFILES.values), r"profiles: expected an xarray.DataArray \(neuroid x condition\), found ndarray"),
    (lambda: cluster_profiles(PROFILES.rename(neuroid="unit")), r"profiles: expected dims \('neuroid', <condition>\)"),
    (lambda: cluster_profiles(PROFILES, method="spectral"), r"method: expected one of 'average', 'ward', 'kmeans', 'gmm', found 'spectral'"),
    (lambda: cluster_profiles(PROFILES, criterion="elbow"), r"criterion: expected one of 'silhouette', 'gap', 'bic', found 'elbow'"),
    (lambda: cluster_profiles(PROFILES, method="kmeans", criterion="bic"), r"criterion: expected 'silhouette' or 'gap' with method='kmeans' \('bic' needs"),
    (lambda: cluster_profiles(PROFILES, k=1), r"k: expected an integer in \[2, 9\], found 1"),
    (lambda: cluster_profiles(PROFILES, k=10), r"k: expected an integer in \[2, 9\], found 10"),
    (lambda: cluster_profiles(PROFILES, k="three"), r"k: expected 'auto' or an integer in \[2, 9\], found 'three'"),
    (lambda: cluster_profiles(PROFILES, k_range=(1, 5)), r"k_range: expected two integers \(low, high\) with 2 <= low < high "
                                                          r"and low <= 9 \(units to cluster - 1\), found \(1, 5\)"),
    (lambda: cluster_profiles(PROFILES, k_range=(10, 12)), r"k_range: expected .* found \(10, 12\)"),
    (lambda: cluster_profiles(PROFILES, k_range=(5, 2)), r"k_range: expected .* found \(5, 2\)"),
    (lambda: cluster_profiles(PROFILES, k_range=3), r"k_range: expected .* found 3"),
    (lambda: cluster_profiles(PROFILES, n_boot=-1), r"n_boot: expected an integer >= 0, found -1"),
    (lambda: cluster_profiles(PROFILES, seed=1.5), r"seed: expected an integer >= 0, found 1.5"),
    (lambda: cluster_profiles(PROFILES.isel(neuroid=[0, 1])), r"profiles: expected at least 3 units to cluster .* found 2"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[m.split(":")[0].strip("r\\") + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_arguments(call, message):
    with pytest.raises(AnalysisError, match=message):
        call()


def test_gmm_with_silhouette_is_allowed():
    result = cluster_profiles(PROFILES, method="gmm", criterion="silhouette", k_range=(2, 4), n_boot=0)
    assert result.attrs["criterion"] == "silhouette" and result.attrs["covariance_type"] == "diag"


def test_k_range_high_end_clipped_to_the_units():
    result = cluster_profiles(PROFILES, k_range=(2, 30), n_boot=0)  # 10 units: k up to 9
    assert result["k"].values.tolist() == list(range(2, 10)) and result.attrs["k_range"] == [2, 9]
