"""The examples run, docs/protocol.md documents every schema key with valid examples, and the
snippets of docs/analysis.md run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import neurorecord
from neurorecord.cli.main import main
from neurorecord.protocol import protocol_from_text
from neurorecord.interop import ecker2010_path
from tests.helpers import ECKER_FILE

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
PROTOCOL_DOC = REPO / "docs" / "protocol.md"
ANALYSIS_DOC = REPO / "docs" / "analysis.md"
ECKER_FILE = ecker2010_path() or ECKER_FILE


def test_read_recording_prints_tables(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "read_recording.py"), str(out)],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "mean activity per digit label" in text
    assert re.search(r"^\s+fc1\s+fc2\s+fc3\s*$", text, re.M), text  # table header: one column per region
    assert "fc3 unit with the highest mean response to each digit" in text
    assert re.search(r"^label\s+neuroid_id\s+mean response$", text, re.M), text
    rows = re.findall(r"^\s+(\d)\s+(fc3\.\d+)\s+\d+\.\d+$", text, re.M)
    assert [label for label, _ in rows] == [str(d) for d in range(10)]
    assert neurorecord.open_recording(out)["fc3"]["activity"].shape == (454, 100)


def test_my_model_protocol_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "my-model"
    assert main(["run", str(REPO / "protocols" / "entry-point.yaml"), "--out", str(out), "--quiet"]) == 0
    tree = neurorecord.open_recording(out)
    assert tree.attrs["regions"] == ["conv", "hidden"]
    assert set(tree.children) == {"conv", "hidden", "behaviour"}
    assert tree["conv"]["activity"].shape == (454, 8)  # 8 channels, mean over space
    assert tree["hidden"]["activity"].shape == (454, 48)  # kwargs: {hidden: 48}
    assert tree.attrs["subject"]["source"]["entry_point"] == "my_model:build"
    assert tree.attrs["subject"]["source"]["kwargs"] == {"hidden": 48}
    assert list(tree["hidden"]["neuroid_id"].values[:2]) == ["hidden.0", "hidden.1"]


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"^```yaml[ \t]*\n(.*?)^```", text, re.M | re.S)


def _is_protocol(block: str) -> bool:
    """Whether a block's first line that is not blank or a comment is ``neurorecord: 1``."""
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines) and re.fullmatch(r"neurorecord:\s*1\s*(#.*)?", lines[0]) is not None


def test_protocol_doc_yaml_examples_validate() -> None:
    blocks = [b for b in _yaml_blocks(PROTOCOL_DOC.read_text(encoding="utf-8")) if _is_protocol(b)]
    assert len(blocks) >= 8, "expected the protocol page's complete examples"
    for i, block in enumerate(blocks):
        protocol_from_text(block, path=PROTOCOL_DOC.parent / f"protocol.md-example-{i}.yaml")  # raises ProtocolError


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python[ \t]*\n(.*?)^```", text, re.M | re.S)


@pytest.mark.slow
def test_analysis_doc_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/analysis.md's snippets run in order in one namespace, as a reader would run them.

    The V1 snippets (from the first that reads the Ecker et al. 2010 file to the end of the page)
    need the data file and are skipped without it; the dask.distributed snippet needs
    distributed, an optional extra.
    """
    blocks = _python_blocks(ANALYSIS_DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 10, "expected the analysis page's snippets"
    monkeypatch.chdir(tmp_path)  # the snippets record into runs/digits
    if ECKER_FILE.is_file():
        monkeypatch.setenv("NEURORECORD_ECKER2010", str(ECKER_FILE))
    try:
        import distributed  # noqa: F401
        has_distributed = True
    except ImportError:
        has_distributed = False
    namespace: dict = {"__name__": "analysis_md"}
    skipped = []
    for i, block in enumerate(blocks):
        if "read_ecker2010" in "".join(blocks[: i + 1]) and not ECKER_FILE.is_file():
            skipped.append(i)
            continue
        if "dask.distributed" in block and not has_distributed:
            skipped.append(i)
            continue
        try:
            exec(compile(block, f"{ANALYSIS_DOC.name}, snippet {i}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which snippet failed
            raise AssertionError(f"docs/analysis.md snippet {i} failed: {type(exc).__name__}: {exc}\n{block}") from exc
    if ECKER_FILE.is_file():
        assert namespace["direction_tuned"].neuroid_ids, "the V1 snippets ran"
    assert len(namespace["responsive"]) > 0


@pytest.mark.slow
def test_functional_populations_page_runs_and_its_numbers_are_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """docs/functional-populations.md's snippets run in order, and the numbers it quotes for the
    default run are what they print."""
    import shutil

    shutil.copytree(REPO / "protocols", tmp_path / "protocols")
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks((REPO / "docs" / "functional-populations.md").read_text(encoding="utf-8"))
    assert len(blocks) == 6
    ns: dict = {"__name__": "functional_populations_md"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"functional-populations.md, snippet {i}", "exec"), ns)
    assert int(ns["response"]["silent"].sum()) == 20 and int(ns["lesion"]["silent"].sum()) == 39
    assert (ns["by_activity"].attrs["k_chosen"], ns["by_lesion"].attrs["k_chosen"]) == (7, 4)
    assert round(float(ns["by_activity"]["stability"]), 2) == 0.44 and round(float(ns["by_lesion"]["stability"]), 2) == 0.49
    agreement = ns["agreement"]
    assert agreement.attrs["n_units"] == 61
    assert round(float(agreement["value"].sel(measure="ari")), 2) == 0.27 and round(float(agreement["value"].sel(measure="ami")), 2) == 0.38
    assert (agreement["p"].values == 0.001).all()
    match = ns["match"]
    assert round(float(match["fraction_match"]) * 61) == 24 and round(float(match["chance"]), 2) == 0.21 and float(match["p"]) == 0.001
    rho = ns["correlations"]["spearman"].sel(indicator2="lesion_impact")
    assert round(float(rho.sel(indicator="magnitude")), 2) == 0.40 and round(float(rho.sel(indicator="csi")), 2) == -0.25
    assert round(float(rho.sel(indicator="lifetime_sparseness")), 2) == -0.11
    prediction = ns["prediction"]
    assert float(prediction["recall"].sel(indicator="magnitude")) == 0.3 and round(float(prediction["p"].sel(indicator="magnitude")), 2) == 0.07
    assert float(prediction["recall"].max()) < 0.5  # no indicator finds most of the damaging units
