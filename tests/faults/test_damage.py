"""Damaged stores do not look complete: a missing or changed file is found and named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurorecord
from neurorecord.cli.main import main
from neurorecord.errors import DamagedStoreError
from neurorecord.store import FORMAT, check_files


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("damage") / "digits"
    neurorecord.run(neurorecord.default_protocol_path(), out, quiet=True)
    return out


@pytest.fixture
def store(complete: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "digits"
    shutil.copytree(complete, copy)
    return copy


def test_an_intact_store_passes_both_checks(store, capsys):
    assert check_files(store) == [] and check_files(store, checksums=True) == []
    assert main(["info", str(store), "--check"]) == 0
    assert "sizes and CRC-32 of all" in capsys.readouterr().out


def test_a_deleted_chunk_is_named_on_open(store):
    """It used to read back as NaN under a 'complete' store."""
    (store / "fc2" / "activity" / "c.0.0").unlink()  # the default protocol's one chunk (2 batches of 256)
    with pytest.raises(DamagedStoreError, match=r"fc2/activity/c\.0\.0 is missing \(chunk of array fc2/activity\)"):
        neurorecord.open_recording(store)
    tree = neurorecord.open_recording(store, verify="none")  # still readable when asked
    assert np.isnan(tree["fc2"]["activity"].values).all() and not np.isnan(tree["fc1"]["activity"].values).any()


def test_a_garbage_chunk_is_named_by_the_checksum_check(store, capsys):
    """It used to give a decompression error naming no file."""
    chunk = store / "fc3" / "activity" / "c.0.0"
    data = bytearray(chunk.read_bytes())
    data[20:28] = b"garbage!"
    chunk.write_bytes(bytes(data))
    neurorecord.open_recording(store)  # the default check compares sizes only: same size passes
    with pytest.raises(DamagedStoreError, match=r"fc3/activity/c\.0\.0 has changed \(CRC-32 differs\)"):
        neurorecord.open_recording(store, verify="checksums")
    assert main(["info", str(store), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fc3/activity/c.0.0 has changed" in err


def test_a_truncated_metadata_file_is_named(store):
    meta = store / "behaviour" / "predicted" / "zarr.json"
    meta.write_text(meta.read_text()[:-10])
    with pytest.raises(DamagedStoreError, match=r"behaviour/predicted/zarr.json has \d+ bytes, expected \d+ \(metadata\)"):
        neurorecord.open_recording(store)


def test_a_newer_format_is_refused_with_both_versions(store):
    root = store / "zarr.json"
    meta = json.loads(root.read_text())
    meta["attributes"]["neurorecord_format"] = FORMAT + 1
    root.write_text(json.dumps(meta))
    with pytest.raises(DamagedStoreError, match=rf"store format {FORMAT + 1} was written by a newer neurorecord; .* reads formats 1 to {FORMAT}"):
        neurorecord.open_recording(store)
    proc = subprocess.run([sys.executable, "-m", "neurorecord.cli.main", "info", str(store)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "newer neurorecord" in proc.stderr


def test_an_older_store_without_manifest_is_read_and_says_so(store, capsys):
    root = store / "zarr.json"
    meta = json.loads(root.read_text())
    meta["attributes"]["neurorecord_format"] = 1
    del meta["attributes"]["manifest"]
    root.write_text(json.dumps(meta))
    assert neurorecord.open_recording(store)["fc1"]["activity"].shape == (454, 100)
    assert main(["info", str(store)]) == 0
    assert "no manifest (store format 1)" in capsys.readouterr().out
