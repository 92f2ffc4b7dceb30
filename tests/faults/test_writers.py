"""Writers and resume, tried as a hostile user would, with real processes.

One writer at a time, whatever the timing; a resume never mixes data from changed inputs;
``--overwrite`` never deletes what the store did not write.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import neurorecord
from neurorecord.errors import StoreError
from neurorecord.store import read_run_state
from tests.helpers import DIGITS_MLP

# 908 presentations in 10 batches: a second or two of recording, so starts overlap
PROTOCOL = DIGITS_MLP.replace("reduce: mean", "reduce: mean\n  repetitions: 2")
CLI = [sys.executable, "-m", "neurorecord.cli.main", "run"]
LOCKED = "another neurorecord process is writing this store"


def _same_store(a: Path, b: Path) -> None:
    ta, tb = neurorecord.open_recording(a), neurorecord.open_recording(b)
    assert set(ta.children) == set(tb.children)
    for region in ta.attrs["regions"]:
        assert ta[region]["activity"].values.tobytes() == tb[region]["activity"].values.tobytes()
    assert ta["behaviour"]["output"].values.tobytes() == tb["behaviour"]["output"].values.tobytes()


@pytest.mark.slow
def test_concurrent_starts_in_every_mode_leave_one_valid_store(write_protocol, tmp_path):
    """Six processes start together on a new --out (plain, --resume, --overwrite, twice each): every
    loser ends with the one-line error, and the store is the one an uncontested run writes."""
    path = write_protocol(PROTOCOL)
    reference = tmp_path / "reference"
    neurorecord.run(path, reference, quiet=True)
    out = tmp_path / "contested"
    modes = [[], ["--resume"], ["--overwrite"]] * 2
    procs = [subprocess.Popen(CLI + [str(path), "--out", str(out), "--quiet", *m], stderr=subprocess.PIPE, text=True) for m in modes]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for (code, err), mode in zip(results, modes):
        assert "Traceback" not in err, err
        if code != 0:
            assert code == 2, err
            lines = [line for line in err.strip().splitlines() if line]
            assert len(lines) == 1 and lines[0].startswith("error: "), err
            assert LOCKED in err or "already holds a complete recording" in err or "holds an unfinished recording" in err, err
    assert any(code == 0 for code, _ in results)
    assert read_run_state(out).complete
    _same_store(reference, out)


# a subject that, once recording (batches larger than the 2-image probe), waits for a file before going on
GATED = """
import os, time
import torch
from torch import nn

class Gate(nn.Module):
    def forward(self, x):
        deadline = time.monotonic() + 120
        while x.shape[0] > 2 and not os.path.exists(os.environ["NEURORECORD_TEST_GATE"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        return x

def build():
    torch.manual_seed(0)
    return nn.Sequential(Gate(), nn.Flatten(), nn.Linear(64, 10))
"""


def test_writers_started_during_a_run_are_refused_and_the_first_finishes(write_protocol, tmp_path, monkeypatch):
    """A plain run, a --resume and an --overwrite started while a run records are each refused,
    deleting nothing; the first run then finishes a complete store."""
    (tmp_path / "gated.py").write_text(GATED)
    gate = tmp_path / "open-the-gate"
    monkeypatch.setenv("NEURORECORD_TEST_GATE", str(gate))
    path = write_protocol(DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'gated:build'").replace("[fc1, fc2, fc3]", "['2']"))
    out = tmp_path / "out"
    first = subprocess.Popen(CLI + [str(path), "--out", str(out), "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the first writer is recording (held at its first batch)
        state = read_run_state(out) if (out / "zarr.json").exists() else None
        if state is not None and state.stage == "recording":
            break
        time.sleep(0.005)
    later = [subprocess.Popen(CLI + [str(path), "--out", str(out), "--quiet", *mode], stderr=subprocess.PIPE, text=True)
             for mode in ([], ["--resume"], ["--overwrite"])]
    for proc in later:
        code, err = proc.wait(timeout=300), proc.stderr.read()
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and LOCKED in err, err
    assert read_run_state(out).stage == "recording"  # the refused writers deleted and wrote nothing
    gate.touch()
    assert first.wait(timeout=300) == 0, first.stderr.read()
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    assert attrs["complete"] is True and attrs["protocol_text"] == path.read_text()
    assert neurorecord.open_recording(out)["2"]["activity"].notnull().all()


def _kill_while_recording(path: Path, out: Path) -> None:
    proc = subprocess.Popen(CLI + [str(path), "--out", str(out), "--quiet"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        state = read_run_state(out) if (out / "zarr.json").exists() else None
        if state is not None and state.stage == "recording" and state.batches_done >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    proc.wait()
    state = read_run_state(out)
    assert state is not None and not state.complete, "the run ended before it could be killed"


NPY_PROTOCOL = PROTOCOL.replace("    split: test\n", "    split: test\n  - name: extra\n    kind: npy\n    path: imgs.npy\n")
STATE_DICT_PROTOCOL = PROTOCOL.replace("zoo: digits-mlp", "entry_point: 'net:build'\n  state_dict: weights.pt").replace(
    "[fc1, fc2, fc3]", "['1']")
NET = "from torch import nn\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n"


def _weights(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).state_dict()


@pytest.mark.parametrize("change", ["stimulus file", "weights file", "entry-point source"])
def test_resume_refuses_changed_inputs_naming_them(write_protocol, tmp_path, change):
    """The regression of a resume that completed the store with rows from the old and the new inputs."""
    rng = np.random.default_rng(0)
    if change == "stimulus file":
        np.save(tmp_path / "imgs.npy", rng.random((300, 1, 8, 8), dtype=np.float32))
        path = write_protocol(NPY_PROTOCOL)
    else:
        (tmp_path / "net.py").write_text(NET)
        torch.save(_weights(0), tmp_path / "weights.pt")
        path = write_protocol(STATE_DICT_PROTOCOL)
    out = tmp_path / "out"
    _kill_while_recording(path, out)
    if change == "stimulus file":
        np.save(tmp_path / "imgs.npy", rng.random((300, 1, 8, 8), dtype=np.float32))  # same shape, new content
        named = "stimulus set 'extra'"
    elif change == "weights file":
        torch.save(_weights(1), tmp_path / "weights.pt")
        named = "subject weights (sha256)"
    else:
        (tmp_path / "net.py").write_text(NET.replace("nn.Flatten(), ", "nn.Flatten(start_dim=1), "))
        named = "subject source"
    before = (out / "zarr.json").read_text()
    with pytest.raises(StoreError, match=r"cannot resume: the run.s inputs changed since it started \(" + re.escape(named)):
        neurorecord.run(path, out, resume=True, quiet=True)
    assert (out / "zarr.json").read_text() == before  # nothing written
    proc = subprocess.run(CLI + [str(path), "--out", str(out), "--quiet", "--resume"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and named in proc.stderr
    # unchanged inputs resume as before
    assert neurorecord.run(path, out, overwrite=True, quiet=True).attrs["complete"]


def test_overwrite_never_deletes_what_the_store_did_not_write(write_protocol, tmp_path):
    path = write_protocol(DIGITS_MLP)
    out = tmp_path / "out"
    neurorecord.run(path, out, quiet=True)
    (out / "notes.txt").write_text("my notes")
    (out / "figures").mkdir()
    with pytest.raises(StoreError, match=r"also holds what the store did not write: figures, notes.txt; move those away"):
        neurorecord.run(path, out, overwrite=True, quiet=True)
    assert (out / "notes.txt").read_text() == "my notes" and (out / "figures").is_dir()
    assert neurorecord.open_recording(out).attrs["complete"]
    (out / "notes.txt").unlink()
    (out / "figures").rmdir()
    assert neurorecord.run(path, out, overwrite=True, quiet=True).attrs["complete"]
