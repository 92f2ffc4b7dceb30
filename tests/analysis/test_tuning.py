"""Tuning curves: checked against pandas / scipy.stats.sem / scipy.stats.bootstrap and a slow loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

import neurorecord
from neurorecord.analysis import _units
from neurorecord.analysis._units import AnalysisError
from neurorecord.analysis.selectivity import selectivity
from neurorecord.analysis.tuning import group_means, group_moments, tuning_curve


def make_activity(n_units: int = 6, seed: int = 0) -> xr.DataArray:
    """Unequal groups (7, 5, 1 presentations; the last has n=1), str labels, a second coordinate."""
    rng = np.random.default_rng(seed)
    label = np.array(["cat"] * 7 + ["dog"] * 5 + ["ant"])
    rng.shuffle(label)
    size = rng.choice([1.0, 2.0, 3.0], size=label.size)
    values = rng.gamma(2.0, 1.0, size=(label.size, n_units)) + (label == "dog")[:, None] * np.arange(n_units)
    return xr.DataArray(
        values.astype(np.float32),
        dims=("presentation", "neuroid"),
        coords={
            "stimulus_id": ("presentation", [f"s{i:02d}" for i in range(label.size)]),
            "label": ("presentation", label),
            "size": ("presentation", size),
            "neuroid_id": ("neuroid", [f"fc1.{i}" for i in range(n_units)]),
            "region": ("neuroid", ["fc1"] * n_units),
            "channel": ("neuroid", np.arange(n_units)),
        },
        attrs={"units": "a.u."},
    )


def slow_bootstrap(x: np.ndarray, seed: int, key: int, n_boot: int, ci: float) -> tuple[float, float]:
    """The documented resampling scheme, written out: index resamples, then percentiles."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    means = x[idx].mean(axis=1)
    low, high = np.quantile(means, [(1 - ci) / 2, (1 + ci) / 2])
    return float(low), float(high)


def test_mean_sem_n_match_pandas_and_scipy():
    activity = make_activity()
    tc = tuning_curve(activity, "label", n_boot=50)
    frame = pd.DataFrame(activity.values.astype(np.float64))
    frame["label"] = activity["label"].values
    groups = frame.groupby("label")
    assert tc["label"].values.tolist() == sorted(groups.groups)
    np.testing.assert_allclose(tc["mean"].values, groups.mean().values, rtol=1e-12, atol=0)
    for i, level in enumerate(tc["label"].values):
        block = frame[frame["label"] == level].drop(columns="label").values
        assert tc["n"].values[i] == len(block)
        if len(block) > 1:
            np.testing.assert_allclose(tc["sem"].values[i], scipy.stats.sem(block, axis=0, ddof=1), rtol=1e-12)
        else:  # n = 1: no SEM and no interval
            assert np.isnan(tc["sem"].values[i]).all() and np.isnan(tc["ci_low"].values[i]).all()
    assert tc["mean"].dims == ("label", "neuroid") and tc["n"].dims == ("label",)


def test_bootstrap_ci_is_the_documented_resampling():
    activity = make_activity()
    tc = tuning_curve(activity, "label", ci=0.9, n_boot=300, seed=7)
    values = activity.values.astype(np.float64)
    for k, level in enumerate(tc["label"].values):
        rows = values[activity["label"].values == level]
        if len(rows) < 2:
            continue
        for u in range(values.shape[1]):
            low, high = slow_bootstrap(rows[:, u], 7, k, 300, 0.9)
            assert tc["ci_low"].values[k, u] == pytest.approx(low, rel=1e-12, abs=1e-12)
            assert tc["ci_high"].values[k, u] == pytest.approx(high, rel=1e-12, abs=1e-12)


def test_bootstrap_ci_agrees_with_scipy_bootstrap():
    # Both intervals are Monte-Carlo estimates from 20000 resamples; the standard error of a
    # 2.5 % quantile is then about 0.02 SEM each, so 0.15 SEM is > 5 standard errors of the
    # difference.
    rng = np.random.default_rng(3)
    x = rng.exponential(2.0, size=40)
    activity = xr.DataArray(x[:, None], dims=("presentation", "neuroid"), coords={"label": ("presentation", [0] * 40)})
    tc = tuning_curve(activity, "label", n_boot=20000, seed=1)
    ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=20000, method="percentile", confidence_level=0.95, rng=2)
    sem = scipy.stats.sem(x)
    assert abs(tc["ci_low"].item() - ref.confidence_interval.low) < 0.15 * sem
    assert abs(tc["ci_high"].item() - ref.confidence_interval.high) < 0.15 * sem


def test_bootstrap_coverage():
    # 2000 units x 2 conditions of 30 normal draws: the percentile interval covers the true mean
    # about 93-94 % of the time at n=30 (slightly below 95 %); 0.91-0.97 is > 4 binomial SE.
    rng = np.random.default_rng(11)
    values = rng.normal(1.0, 2.0, size=(60, 2000))
    activity = xr.DataArray(values, dims=("presentation", "neuroid"), coords={"label": ("presentation", [0, 1] * 30)})
    tc = tuning_curve(activity, "label", n_boot=400)
    coverage = float(((tc["ci_low"] <= 1.0) & (1.0 <= tc["ci_high"])).mean())
    assert 0.91 < coverage < 0.97


def test_two_coordinate_map():
    activity = make_activity()
    keep = ~((activity["label"] == "ant") | ((activity["label"] == "dog") & (activity["size"] == 3.0)))
    activity = activity.isel(presentation=np.flatnonzero(keep.values))
    tc = tuning_curve(activity, ["label", "size"], n_boot=40)
    assert tc["mean"].dims == ("label", "size", "neuroid") and tc["n"].dims == ("label", "size")
    frame = pd.DataFrame(activity.values.astype(np.float64))
    frame["label"], frame["size"] = activity["label"].values, activity["size"].values
    means = frame.groupby(["label", "size"]).mean()
    counts = frame.groupby(["label", "size"]).size()
    for i, label in enumerate(tc["label"].values):
        for j, size in enumerate(tc["size"].values):
            if (label, size) in means.index:
                np.testing.assert_allclose(tc["mean"].values[i, j], means.loc[(label, size)].values, rtol=1e-12)
                assert tc["n"].values[i, j] == counts.loc[(label, size)]
            else:
                assert tc["n"].values[i, j] == 0
                for var in ("mean", "sem", "ci_low", "ci_high"):
                    assert np.isnan(tc[var].values[i, j]).all()
    assert tc.attrs["by"] == ["label", "size"]


def test_labels_attrs_and_input_untouched():
    activity = make_activity()
    before = activity.copy(deep=True)
    tc = tuning_curve(activity, "label", ci=0.8, n_boot=20, seed=3)
    xr.testing.assert_identical(activity, before)
    for name in ("neuroid_id", "region", "channel"):
        np.testing.assert_array_equal(tc[name].values, activity[name].values)
    assert tc.attrs == {**tc.attrs, "analysis": "tuning_curve", "by": "label", "ci": 0.8, "n_boot": 20, "seed": 3,
                        "activity_units": "a.u."}
    assert tc["ci_low"].dims == ("label", "neuroid")


def test_seed_fixes_and_changes_the_interval():
    activity = make_activity()
    a, b = tuning_curve(activity, "label", n_boot=50, seed=5), tuning_curve(activity, "label", n_boot=50, seed=5)
    xr.testing.assert_identical(a, b)
    c = tuning_curve(activity, "label", n_boot=50, seed=6)
    assert not np.array_equal(a["ci_low"].values[:2], c["ci_low"].values[:2])


def test_dask_and_blocks_agree_with_numpy(monkeypatch):
    activity = make_activity(n_units=9)
    eager = tuning_curve(activity, ["label", "size"], n_boot=60)
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * activity.sizes["presentation"] * 2)  # blocks of 2 units
    blocked = tuning_curve(activity, ["label", "size"], n_boot=60)
    lazy = tuning_curve(activity.chunk({"presentation": 4, "neuroid": 5}), ["label", "size"], n_boot=60)
    xr.testing.assert_identical(blocked, lazy)
    xr.testing.assert_allclose(eager, blocked, rtol=1e-13, atol=1e-13)


def test_time_bin_is_averaged():
    activity = make_activity()
    binned = xr.concat([activity, activity * 3], dim="time_bin").transpose("presentation", "neuroid", "time_bin")
    xr.testing.assert_allclose(tuning_curve(binned, "label", n_boot=20)["mean"],
                               tuning_curve(activity * 2, "label", n_boot=20)["mean"], rtol=1e-6)


def test_group_kernels_match_numpy():
    rng = np.random.default_rng(0)
    values, codes = rng.normal(size=(30, 4)), rng.integers(0, 5, size=30)
    codes[codes == 3] = 4  # group 3 is empty
    counts, means, ss = group_moments(values, codes, 5)
    np.testing.assert_array_equal(counts, np.bincount(codes, minlength=5))
    np.testing.assert_array_equal(means, group_means(values, codes, 5))
    assert np.isnan(means[3]).all() and np.isnan(ss[3]).all()
    for g in (0, 1, 2, 4):
        np.testing.assert_allclose(means[g], values[codes == g].mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(ss[g], ((values[codes == g] - values[codes == g].mean(axis=0)) ** 2).sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"by": "colour"}, r"by: 'colour' is not a coordinate on 'presentation'"),
        ({"by": ["label", "size", "stimulus_id"]}, r"by: expected a presentation coordinate name or a list of two"),
        ({"by": ["label", "label"]}, r"must differ"),
        ({"by": 3}, r"by: expected a presentation coordinate name"),
        ({"by": "label", "ci": 1.5}, r"ci: expected a number in \(0, 1\), found 1.5"),
        ({"by": "label", "ci": float("nan")}, r"ci: expected a number"),
        ({"by": "label", "n_boot": 0}, r"n_boot: expected an integer >= 1, found 0"),
        ({"by": "label", "n_boot": 10.0}, r"n_boot: expected an integer >= 1, found 10.0 \(float\)"),
        ({"by": "label", "seed": None}, r"seed: expected an integer >= 0, found None \(NoneType\)"),
        ({"by": "label", "seed": -1}, r"seed: expected an integer >= 0, found -1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(AnalysisError, match=match):
        tuning_curve(make_activity(), **kwargs)


def test_bad_activity():
    with pytest.raises(AnalysisError, match="expected an xarray.DataArray"):
        tuning_curve(make_activity().values, "label")  # type: ignore[arg-type]


def test_digits_mlp_recording(tmp_path):
    tree = neurorecord.run(neurorecord.default_protocol_path(), tmp_path / "rec", quiet=True)
    activity = tree["fc2"]["activity"]
    tc = tuning_curve(activity, "label", n_boot=100)
    csi = selectivity(activity, "label", "csi")
    raw = np.asarray(activity.values, dtype=np.float64)
    labels = activity["label"].values
    frame = pd.DataFrame(raw).groupby(labels)
    np.testing.assert_allclose(tc["mean"].values, frame.mean().values, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(tc["n"].values, frame.size().values)
    np.testing.assert_array_equal(tc["neuroid_id"].values, activity["neuroid_id"].values)
    assert activity.chunks is not None  # an opened store: dask-backed, same result once loaded
    xr.testing.assert_identical(tc, tuning_curve(activity.load(), "label", n_boot=100))

    xr.testing.assert_identical(csi, selectivity(activity, "label", "csi"))
    for u in range(raw.shape[1]):  # slow path: class means, best class, mean of the others
        mu = np.array([raw[labels == c, u].mean() for c in np.unique(labels)])
        best = int(np.argmax(mu))
        rest = np.delete(mu, best).mean()
        expected = np.nan if mu.max() + rest == 0 else (mu[best] - rest) / (mu[best] + rest)
        np.testing.assert_allclose(csi["csi"].values[u], expected, rtol=1e-12, atol=1e-15, equal_nan=True)
        if not np.isnan(expected):
            assert csi["preferred"].values[u] == np.unique(labels)[best]
