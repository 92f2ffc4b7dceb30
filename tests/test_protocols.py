"""Every protocol in protocols/ validates, runs, and gives the result its header describes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neurorecord
from neurorecord.analysis.runner import load_analysis, load_population
from neurorecord.cli.main import main

PROTOCOLS = Path(__file__).resolve().parents[1] / "protocols"
ALL = sorted(p.name for p in PROTOCOLS.glob("*.yaml"))


def test_the_promised_protocols_exist():
    assert {"digits.yaml", "orientation-tuning.yaml", "direction-tuning.yaml", "gabor-rf-mapping.yaml", "entry-point.yaml",
            "lesion-study.yaml"} <= set(ALL)


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
