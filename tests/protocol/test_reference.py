"""The protocol reference in docs/protocol.md is the one the schema gives today."""

from __future__ import annotations

import subprocess
import sys

from neurorecord.protocol.reference import END, REGENERATE, START, render_reference, write_reference
from neurorecord.protocol.schema import STIMULUS_KINDS
from tests.conftest import REPO

DOC = REPO / "docs" / "protocol.md"


def test_docs_reference_matches_schema():
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOC} lost its reference markers {START} ... {END}"
    written = text[text.index(START) + len(START):text.index(END)]
    assert written == "\n" + render_reference(), (
        f"docs/protocol.md's protocol reference is out of date with the schema; regenerate it with: {REGENERATE}"
    )


def test_reference_covers_every_kind_and_key():
    reference = render_reference()
    for kind, model in STIMULUS_KINDS.items():
        assert f"`{kind}`" in reference, kind
        for key in model.model_fields:
            assert f"| `{key}` |" in reference, f"{kind}.{key}"
    for line in ("| `batch_size` | integer > 0 | `256` |", "| `reduce` | `mean`, `max`, `center` or `none` | `mean` |",
                 "| `fraction` | number in (0, 1] | required |"):
        assert line in reference


def test_write_replaces_only_the_region(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nbefore\n\n{START}\nstale\n{END}\n\nafter\n")
    assert write_reference(doc) is True
    text = doc.read_text()
    assert text.startswith("# Title\n\nbefore\n\n" + START + "\n") and text.endswith(END + "\n\nafter\n")
    assert "stale" not in text and render_reference() in text
    assert write_reference(doc) is False


def test_module_command_writes(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(f"{START}\n{END}\n")
    done = subprocess.run([sys.executable, "-m", "neurorecord.protocol.reference", "--write", str(doc)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip() == f"{doc}: protocol reference updated", done.stderr
    missing = tmp_path / "no-markers.md"
    missing.write_text("# nothing\n")
    done = subprocess.run([sys.executable, "-m", "neurorecord.protocol.reference", "--write", str(missing)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "no reference region" in done.stderr and "Traceback" not in done.stderr
