"""Populations and protocol analyses: rules checked against a slow scipy/statsmodels path."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

import neurorecord
from neurorecord.analysis import AnalysisError, selectivity, stats
from neurorecord.analysis.populations import Population, define_population
from neurorecord.analysis.runner import load_analysis, load_population, save_analysis
from neurorecord.cli.main import main
from neurorecord.errors import ProtocolError
from tests.helpers import DIGITS_MLP, LIKES_3


@pytest.fixture
def synthetic() -> xr.DataArray:
    rng = np.random.default_rng(1)
    label = np.repeat(np.arange(4), 25)
    x = rng.normal(size=(100, 30))
    x[label == 2, :5] += 2.0  # units 0-4 prefer label 2
    x[label == 1, 5:8] -= 2.0  # units 5-7 respond less to label 1
    return xr.DataArray(
        x, dims=("presentation", "neuroid"),
        coords={"label": ("presentation", label), "neuroid_id": ("neuroid", [f"r.{i}" for i in range(30)]),
                "region": ("neuroid", ["r"] * 30)},
    )


def test_responsive_population_matches_scipy(synthetic):
    pop = define_population("responsive", synthetic, test="anova", by="label", q_below=0.05)
    x, label = synthetic.values, synthetic["label"].values
    p = np.array([sps.f_oneway(*(x[label == c, u] for c in range(4))).pvalue for u in range(30)])
    q = multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose(pop.table["p"].values, p, rtol=1e-10)
    np.testing.assert_allclose(pop.table["q"].values, q, rtol=1e-10)
    assert pop.neuroid_ids == [f"r.{i}" for i in np.flatnonzero(q < 0.05)]
    assert set(pop.neuroid_ids) >= {f"r.{i}" for i in range(8)}
    assert pop.table.attrs["rule"] == "anova(by=label) q < 0.05 (fdr_bh)" and "30 units of region r" in pop.table.attrs["family"]


def test_selective_population_needs_direction_and_dprime(synthetic):
    pop = define_population("likes-2", synthetic, test="ttest_ovr", by="label", condition=2, q_below=0.01,
                            index="dprime", index_above=1.0)
    x, label = synthetic.values, synthetic["label"].values
    rest = label != 2
    res = [sps.ttest_ind(x[~rest, u], x[rest, u], equal_var=False) for u in range(30)]
    dprime = (x[~rest].mean(0) - x[rest].mean(0)) / np.sqrt((x[~rest].var(0, ddof=1) + x[rest].var(0, ddof=1)) / 2)
    # the FDR family of a one-vs-rest test is every (condition, unit) pair of the region
    p_all = np.array([[sps.ttest_ind(x[label == c, u], x[label != c, u], equal_var=False).pvalue for u in range(30)] for c in range(4)])
    q_all = multipletests(p_all.ravel(), method="fdr_bh")[1].reshape(4, 30)
    expected = (q_all[2] < 0.01) & (np.array([r.statistic for r in res]) > 0) & (dprime > 1.0)
    assert pop.neuroid_ids == [f"r.{i}" for i in np.flatnonzero(expected)] == [f"r.{i}" for i in range(5)]
    np.testing.assert_allclose(pop.table["dprime"].values, dprime, rtol=1e-10)
    # units 5-7 differ for label 1 but respond less: not "selective for" it
    lower = define_population("likes-1", synthetic, test="ttest_ovr", by="label", condition=1)
    assert not set(lower.neuroid_ids) & {"r.5", "r.6", "r.7"}
    assert len(lower.select(synthetic).neuroid) == len(lower)


def test_population_rule_errors(synthetic):
    with pytest.raises(AnalysisError, match=r"condition: expected the level of 'label' a one-vs-rest rule \(ttest_ovr, "
                                            r"None\) is about, found None"):
        define_population("x", synthetic, test="ttest_ovr", by="label")
    with pytest.raises(AnalysisError, match=r"condition: expected a level of 'label', found 7; levels: 0, 1, 2, 3"):
        define_population("x", synthetic, test="ttest_ovr", by="label", condition=7)
    with pytest.raises(AnalysisError, match=r"index: expected one of 'csi', .*, found 'osj' \(did you mean 'osi'\?\)"):
        define_population("x", synthetic, test="anova", by="label", index="osj", index_above=0.3)
    with pytest.raises(AnalysisError, match=r"index: expected an index with one value per unit .* found "
                                            r"'population_sparseness' \(one value per condition\)"):
        define_population("x", synthetic, test="anova", by="label", index="population_sparseness", index_above=0.3)
    with pytest.raises(AnalysisError, match=r"by: expected angles in degrees \(numbers\) for the osi_vector index, "
                                            r"found coordinate 'label'"):
        define_population("x", synthetic.assign_coords(label=synthetic["label"].astype(str)), test="anova", by="label",
                          index="osi_vector", index_above=0.3)
    with pytest.raises(AnalysisError, match="test: expected one of 'anova', .*, found 'chisq'"):
        define_population("x", synthetic, test="chisq", by="label")
    with pytest.raises(AnalysisError, match=r"'lable' is not a coordinate on 'presentation' \(did you mean 'label'\?\)"):
        define_population("x", synthetic, test="anova", by="lable")


SEVEN = np.arange(7) * 22.5  # 7 orientations, 0 to 135 deg: 67.5 has no orthogonal partner


def orientation_activity(levels: np.ndarray, n_rep: int = 6, n_units: int = 20, seed: int = 0) -> xr.DataArray:
    """Rectified responses tuned to orientation (the first half of the units), presentation x neuroid."""
    rng = np.random.default_rng(seed)
    angles = np.tile(levels, n_rep)
    preferred = rng.uniform(0, 180, size=n_units)
    gain = np.where(np.arange(n_units) < n_units // 2, 4.0, 0.0)
    rates = 1.0 + gain * np.exp(2.0 * (np.cos(np.deg2rad(2 * (angles[:, None] - preferred))) - 1))
    x = rng.gamma(4.0, rates / 4.0)
    return xr.DataArray(x, dims=("presentation", "neuroid"),
                        coords={"orientation": ("presentation", angles),
                                "neuroid_id": ("neuroid", [f"c.{i}" for i in range(n_units)]),
                                "region": ("neuroid", ["c"] * n_units)})


def test_vector_index_rule_on_orientations_without_partners():
    """A rule on osi_vector needs no orthogonal partners: only the vector form is computed."""
    act = orientation_activity(SEVEN, n_rep=12)
    pop = define_population("tuned", act, test="rayleigh", by="orientation", period=180, index="osi_vector",
                            index_above=0.1)
    osi = selectivity(act, "orientation", "osi_vector")["osi_vector"]
    np.testing.assert_array_equal(pop.table["osi_vector"].values, osi.values)
    expected = (stats.rayleigh(act, "orientation", period=180)["q"] < 0.05) & (osi > 0.1)
    np.testing.assert_array_equal(pop.table["member"].values, expected.values)
    assert pop.rule == "rayleigh(by=orientation, period=180) q < 0.05 and osi_vector > 0.1 (fdr_bh)"
    # the tuned units preferring an orientation inside the sampled 0-135 deg are found (units 4, 5
    # and 9 prefer 146-168 deg, between the sampled ends: the resultant of 7 uneven angles is weak there)
    assert {f"c.{i}" for i in (0, 1, 2, 3, 6, 7, 8)} <= set(pop.neuroid_ids)
    with pytest.raises(AnalysisError, match=r"by: expected each angle of 'orientation' to have its orthogonal partner"):
        define_population("tuned", act, test="anova", by="orientation", index="osi_ratio", index_above=0.1)


@pytest.mark.parametrize("index, variable", [("dsi", "dsi_vector"), ("osi", "osi_vector"), ("dsi_ratio", "dsi_ratio"),
                                             ("csi", "csi"), ("lifetime_sparseness", "lifetime_sparseness")])
def test_every_per_unit_index_of_selectivity_works_in_a_rule(index, variable):
    act = orientation_activity(np.arange(8) * 45.0).rename(orientation="direction")
    pop = define_population("x", act, test="anova", by="direction", index=index, index_above=0.05)
    expected = selectivity(act, "direction", variable)[variable]
    np.testing.assert_array_equal(pop.table[variable].values, expected.values)
    assert pop.rule.endswith(f"and {variable} > 0.05 (fdr_bh)") and pop.table.attrs["index"] == index


def test_population_round_trip_through_store(synthetic, tmp_path):
    import zarr

    zarr.open_group(tmp_path / "store", mode="w", zarr_format=3)
    pop = define_population("likes-2", synthetic, test="ttest_ovr", by="label", condition=2, index="dprime", index_above=1.0)
    save_analysis(tmp_path / "store", "r", "likes-2", pop.to_dataset())
    back = load_population(tmp_path / "store", "r", "likes-2")
    assert back.neuroid_ids == pop.neuroid_ids and back.rule == pop.rule
    np.testing.assert_array_equal(back.table["q"].values, pop.table["q"].values)
    with pytest.raises(AnalysisError, match="no analysis 'analyses/r/nope' in the store; results there: analyses/r/likes-2"):
        load_analysis(tmp_path / "store", "r", "nope")
    assert isinstance(back, Population)


ANALYSES = """
analyses:
  - name: tuning
    kind: tuning_curve
    by: label
    n_boot: 200
  - name: responsive
    kind: population
    regions: [fc2, fc3]
    test: anova
    by: label
    q_below: 0.05
""" + LIKES_3 + """  - name: csi
    kind: selectivity
    regions: [fc3]
    by: label
    index: csi
"""


def test_protocol_analyses_written_into_store(write_protocol, tmp_path, capsys):
    path = write_protocol(DIGITS_MLP + ANALYSES)
    tree = neurorecord.run(path, tmp_path / "rec", quiet=True)
    assert sorted(n.path for n in tree["analyses"].subtree if n.has_data) == [
        "/analyses/fc1/tuning", "/analyses/fc2/responsive", "/analyses/fc2/tuning",
        "/analyses/fc3/csi", "/analyses/fc3/likes-3", "/analyses/fc3/responsive", "/analyses/fc3/tuning",
    ]
    fc3 = tree["fc3"]["activity"]
    stored = load_population(tmp_path / "rec", "fc3", "likes-3")
    again = define_population("likes-3", fc3, test="ttest_ovr", by="label", condition=3, q_below=0.01, index="dprime", index_above=1.0)
    assert stored.neuroid_ids == again.neuroid_ids and len(stored) > 0
    tuning = load_analysis(tmp_path / "rec", "fc2", "tuning")
    by_hand = tree["fc2"]["activity"].groupby("label").mean().values
    np.testing.assert_allclose(tuning["mean"].transpose("label", "neuroid").values, by_hand, rtol=1e-6)
    assert '"kind":"tuning_curve"' in tuning.attrs["analysis"]
    assert main(["info", str(tmp_path / "rec")]) == 0
    info = capsys.readouterr().out
    assert "analysis  analyses/fc3/likes-3:" in info and "rule: ttest_ovr(by=label, condition=3) q < 0.01 and dprime > 1.0" in info


def test_protocol_analysis_errors(write_protocol, tmp_path):
    bad_by = DIGITS_MLP + ANALYSES.replace("by: label\n    n_boot", "by: lable\n    n_boot")
    with pytest.raises(neurorecord.NeurorecordError, match=r"protocol.yaml:\d+:\d+: analyses\[0\].by: 'lable' is not a presentation coordinate .*\(did you mean 'label'\?\)"):
        neurorecord.run(write_protocol(bad_by), tmp_path / "o", quiet=True)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ProtocolError, match=r"b.yaml:\d+:\d+: analyses\[1\].regions: 'fc9' is not a recorded region; recorded: fc1, fc2, fc3"):
        neurorecord.load_protocol(write_protocol(DIGITS_MLP + ANALYSES.replace("[fc2, fc3]", "[fc2, fc9]"), "b.yaml"))
    with pytest.raises(ProtocolError, match=r"analyses\[2\]: a one-vs-rest rule \(ttest_ovr\) needs 'condition'"):
        neurorecord.load_protocol(write_protocol(DIGITS_MLP + ANALYSES.replace("    condition: 3\n", ""), "c.yaml"))
    with pytest.raises(ProtocolError, match=r"analyses\[3\].kind: unknown analysis kind 'selectivty' \(did you mean 'selectivity'\?\)"):
        neurorecord.load_protocol(write_protocol(DIGITS_MLP + ANALYSES.replace("kind: selectivity", "kind: selectivty"), "d.yaml"))
    with pytest.raises(ProtocolError, match=r"analyses\[1\].q_beloww: unknown key \(did you mean 'q_below'\?\)"):
        neurorecord.load_protocol(write_protocol(DIGITS_MLP + ANALYSES.replace("q_below: 0.05", "q_beloww: 0.05"), "e.yaml"))
