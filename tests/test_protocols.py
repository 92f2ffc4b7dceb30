"""Every protocol in protocols/ validates, runs, and gives the result its header describes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neurorecord
from neurorecord.analysis.runner import load_analysis, load_population
from neurorecord import store
from neurorecord.cli.main import main
from neurorecord.errors import NeurorecordError

PROTOCOLS = Path(__file__).resolve().parents[1] / "protocols"
ALL = sorted(p.name for p in PROTOCOLS.glob("*.yaml"))


def test_the_promised_protocols_exist():
    assert {"digits.yaml", "orientation-tuning.yaml", "direction-tuning.yaml", "gabor-rf-mapping.yaml", "entry-point.yaml",
            "lesion-study.yaml", "functional-populations.yaml"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_protocol_validates_and_documents_itself(name, capsys):
    path = PROTOCOLS / name
    text = path.read_text()
    assert text.startswith(f"# {name} — "), "each protocol starts with a header comment naming it"
    assert f"neurorecord run protocols/{name}" in text, "the header says how to run it"
    assert main(["validate", str(path)]) == 0
    assert "protocol is valid" in capsys.readouterr().out


def test_orientation_tuning_runs(tmp_path):
    tree = neurorecord.run(PROTOCOLS / "orientation-tuning.yaml", tmp_path / "out", quiet=True)
    ds = tree["conv3"].to_dataset()
    assert ds.sizes["presentation"] == 12 * 3 * 4 * 5
    assert sorted(np.unique(ds["orientation"].values)) == list(range(0, 180, 15))
    assert sorted(np.unique(ds["spatial_frequency"].values)) == [0.0625, 0.125, 0.25]
    assert {"phase", "contrast", "jitter_x", "jitter_y", "repetition"} <= set(ds.coords)
    tuned = load_population(tmp_path / "out", "conv3", "orientation-tuned")
    assert 0 < len(tuned) < ds.sizes["neuroid"]
    fit = load_analysis(tmp_path / "out", "conv3", "von-mises")
    assert fit["preferred"].dims == ("neuroid",) and fit["converged"].values.mean() > 0.5


def test_direction_tuning_runs_time_resolved(tmp_path):
    tree = neurorecord.run(PROTOCOLS / "direction-tuning.yaml", tmp_path / "out", quiet=True)
    act = tree["gru"]["activity"]
    assert act.dims == ("presentation", "neuroid", "time_bin") and act.shape == (120, 64, 12)
    enc = load_analysis(tmp_path / "out", "encoder", "dsi")["dsi_vector"].values
    gru = load_analysis(tmp_path / "out", "gru", "dsi")["dsi_vector"].values
    # a layer that sees one frame at a time cannot tell the direction of motion; the recurrent one can
    assert np.nanmedian(enc) < 0.05 < np.nanmedian(gru)


def test_gabor_rf_mapping_runs(tmp_path):
    neurorecord.run(PROTOCOLS / "gabor-rf-mapping.yaml", tmp_path / "out", quiet=True)
    rf = load_analysis(tmp_path / "out", "conv3", "rf-map")
    assert rf["mean"].dims == ("x", "y", "neuroid") and rf.sizes["x"] == rf.sizes["y"] == 9
    assert (load_analysis(tmp_path / "out", "conv3", "rf-x")["q"] < 0.05).sum() > 0


def test_lesion_study_runs(tmp_path):
    """The co-activation population's lesion hurts class 3 more than any of its 50 matched random
    controls, while no single fc3 unit's lesion changes class-3 accuracy significantly."""
    tree = neurorecord.run(PROTOCOLS / "lesion-study.yaml", tmp_path / "out", quiet=True)
    population = tree["lesions/likes3"].to_dataset().load()
    assert population.sizes["lesion"] == 51 and list(population["lesion_kind"].values).count("control") == 50
    three = population.sel({"class": "3"})
    assert float(three["delta_accuracy"][0]) < float(three["delta_accuracy"][1:].min())
    assert float(three["control_percentile"][0]) == 0.0 and float(three["control_p"][0]) == pytest.approx(1 / 51)
    single = tree["lesions/fc3-single"].to_dataset().load()
    assert single.sizes["lesion"] == 100 and float(single["q"].sel({"class": "3"}).min()) >= 0.05
    member = load_analysis(tmp_path / "out", "fc3", "likes-3")["member"].values
    change = single["delta_accuracy"].sel({"class": "3"}).values
    assert change[member].mean() < change[~member].mean()  # members matter more, one by one too, but none alone significantly
    assert tree["lesions/fc2-single"].to_dataset()["unit_change"].sizes["neuroid"] == 110  # fc3 and out


def test_functional_populations_runs(tmp_path):
    """Every region's study is stored: profiles, both clusterings per method, their agreement, the unit-by-unit
    match, indicators, correlations, prediction, and each cluster as a population; labels kept, p in (0, 1]."""
    out = tmp_path / "out"
    tree = neurorecord.run(PROTOCOLS / "functional-populations.yaml", out, quiet=True)
    assert tree.attrs["complete"] is True  # the opened tree, read once (each read of the path opens the whole store)
    for region in ("fc1", "fc2", "fc3"):
        name = f"{region}-populations"
        nodes = ["response_profiles", "lesion_profiles", "match", "indicators", "correlations", "prediction"]
        for label in ("kmeans-gap", "average-silhouette"):
            nodes += [f"clusters/{label}-activity", f"clusters/{label}-lesion", f"agreement/{label}"]
        for node in nodes:
            ds = load_analysis(tree, region, f"{name}/{node}")
            assert ds.attrs["seed"] == 0 and "method" in ds.attrs and "null" in ds.attrs, node
            if "neuroid" in ds.dims:
                assert all(str(i).startswith(f"{region}.") for i in ds["neuroid_id"].values), node
        for label in ("kmeans-gap", "average-silhouette"):
            agreement = load_analysis(tree, region, f"{name}/agreement/{label}")
            assert agreement.attrs["method"] == label.split("-")[0] and agreement.attrs["criterion"] == label.split("-")[1]
            assert ((agreement["p"] > 0) & (agreement["p"] <= 1)).all()
            clusters = load_analysis(tree, region, f"{name}/clusters/{label}-activity")
            k = clusters.attrs["k_chosen"]
            members = [load_population(tree, region, f"{name}/populations/{label}-activity-{j}") for j in range(k)]
            assert sum(len(p) for p in members) == int((clusters["population"] >= 0).sum())
            assert set(members[0].neuroid_ids) <= {str(v) for v in clusters["neuroid_id"].values}
        match = load_analysis(tree, region, f"{name}/match")
        assert 0 < float(match["p"]) <= 1 and float(match["fraction_match"]) > float(match["chance"])
    # `info` lists every study node, region by region in protocol order
    from neurorecord.cli.info import describe_store

    listed = [line.split()[1] for line in describe_store(out).splitlines() if line.startswith("analysis  ")]
    regions_listed = [path.split("/")[1] for path in listed]
    assert regions_listed == sorted(regions_listed, key=["fc1", "fc2", "fc3"].index) and set(regions_listed) == {"fc1", "fc2", "fc3"}
    # fc3 is the region of docs/functional-populations.md: the same numbers
    fc3 = load_analysis(tree, "fc3", "fc3-populations/agreement/kmeans-gap")
    assert (fc3.attrs["k_activity"], fc3.attrs["k_lesion"], fc3.attrs["n_units"]) == (7, 4, 61)
    assert fc3["value"].values.round(2).tolist() == [0.27, 0.38]
    # population lesions against matched controls: the numbers of docs/functional-populations.md
    for region, p_top in {"fc1": (0.48, 0.01, 0.01), "fc2": (0.68, 0.02, 0.01), "fc3": (0.24, 0.03, 0.01)}.items():
        fx = tree[f"lesions/{region}-populations"].to_dataset().load().sel({"class": "overall"})
        kind = fx["lesion_kind"].values
        assert fx.attrs["n_controls"] == 99 and fx.attrs["study"] == f"{region}-populations"
        for name, k in (("kmeans-gap-activity", "k_activity"), ("kmeans-gap-lesion", "k_lesion")):
            k_chosen = load_analysis(tree, region, f"{region}-populations/agreement/kmeans-gap").attrs[k]
            assert sum(str(n).startswith(name) for n in fx["lesion"].values) == k_chosen
        activity_clusters = [n for n in fx["lesion"].values if "-activity-" in str(n)]
        assert (fx["control_q"].sel(lesion=activity_clusters) < 0.05).all(), region  # every co-activation cluster
        tops = fx["control_p"].sel(lesion=["top-selective", "top-magnitude", "top-impact"]).values.round(2).tolist()
        assert tops == list(p_top), (region, tops)
        for size in set(fx["n_units"].values[kind == "population"].tolist()):
            assert ((kind == "control") & (fx["n_units"].values == size)).sum() == 99


_SMALL = """neurorecord: 1
name: small-study
subject: {{zoo: digits-mlp}}
stimuli: [{{name: digits, kind: digits}}]
record: {{regions: [fc2, fc3]}}
lesions:
  - {{name: fc3-single, region: fc3, units: all, evaluate: digits}}
  - {{name: fc3-group, region: fc3, units: [0, 1], evaluate: digits}}
  - {{name: fc2-single, region: fc2, units: all, evaluate: digits}}
study:
  - {{name: fp, kind: functional_populations, region: fc3, {extra}}}
"""


@pytest.mark.parametrize("extra, match", [
    ("lesions: fc3-singel", r"study\[0\]\.lesions: 'fc3-singel' is not a lesions: entry.*sweeps \(units: all\) of 'fc3': fc3-single"),
    ("lesions: fc3-group", r"study\[0\]\.lesions: 'fc3-group' does not lesion each unit alone.*: fc3-single$"),
    ("lesions: fc2-single", r"study\[0\]\.lesions: 'fc2-single' lesions region 'fc2', not the study's region 'fc3'"),
    ("lesions: fc3-single, by: size", r"study\[0\]\.by: 'size' is not a presentation coordinate"),
    ("lesions: fc3-single, methods: [{method: average, criterion: bic}]", r"criterion: 'bic' needs the likelihood of method 'gmm'"),
])
def test_a_bad_study_entry_is_refused_before_anything_is_written(tmp_path, extra, match):
    path = tmp_path / "small.yaml"
    path.write_text(_SMALL.format(extra=extra))
    with pytest.raises(NeurorecordError, match=match) as error:
        neurorecord.run(path, tmp_path / "out", quiet=True)
    assert str(error.value).startswith(f"{path}:"), "the message gives the file and the entry's position"
    assert not (tmp_path / "out").exists()


def test_a_study_named_like_a_lesion_entry_is_refused_when_it_lesions_populations(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(_SMALL.format(extra="lesions: fc3-single").replace("name: fc3-group", "name: fp"))
    with pytest.raises(NeurorecordError, match=r"study\[0\]\.name: 'fp' is also a lesions: entry; the study's population "
                                               r"lesions are written to lesions/fp"):
        neurorecord.load_protocol(path)
    path.write_text(_SMALL.format(extra="lesions: fc3-single, population_lesions: null").replace("name: fc3-group", "name: fp"))
    neurorecord.load_protocol(path)  # without population lesions the names do not meet


def test_population_lesions_null_lesions_no_population(tmp_path):
    path, out = tmp_path / "small.yaml", tmp_path / "out"
    path.write_text(_SMALL.format(extra="lesions: fc3-single, methods: [{method: average, criterion: silhouette}], "
                                        "n_boot: 0, n_perm: 9, population_lesions: null"))
    tree = neurorecord.run(path, out, quiet=True)
    assert "fp" not in tree["lesions"].children and "top-impact" not in tree["analyses/fc3/fp/populations"].children


def test_a_study_interrupted_is_recomputed_whole_on_resume(tmp_path):
    path, out = tmp_path / "small.yaml", tmp_path / "out"
    path.write_text(_SMALL.format(extra="lesions: fc3-single, methods: [{method: average, criterion: silhouette}], "
                                        "n_boot: 5, n_perm: 99, population_lesions: {controls: 9, top_fraction: 0.05}"))
    tree = neurorecord.run(path, out, quiet=True)
    lesioned = tree["lesions/fp"].to_dataset().load()
    populations = lesioned["lesion"].values[lesioned["lesion_kind"].values == "population"].tolist()
    assert {"top-selective", "top-magnitude", "top-impact"} <= set(populations) and len(populations) > 3
    assert load_population(tree, "fc3", "fp/populations/top-impact").table.attrs["k"] == 5
    before = load_analysis(out, "fc3", "fp/agreement/average-silhouette")
    group = store.open_writable(out)  # as if killed while writing the study: its stage, one node gone
    state = store.read_run_state(out)
    state.stage = "studying"
    store.write_run_state(group, state)
    group.attrs["complete"] = False
    store.delete_node(out, "analyses/fc3/fp/agreement")
    store.delete_node(out, "lesions/fp")
    assert store.read_run_state(out).describe().startswith("INCOMPLETE: stage 'studying'")
    tree = neurorecord.run(path, out, resume=True, quiet=True)
    assert tree.attrs["complete"] is True and store.read_run_state(out).stage == "complete"
    after = load_analysis(out, "fc3", "fp/agreement/average-silhouette")
    assert before.identical(after)
    assert tree["lesions/fp"].to_dataset().load().identical(lesioned)


@pytest.mark.slow
def test_functional_populations_cnn_runs_on_a_subset(tmp_path):
    """protocols/functional-populations-cnn.yaml as shipped, cut to conv1 with fewer resamples and
    controls: channels recorded as means, lesioned whole, clustered, and each population lesioned
    against controls of its size."""
    import yaml

    protocol = yaml.safe_load((PROTOCOLS / "functional-populations-cnn.yaml").read_text())
    protocol["record"]["regions"] = ["conv1"]
    protocol["lesions"] = [entry for entry in protocol["lesions"] if entry["region"] == "conv1"]
    sets = ["top-selective", "top-magnitude", "top-impact"]  # clusters too would take minutes of conv passes here
    protocol["study"] = [dict(entry, n_boot=5, n_perm=99, population_lesions={"controls": 9, "sets": sets})
                         for entry in protocol["study"] if entry["region"] == "conv1"]
    path = tmp_path / "cnn.yaml"
    path.write_text(yaml.safe_dump(protocol))
    tree = neurorecord.run(path, tmp_path / "out", quiet=True)
    assert tree["conv1"]["activity"].sizes["neuroid"] == 16
    fx = tree["lesions/conv1-populations"].to_dataset().load()
    kind = fx["lesion_kind"].values
    populations = fx["lesion"].values[kind == "population"].tolist()
    assert sorted(populations) == sorted(sets)
    assert int(fx["n_units"].sel(lesion="top-impact")) == 2  # 10 % of 16 channels
    study = load_analysis(tree, "conv1", "conv1-populations/agreement/kmeans-gap")
    assert study.attrs["n_units"] <= 16 and ((study["p"] > 0) & (study["p"] <= 1)).all()
    sizes = fx["n_units"].values
    for size in set(sizes[kind == "population"].tolist()):
        assert ((kind == "control") & (sizes == size)).sum() == 9
    p = fx["control_p"].sel(lesion=populations).values
    assert ((p >= 0.1) & (p <= 1)).all()  # (1 + #) / (1 + 9)
