"""``neurorecord info --json`` for scripts, and the consolidated metadata of a complete store."""

from __future__ import annotations

import json
import warnings

import numpy as np
import xarray as xr
import zarr

from neurorecord.cli.main import main
from neurorecord.store import is_consolidated
from tests.helpers import DIGITS_MLP


def test_info_json_parses_and_matches_the_store(write_protocol, tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["run", str(write_protocol(DIGITS_MLP)), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["complete"] is True and summary["consolidated"] is True
    assert summary["run"]["presentations"] == 454 and summary["run"]["batches_done"] == 5
    assert summary["protocol"]["name"] == "digits" and summary["seed"] == 0
    expected = []
    for name in ("fc1", "fc2", "fc3"):
        array = zarr.open_array(out / name / "activity", mode="r")
        expected.append((name, {"presentation": 454, "neuroid": array.shape[1]}, list(array.chunks)))
    assert [(r["name"], r["sizes"], r["chunks"]) for r in summary["regions"]] == expected
    assert expected[0][2] == [454, 100]  # a chunk of presentations (5 batches of 100) x every unit (narrower than a unit chunk)
    assert summary["regions"][0]["coords"]["neuroid"] == ["channel", "neuroid_id", "region"]
    correct = xr.open_zarr(out, group="behaviour")["correct"].values
    assert summary["behaviour"]["n_scored"] == 454
    assert summary["behaviour"]["accuracy"] == float(np.mean(correct))
    assert summary["check"] == {"compared": "sizes", "n_files": summary["check"]["n_files"]} and summary["check"]["n_files"] > 10
    # --check --json on a damaged store: exit 2 and the message, as in text mode
    next((out / "fc2" / "activity").glob("c.*")).write_bytes(b"x")
    assert main(["info", str(out), "--json", "--check"]) == 2
    assert "the store is damaged" in capsys.readouterr().err


def test_complete_store_opens_without_warnings_and_resume_consolidates_again(write_protocol, tmp_path, capsys):
    out = tmp_path / "rec"
    protocol = write_protocol(DIGITS_MLP)
    assert main(["run", str(protocol), "--out", str(out), "--quiet"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = xr.open_datatree(out, engine="zarr")
        names = sorted(node.path for node in first.subtree)
        fc2 = first["fc2"]["activity"].values
    assert "/fc2" in names and "/behaviour" in names
    # the run is reopened for writing (as --resume does after an interruption): the old consolidated
    # metadata is not trusted, and completion writes it again
    group = zarr.open_group(out, mode="r+", use_consolidated=False)
    group.attrs.update({"run": dict(group.attrs["run"], stage="analysing"), "complete": False})
    assert not is_consolidated(out)
    assert main(["run", str(protocol), "--out", str(out), "--resume", "--quiet"]) == 0
    assert is_consolidated(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = xr.open_datatree(out, engine="zarr")
        assert sorted(node.path for node in again.subtree) == names
        np.testing.assert_array_equal(again["fc2"]["activity"].values, fc2)
    assert main(["info", str(out), "--check"]) == 0


def test_a_result_added_to_a_complete_store_is_in_its_consolidated_metadata(write_protocol, tmp_path):
    """save_analysis into a finished store (docs/analysis.md does) re-consolidates: the node opens."""
    from neurorecord.analysis import anova, load_analysis, save_analysis

    out = tmp_path / "rec"
    assert main(["run", str(write_protocol(DIGITS_MLP)), "--out", str(out), "--quiet", "--no-report"]) == 0
    tree = xr.open_datatree(out, engine="zarr")
    save_analysis(out, "fc2", "anova-again", anova(tree["fc2"]["activity"], "label"))
    assert is_consolidated(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "/analyses/fc2/anova-again" in {node.path for node in xr.open_datatree(out, engine="zarr").subtree}
    assert "p" in load_analysis(out, "fc2", "anova-again")
    assert main(["info", str(out), "--check"]) == 0  # the manifest still holds
