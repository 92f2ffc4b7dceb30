"""The examples run, and docs/protocol.md documents every schema key with valid examples."""

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
from neurorecord.protocol.schema import STIMULUS_KINDS, DigitsStimuli, NpyStimuli, Protocol, RecordSpec, SubjectSpec

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
PROTOCOL_DOC = REPO / "docs" / "protocol.md"
SCHEMA_MODELS = [Protocol, SubjectSpec, DigitsStimuli, NpyStimuli, RecordSpec]


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
    assert main(["run", str(EXAMPLES / "my-model.yaml"), "--out", str(out), "--quiet"]) == 0
    tree = neurorecord.open_recording(out)
    assert tree.attrs["regions"] == ["conv", "hidden"]
    assert set(tree.children) == {"conv", "hidden"}
    assert tree["conv"]["activity"].shape == (454, 8)  # 8 channels, mean over space
    assert tree["hidden"]["activity"].shape == (454, 48)  # kwargs: {hidden: 48}
    assert tree.attrs["subject"]["source"]["entry_point"] == "my_model:build"
    assert tree.attrs["subject"]["source"]["kwargs"] == {"hidden": 48}
    assert list(tree["hidden"]["neuroid_id"].values[:2]) == ["hidden.0", "hidden.1"]


def test_protocol_doc_names_every_schema_key() -> None:
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    missing = [f"{model.__name__}.{name}" for model in SCHEMA_MODELS for name in model.model_fields if f"`{name}`" not in text]
    assert not missing, f"docs/protocol.md does not mention these schema keys in backticks: {missing}"
    kinds = [kind for kind in STIMULUS_KINDS if f"`{kind}`" not in text]
    assert not kinds, f"docs/protocol.md does not document these stimulus kinds: {kinds}"


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
