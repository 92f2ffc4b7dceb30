"""The broken-protocol corpus: every ``tests/protocol/broken/*.yaml`` is refused with its own message.

Each file starts with two comment lines::

    # expect: <a substring of the error message: the key path and the value found>
    # why: <the mistake, in a neuroscientist's words>

and, only where the mistake has no place in the file (an empty file), a third line
``# position: none``. Every file is run with ``neurorecord run FILE --out DIR``: the exit status
must be 2, stderr must hold the expected text, name the file with ``line:col`` (unless
``position: none``), show no traceback, and ``DIR`` must not have been created. Files a protocol
needs (an entry point's module) sit next to it with another extension (``models_for_broken.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from neurorecord.cli.main import main

BROKEN = Path(__file__).parent / "broken"
CORPUS = sorted(BROKEN.glob("*.yaml"))


def _header(path: Path) -> dict[str, str]:
    """The ``# key: value`` comment lines at the top of a corpus file."""
    header = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"# (\w+): (.*)", line)
        if not match:
            break
        header[match.group(1)] = match.group(2).strip()
    return header


def _check_refusal(path: Path, status: int, err: str, out: Path) -> None:
    header = _header(path)
    assert status == 2, f"{path.name}: exit status {status}, expected 2; stderr:\n{err}"
    assert err.startswith("error: ") and "Traceback" not in err, f"{path.name}: stderr:\n{err}"
    assert header["expect"] in err, f"{path.name}: expected {header['expect']!r} in stderr:\n{err}"
    if not header.get("position", "").startswith("none"):
        assert re.search(re.escape(str(path.resolve())) + r":\d+:\d+: ", err), f"{path.name}: no FILE:LINE:COL in:\n{err}"
    assert not out.exists(), f"{path.name}: the output folder was created"


def test_corpus_is_large_and_well_formed():
    assert len(CORPUS) >= 30
    headers = {path.name: _header(path) for path in CORPUS}
    for name, header in headers.items():
        assert len(header.get("expect", "")) >= 20, f"{name}: first line must be '# expect: <specific message text>'"
        assert header.get("why"), f"{name}: second line must be '# why: <the mistake>'"
    expects = [h["expect"] for h in headers.values()]
    assert len(set(expects)) == len(expects), "two corpus files expect the same message: each must cover its own mistake"
    assert len([p for p in CORPUS if p.name.startswith("core-")]) >= 24


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_broken_protocol_refused(path, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["run", str(path), "--out", str(out), "--quiet"])
    _check_refusal(path, status, capsys.readouterr().err, out)


@pytest.mark.parametrize("name", ["core-yaml-syntax", "core-entry-callable-missing", "core-lesion-units-misspelt"])
def test_broken_protocol_refused_by_the_command(name, tmp_path):
    """The same through a real process: nothing but the message reaches the terminal."""
    path = BROKEN / f"{name}.yaml"
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "neurorecord.cli.main", "run", str(path), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    _check_refusal(path, done.returncode, done.stderr, out)
    assert done.stdout == ""
