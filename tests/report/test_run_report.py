"""`neurorecord run` writes the report as its last stage (``reporting``), skips it with
``--no-report``, and a run interrupted while reporting writes it on ``--resume``."""

from __future__ import annotations

import neurorecord
from neurorecord import store
from neurorecord.cli.main import main
from neurorecord.report import default_report_dir


def test_run_writes_the_report_last_and_no_report_skips_it(tmp_path, capsys):
    protocol = neurorecord.default_protocol_path()
    assert main(["run", str(protocol), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    index = default_report_dir(tmp_path / "a") / "index.html"
    assert index.is_file() and "fc2" in index.read_text(encoding="utf-8")
    assert store.read_run_state(tmp_path / "a").complete
    assert main(["run", str(protocol), "--out", str(tmp_path / "b"), "--quiet", "--no-report"]) == 0
    assert not default_report_dir(tmp_path / "b").exists() and store.read_run_state(tmp_path / "b").complete


def test_a_run_interrupted_while_reporting_writes_the_report_on_resume(tmp_path):
    protocol, out = neurorecord.default_protocol_path(), tmp_path / "run"
    neurorecord.run(protocol, out, quiet=True)  # the Python API writes no report unless asked
    assert not default_report_dir(out).exists()
    group = store.open_writable(out)  # as if killed while writing the report
    state = store.read_run_state(out)
    state.stage = "reporting"
    store.write_run_state(group, state)
    group.attrs["complete"] = False
    assert store.read_run_state(out).describe().startswith("INCOMPLETE: stage 'reporting'")
    tree = neurorecord.run(protocol, out, resume=True, quiet=True, report=True)
    assert tree.attrs["complete"] is True and (default_report_dir(out) / "index.html").is_file()
