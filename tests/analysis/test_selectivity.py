"""Selectivity indices: fast paths against obvious per-unit loops, known values, policies, dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neurorecord.analysis import _units
from neurorecord.analysis._units import AnalysisError
from neurorecord.analysis.selectivity import INDEX_FUNCTIONS, INDICES, selectivity

DIRECTIONS = np.arange(0.0, 360.0, 22.5)


def make_activity(by: str, levels, n_rep: int, n_units: int, seed: int = 0) -> xr.DataArray:
    """Non-negative, tuned responses: each unit prefers a random level, plus gamma noise."""
    rng = np.random.default_rng(seed)
    values = np.repeat(np.asarray(levels), n_rep)
    codes = np.repeat(np.arange(len(levels)), n_rep)
    order = rng.permutation(values.size)
    values, codes = values[order], codes[order]
    gain = rng.gamma(2.0, 1.0, size=(len(levels), n_units)) * (rng.random((len(levels), n_units)) < 0.5)
    data = gain[codes] + rng.gamma(1.0, 0.5, size=(values.size, n_units))
    return xr.DataArray(
        data.astype(np.float32),
        dims=("presentation", "neuroid"),
        coords={
            "stimulus_id": ("presentation", [f"s{i:03d}" for i in range(values.size)]),
            by: ("presentation", values),
            "neuroid_id": ("neuroid", [f"v1.{i}" for i in range(n_units)]),
            "region": ("neuroid", ["v1"] * n_units),
        },
        attrs={"units": "spikes/bin"},
    )


def from_means(by: str, levels, means: np.ndarray) -> xr.DataArray:
    """One presentation per level with exactly the given means (levels, units)."""
    n_units = means.shape[1]
    return xr.DataArray(np.asarray(means, dtype=np.float64), dims=("presentation", "neuroid"),
                        coords={by: ("presentation", np.asarray(levels)),
                                "neuroid_id": ("neuroid", [f"u{i}" for i in range(n_units)])})


@pytest.fixture(scope="module")
def labels():
    return make_activity("label", ["a", "b", "c", "d", "e"], n_rep=6, n_units=10, seed=1)


@pytest.fixture(scope="module")
def directions():
    return make_activity("direction", DIRECTIONS, n_rep=3, n_units=12, seed=2)


# ----------------------------------------------------------------------------- slow paths


def slow_class_means(activity: xr.DataArray, by: str) -> pd.DataFrame:
    frame = pd.DataFrame(activity.values.astype(np.float64))
    frame[by] = activity[by].values
    return frame.groupby(by).mean()  # rows: sorted levels, columns: units


def slow_csi(mu: np.ndarray) -> float:
    best = int(np.argmax(mu))
    rest = np.delete(mu, best).mean()
    return np.nan if mu[best] + rest == 0 else (mu[best] - rest) / (mu[best] + rest)


def slow_sparseness(r: np.ndarray) -> float:
    n = len(r)
    return (1 - (r.sum() / n) ** 2 / ((r**2).sum() / n)) / (1 - 1 / n)


def slow_vector(mu: np.ndarray, theta: np.ndarray, period: float) -> float:
    return abs(sum(m * np.exp(1j * 2 * np.pi * t / period) for m, t in zip(mu, theta))) / mu.sum()


def slow_ratio(mu: np.ndarray, theta: np.ndarray, period: float, shift: float) -> tuple[float, float]:
    folded: dict[float, list[float]] = {}
    for m, t in zip(mu, theta):
        folded.setdefault(t % period, []).append(m)
    angles = sorted(folded)
    resp = [np.mean(folded[a]) for a in angles]
    pref = angles[int(np.argmax(resp))]
    r_pref, r_other = np.mean(folded[pref]), np.mean(folded[(pref + shift) % period])
    return (r_pref - r_other) / (r_pref + r_other), pref


# ----------------------------------------------------------------------------- against the slow paths


def test_csi_matches_slow_path(labels):
    ds = selectivity(labels, "label", "csi")
    means = slow_class_means(labels, "label")
    for u in range(labels.sizes["neuroid"]):
        mu = means[u].values
        assert ds["csi"].values[u] == pytest.approx(slow_csi(mu), rel=1e-12, abs=1e-12)
        assert ds["preferred"].values[u] == means.index[int(np.argmax(mu))]
    assert ds["csi"].dims == ("neuroid",) and ds["n"].values.tolist() == [6] * 5


def test_dprime_matches_slow_path(labels):
    ds = selectivity(labels, "label", "dprime")
    x = labels.values.astype(np.float64)
    lab = labels["label"].values
    assert ds["dprime"].dims == ("label", "neuroid")
    for c, level in enumerate(ds["label"].values):
        for u in range(x.shape[1]):
            inside, rest = x[lab == level, u], x[lab != level, u]
            d = (inside.mean() - rest.mean()) / np.sqrt((inside.var(ddof=1) + rest.var(ddof=1)) / 2)
            assert ds["dprime"].values[c, u] == pytest.approx(d, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("index, period, shift", [("osi", 180.0, 90.0), ("dsi", 360.0, 180.0)])
def test_osi_dsi_match_slow_path_on_direction_data(directions, index, period, shift):
    ds = selectivity(directions, "direction", index)
    means = slow_class_means(directions, "direction")
    theta = means.index.values.astype(np.float64)
    for u in range(directions.sizes["neuroid"]):
        mu = means[u].values
        ratio, pref = slow_ratio(mu, theta, period, shift)
        assert ds[f"{index}_vector"].values[u] == pytest.approx(slow_vector(mu, theta, period), rel=1e-12, abs=1e-12)
        assert ds[f"{index}_ratio"].values[u] == pytest.approx(ratio, rel=1e-12, abs=1e-12)
        assert ds["preferred"].values[u] == pref
        z = sum(m * np.exp(1j * 2 * np.pi * t / period) for m, t in zip(mu, theta))
        assert ds["preferred_vector"].values[u] == pytest.approx(np.degrees(np.angle(z)) * period / 360 % period, abs=1e-9)
    assert ds.attrs["period"] == period


def test_osi_on_orientation_data_matches_slow_path():
    activity = make_activity("orientation", np.arange(0, 180, 30), n_rep=4, n_units=7, seed=4)
    ds = selectivity(activity, "orientation", "osi")
    means = slow_class_means(activity, "orientation")
    theta = means.index.values.astype(np.float64)
    for u in range(7):
        ratio, pref = slow_ratio(means[u].values, theta, 180.0, 90.0)
        assert ds["osi_ratio"].values[u] == pytest.approx(ratio, rel=1e-12)
        assert ds["osi_vector"].values[u] == pytest.approx(slow_vector(means[u].values, theta, 180.0), rel=1e-12)
        assert ds["preferred"].values[u] == pref


def test_sparseness_and_magnitude_match_slow_path(labels):
    means = slow_class_means(labels, "label")
    life = selectivity(labels, "label", "lifetime_sparseness")["lifetime_sparseness"].values
    pop = selectivity(labels, "label", "population_sparseness")
    mag = selectivity(labels, "label", "magnitude")["magnitude"].values
    x = labels.values.astype(np.float64)
    for u in range(labels.sizes["neuroid"]):
        assert life[u] == pytest.approx(slow_sparseness(means[u].values), rel=1e-12, abs=1e-12)
        assert mag[u] == pytest.approx(np.mean([abs(v) for v in x[:, u]]), rel=1e-12)
    assert pop["population_sparseness"].dims == ("label",)
    for c in range(len(means)):
        assert pop["population_sparseness"].values[c] == pytest.approx(slow_sparseness(means.values[c]), rel=1e-12)


def test_index_functions_equal_selectivity(labels, directions):
    for name, act, by in [("csi", labels, "label"), ("lifetime_sparseness", labels, "label"), ("magnitude", labels, "label"),
                          ("osi_vector", directions, "direction"), ("dsi_vector", directions, "direction")]:
        levels, codes = np.unique(act[by].values, return_inverse=True)
        raw = INDEX_FUNCTIONS[name](act.values.astype(np.float64), codes, levels)
        index = name.removesuffix("_vector")  # osi_vector is a variable of selectivity(..., "osi")
        np.testing.assert_array_equal(raw, selectivity(act, by, index)[name].values, err_msg=name)
    assert set(INDEX_FUNCTIONS) == {"csi", "osi_vector", "dsi_vector", "lifetime_sparseness", "magnitude"}


# ----------------------------------------------------------------------------- known values


def test_known_values_on_hand_made_tuning():
    # units: one-hot at level 0, uniform, all zero, one-hot at 90 and 270 (one orientation, both directions)
    means = np.array([
        [4.0, 2.0, 0.0, 0.0],
        [0.0, 2.0, 0.0, 3.0],
        [0.0, 2.0, 0.0, 0.0],
        [0.0, 2.0, 0.0, 3.0],
    ])
    activity = from_means("direction", [0, 90, 180, 270], means)
    csi = selectivity(activity, "direction", "csi")
    np.testing.assert_array_equal(csi["csi"].values[[0, 1]], [1.0, 0.0])
    assert np.isnan(csi["csi"].values[2])
    assert csi["csi"].values[3] == pytest.approx((3 - 1) / (3 + 1))
    osi = selectivity(activity, "direction", "osi")
    np.testing.assert_allclose(osi["osi_vector"].values[[0, 1, 3]], [1.0, 0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(osi["osi_ratio"].values[[0, 1, 3]], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(osi["preferred"].values[[0, 1, 3]], [0.0, 0.0, 90.0])
    assert np.isnan(osi["preferred_vector"].values[1]) and np.isnan(osi["osi_vector"].values[2])
    assert osi["preferred_vector"].values[3] == pytest.approx(90.0)
    dsi = selectivity(activity, "direction", "dsi")
    np.testing.assert_allclose(dsi["dsi_vector"].values[[0, 1, 3]], [1.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(dsi["dsi_ratio"].values[[0, 1, 3]], [1.0, 0.0, 0.0])
    life = selectivity(activity, "direction", "lifetime_sparseness")["lifetime_sparseness"].values
    np.testing.assert_allclose(life[[0, 1]], [1.0, 0.0], atol=1e-15)
    assert np.isnan(life[2])
    pop = selectivity(activity, "direction", "population_sparseness")["population_sparseness"].values
    # condition 180: only unit 1 responds -> 1; condition 90: units 1 and 3 at 2 and 3 of 4 units
    assert pop[2] == pytest.approx(1.0)
    assert pop[1] == pytest.approx(slow_sparseness(np.array([0.0, 2.0, 0.0, 3.0])))


def test_known_dprime():
    activity = from_means("label", [0, 0, 1, 1], np.array([[0.0], [2.0], [4.0], [6.0]]))
    ds = selectivity(activity, "label", "dprime")
    np.testing.assert_allclose(ds["dprime"].values[:, 0], [-4 / np.sqrt(2), 4 / np.sqrt(2)])
    # zero variance in both: +-inf when the means differ, NaN with one presentation per condition
    flat = from_means("label", [0, 0, 1, 1], np.array([[1.0], [1.0], [3.0], [3.0]]))
    np.testing.assert_array_equal(selectivity(flat, "label", "dprime")["dprime"].values[:, 0], [-np.inf, np.inf])
    single = from_means("label", [0, 1, 1], np.array([[1.0], [2.0], [3.0]]))
    assert np.isnan(selectivity(single, "label", "dprime")["dprime"].values[0, 0])


# ----------------------------------------------------------------------------- negative responses


def test_negative_policy():
    means = np.array([[3.0, -1.0, 2.0], [1.0, -3.0, 2.0], [1.0, 1.0, -0.5]])
    activity = from_means("label", ["a", "b", "c"], means)
    with pytest.raises(AnalysisError, match=r"csi: .* unit\(s\) u1, u2 have negative condition means; pass negative='shift'"):
        selectivity(activity, "label", "csi")
    shifted = selectivity(activity, "label", "csi", negative="shift")
    assert shifted["csi"].values[0] == pytest.approx(slow_csi(means[:, 0]))  # non-negative: untouched
    assert shifted["csi"].values[1] == pytest.approx(slow_csi(means[:, 1] + 3.0))
    assert shifted["csi"].values[2] == pytest.approx(slow_csi(means[:, 2] + 0.5))
    nan = selectivity(activity, "label", "csi", negative="nan")["csi"].values
    assert nan[0] == pytest.approx(slow_csi(means[:, 0])) and np.isnan(nan[1:]).all()
    pop = selectivity(activity, "label", "population_sparseness", negative="nan")["population_sparseness"].values
    assert np.isnan(pop).all()  # one unit left: no population sparseness
    with pytest.raises(AnalysisError, match="lifetime_sparseness: the index is defined for non-negative"):
        INDEX_FUNCTIONS["lifetime_sparseness"](means, np.arange(3), np.array(["a", "b", "c"]))
    assert selectivity(activity, "label", "magnitude")["magnitude"].values[1] == pytest.approx(5 / 3)


# ----------------------------------------------------------------------------- plumbing


@pytest.mark.parametrize("index", INDICES)
def test_dask_and_blocks_equal_numpy(labels, directions, index, monkeypatch):
    activity, by = (directions, "direction") if INDICES[index].family else (labels, "label")
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * activity.sizes["presentation"] * 3)  # blocks of 3 units
    eager = selectivity(activity, by, index)
    lazy = selectivity(activity.chunk({"presentation": 7, "neuroid": 4}), by, index)
    xr.testing.assert_identical(eager, lazy)
    for name in ("neuroid_id", "region"):
        np.testing.assert_array_equal(eager[name].values, activity[name].values)
    assert eager.attrs["index"] == index and eager.attrs["activity_units"] == "spikes/bin"


def test_magnitude_without_by(labels):
    xr.testing.assert_identical(selectivity(labels, None, "magnitude").drop_attrs(),
                                selectivity(labels, "label", "magnitude").drop_attrs())


@pytest.mark.parametrize(
    "by, index, kwargs, match",
    [
        ("label", "csj", {}, r"index: expected one of 'csi', 'dprime', 'osi', .*found 'csj' \(did you mean 'csi'\?\)"),
        ("label", "dprime", {"negative": "shift"}, r"unknown keyword\(s\) negative for index 'dprime'; it takes no keywords"),
        ("label", "csi", {"floor": 0}, r"unknown keyword\(s\) floor for index 'csi'; it takes negative"),
        ("label", "csi", {"negative": "clip"}, r"negative: expected one of 'raise', 'shift', 'nan', found 'clip'"),
        ("label", "osi", {}, r"by: expected angles in degrees \(numbers\) for the osi index, found coordinate 'label' "
                              r"with values such as 'a', 'b', 'c'"),
        ("colour", "csi", {}, r"by: 'colour' is not a coordinate on 'presentation'"),
        (None, "csi", {}, r"by: expected the name of a presentation coordinate, found None"),
        ("region_of_one", "csi", {}, r"has 1 distinct value\(s\); this analysis needs at least 2"),
    ],
)
def test_bad_arguments(labels, by, index, kwargs, match):
    activity = labels.assign_coords(region_of_one=("presentation", np.zeros(labels.sizes["presentation"])))
    with pytest.raises(AnalysisError, match=match):
        selectivity(activity, by, index, **kwargs)


@pytest.mark.parametrize(
    "index, levels, match",
    [
        ("osi", [0, 30, 60, 90], r"by: expected each angle of 'angle' to have its orthogonal partner \(90 deg away\) "
                                 r"for the osi ratio form \(index 'osi'\), found none at 120 \(for 30\)"),
        ("dsi", [0, 90, 180], r"by: expected each angle of 'angle' to have its opposite partner \(180 deg away\) "
                              r"for the dsi ratio form \(index 'dsi'\), found none at 270 \(for 90\)"),
    ],
)
def test_missing_orthogonal_or_opposite_angle(index, levels, match):
    activity = from_means("angle", levels, np.ones((len(levels), 2)))
    with pytest.raises(AnalysisError, match=match):
        selectivity(activity, "angle", index)


def test_directions_equal_modulo_period_are_merged():
    # 0 and 360 are the same direction: their means are averaged for the ratio
    activity = from_means("direction", [0, 90, 180, 270, 360], np.array([[4.0], [1.0], [1.0], [1.0], [2.0]]))
    ds = selectivity(activity, "direction", "dsi")
    assert ds["dsi_ratio"].item() == pytest.approx((3 - 1) / (3 + 1)) and ds["preferred"].item() == 0.0


# ----------------------------------------------------------------------------- one form alone

SEVEN = np.arange(7) * 22.5  # 0 to 135 deg: 67.5 has no orthogonal partner (157.5)


@pytest.mark.parametrize("index, period", [("osi_vector", 180.0), ("dsi_vector", 360.0)])
def test_vector_form_alone_needs_no_partner_angles(index, period):
    activity = make_activity("orientation", SEVEN, n_rep=4, n_units=9, seed=4)
    ds = selectivity(activity, "orientation", index)
    assert set(ds.data_vars) == {index, "preferred_vector", "n"}
    means = slow_class_means(activity, "orientation")
    for u in range(activity.sizes["neuroid"]):
        assert ds[index].values[u] == pytest.approx(slow_vector(means[u].values, SEVEN, period), rel=1e-12)
    assert ds.attrs["index"] == index and ds.attrs["period"] == period
    assert "ratio" not in ds.attrs["definition"]
    # the same values as the variable of the same name when both forms are asked for (all partners present)
    full = make_activity("orientation", np.arange(0.0, period, 22.5), n_rep=3, n_units=5, seed=5)
    both = selectivity(full, "orientation", index.removesuffix("_vector"))
    alone = selectivity(full, "orientation", index)
    np.testing.assert_array_equal(alone[index].values, both[index].values)
    np.testing.assert_array_equal(alone["preferred_vector"].values, both["preferred_vector"].values)


@pytest.mark.parametrize("index", ["osi", "osi_ratio"])
def test_ratio_form_still_needs_partner_angles(index):
    activity = make_activity("orientation", SEVEN, n_rep=2, n_units=3, seed=4)
    with pytest.raises(AnalysisError, match=r"by: expected each angle of 'orientation' to have its orthogonal partner "
                                            r"\(90 deg away\) for the osi ratio form \(index 'osi(_ratio)?'\), found "
                                            r"none at 157.5 \(for 67.5\)"):
        selectivity(activity, "orientation", index)


def test_ratio_form_alone_equals_the_ratio_of_both():
    activity = make_activity("direction", DIRECTIONS, n_rep=2, n_units=6, seed=6)
    both = selectivity(activity, "direction", "dsi")
    alone = selectivity(activity, "direction", "dsi_ratio")
    assert set(alone.data_vars) == {"dsi_ratio", "preferred", "n"}
    np.testing.assert_array_equal(alone["dsi_ratio"].values, both["dsi_ratio"].values)
    np.testing.assert_array_equal(alone["preferred"].values, both["preferred"].values)


def test_one_table_of_index_names():
    from neurorecord.analysis.populations import INDICES as rule_indices

    assert rule_indices is INDICES
    assert {"osi", "osi_vector", "osi_ratio", "dsi", "dsi_vector", "dsi_ratio"} <= set(INDICES)
    for name, spec in INDICES.items():
        assert spec.name == name
        assert spec.threshold is None or spec.threshold in INDICES  # a rule thresholds an index itself
