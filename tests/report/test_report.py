"""The HTML report: every section, tables equal to the store, nothing from the network, atomic
replacement, and errors that name the path."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neurorecord
from neurorecord import plot
from neurorecord.cli.main import main
from neurorecord.errors import IncompleteRecordingError, StoreError
from neurorecord.report import ReportError, default_report_dir, write_report
from neurorecord.report._html import slug
from neurorecord.store import load_result_node


@pytest.fixture(scope="module")
def digits_report(digits_store, tmp_path_factory) -> Path:
    return write_report(digits_store, tmp_path_factory.mktemp("out") / "digits.report")


@pytest.fixture(scope="module")
def study_report(study_store) -> Path:
    return write_report(study_store)


def _anchors(index: Path) -> set[str]:
    return set(re.findall(r'<details id="([^"]+)"', index.read_text()))


def _result_nodes(store: Path) -> list[str]:
    """analyses/<region>/<name> (an analysis or a study) and lesions/<name>, as in the store."""
    tree = neurorecord.open_recording(store)
    nodes = []
    for top in ("analyses", "lesions"):
        if top in tree.children:
            for child in tree[top].children.values():
                nodes += [c.path.strip("/") for c in child.children.values()] if top == "analyses" else [child.path.strip("/")]
    return nodes


def test_every_section_of_the_default_protocol(digits_store, digits_report):
    anchors = _anchors(digits_report)
    assert {"protocol", "provenance", "regions", "behaviour", "stimuli"} <= anchors
    nodes = _result_nodes(digits_store)
    assert len(nodes) == 12  # 3 regions x (tuning, responsive, csi, likes-3)
    assert {slug(n) for n in nodes} <= anchors
    text = digits_report.read_text()
    assert neurorecord.open_recording(digits_store).attrs["protocol_sha256"] in text
    assert "Accuracy 0.9692 on 454 labelled presentations" in text
    assert "bootstrap CI over trials" in text  # captions say which statistic
    # a table of contents linking every section, and sections that collapse without a script
    toc = set(re.findall(r'<a href="#([^"]+)"', text))
    assert anchors <= toc and "<script" not in text


def test_every_section_of_a_study_with_lesions(study_store, study_report):
    anchors = _anchors(study_report)
    nodes = _result_nodes(study_store)
    assert set(nodes) == {"analyses/fc3/csi", "analyses/fc3/fc3-populations", "lesions/fc3-single", "lesions/fc3-populations"}
    assert {slug(n) for n in nodes} | {"protocol", "provenance", "regions", "behaviour", "stimuli", "lesions"} <= anchors
    figures = {p.name for p in (study_report.parent / "figures").iterdir()}
    for name in ("lesions-fc3-single-heatmap-single.png", "lesions-fc3-populations-controls.png",
                 "analyses-fc3-fc3-populations-indicators.png", "analyses-fc3-fc3-populations-average-silhouette-activity.png"):
        assert name in figures
    # every <img> of the page is a file of the report, and every figure file is shown
    shown = set(re.findall(r'<img src="([^"]+)"', study_report.read_text()))
    assert shown == {f"figures/{f}" for f in figures}


def test_csv_tables_equal_the_store(study_store, study_report):
    tables = study_report.parent / "tables"
    csi = pd.read_csv(tables / "analyses-fc3-csi-neuroid.csv")
    stored = load_result_node(study_store, "analyses/fc3/csi")
    assert csi["neuroid_id"].tolist() == [str(v) for v in stored["neuroid_id"].values]
    np.testing.assert_array_equal(csi["csi"].to_numpy(), stored["csi"].values)  # NaN where the unit is silent

    lesions = load_result_node(study_store, "lesions/fc3-populations")
    long = pd.read_csv(tables / "lesions-fc3-populations-lesion-class.csv", dtype={"class": str})
    for var in ("delta_accuracy", "control_p", "control_median", "q"):
        table = long.pivot(index="lesion", columns="class", values=var)
        expected = lesions[var].transpose("lesion", "class").to_pandas()
        expected.index, expected.columns = [str(v) for v in expected.index], [str(v) for v in expected.columns]
        pd.testing.assert_frame_equal(table.loc[expected.index, expected.columns], expected, check_names=False)
    per_lesion = pd.read_csv(tables / "lesions-fc3-populations-per-lesion.csv")
    np.testing.assert_array_equal(per_lesion["delta_accuracy (overall)"],
                                  lesions["delta_accuracy"].sel({"class": "overall"}).values)
    # a table on the page links its CSV file
    assert 'href="tables/lesions-fc3-populations-per-lesion.csv"' in study_report.read_text()


def test_nothing_is_fetched_from_the_network(digits_report, study_report):
    for index in (digits_report, study_report):
        text = index.read_text()
        assert not re.search(r"https?://", text), "a network URL in the report"
        links = re.findall(r'(?:src|href)="([^"]*)"', text)
        assert links and not [u for u in links if u.startswith("//") or ":" in u.split("/")[0]]
        for rel in (u for u in links if not u.startswith("#")):
            assert (index.parent / rel).is_file(), rel
        assert not re.search(r"<link|@import|url\(", text)


def test_rerun_replaces_the_report_cleanly(digits_store, tmp_path):
    out = tmp_path / "r"
    index = write_report(digits_store, out)
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "figures" / "stray.png").write_bytes(b"left by someone")
    assert write_report(digits_store, out) == index
    again = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert again == first  # same files, same bytes, the stray one gone
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no temporary folder left


def test_a_failed_report_leaves_nothing_that_looks_complete(digits_store, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    out = tmp_path / "report"
    monkeypatch.setattr(plot, "selective_units", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        write_report(digits_store, out)
    assert list(tmp_path.iterdir()) == []  # neither the report nor its temporary folder
    monkeypatch.undo()
    write_report(digits_store, out)
    before = (out / "index.html").read_bytes()
    monkeypatch.setattr(plot, "selective_units", broken)
    with pytest.raises(RuntimeError):
        write_report(digits_store, out)
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    assert (out / "index.html").read_bytes() == before  # the earlier complete report, untouched


def test_a_killed_report_is_cleaned_up_by_the_next(digits_store, tmp_path):
    out = tmp_path / "report"
    partial = tmp_path / ".report.partial-deadbeef"  # what a killed report leaves: a hidden, partial folder
    (partial / "figures").mkdir(parents=True)
    write_report(digits_store, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_errors_name_the_path(digits_store, tmp_path):
    with pytest.raises(StoreError, match=re.escape(str(tmp_path / "missing")) + ": does not exist"):
        write_report(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match=re.escape(str(tmp_path / "plain")) + ": is not a neurorecord store"):
        write_report(tmp_path / "plain")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(digits_store, unfinished)
    root = json.loads((unfinished / "zarr.json").read_text())
    root["attributes"]["run"]["stage"] = "analysing"
    (unfinished / "zarr.json").write_text(json.dumps(root))
    with pytest.raises(IncompleteRecordingError, match=re.escape(str(unfinished))):
        write_report(unfinished)
    assert not default_report_dir(unfinished).exists()
    assert write_report(unfinished, allow_incomplete=True).is_file()  # the run's own reporting stage


@pytest.mark.parametrize("where, message", [
    ("inside", "is inside the store"),
    ("file", "expected a folder for the report, found a file"),
    ("foreign", "holds no neurorecord report"),
])
def test_refuses_an_out_folder_it_must_not_replace(digits_store, tmp_path, where, message):
    out = {"inside": digits_store / "report", "file": tmp_path / "file", "foreign": tmp_path / "mine"}[where]
    if where == "file":
        out.write_text("x")
    if where == "foreign":
        out.mkdir()
        (out / "thesis.tex").write_text("keep me")
    with pytest.raises(ReportError, match=f"--out {re.escape(str(out))}: .*{message}"):
        write_report(digits_store, out)
    assert where != "foreign" or (out / "thesis.tex").read_text() == "keep me"
    assert not (digits_store / "report").exists()


def test_command_line(digits_store, tmp_path, capsys):
    out = tmp_path / "cli-report"
    assert main(["report", str(digits_store), "--out", str(out)]) == 0
    assert (out / "index.html").is_file() and str(out / "index.html") in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert f"error: {tmp_path / 'nothing'}: does not exist" in capsys.readouterr().err
