"""Crash safety: a run killed with SIGKILL, then resumed, equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import neurorecord
from neurorecord.errors import IncompleteRecordingError
from neurorecord.store import read_run_state
from tests.helpers import DIGITS_MLP

# 2,724 presentations in 43 batches of 64, three regions with full conv maps: long enough to be killed mid-way
PROTOCOL = (
    DIGITS_MLP.replace("digits-mlp", "digits-cnn")
    .replace("[fc1, fc2, fc3]", "[conv1, conv2, fc1]")
    .replace("batch_size: 100", "batch_size: 64")
    .replace("reduce: mean", "reduce: none\n  repetitions: 6")
)


def _stage(out: Path) -> tuple[str, int]:
    try:
        state = json.loads((out / "zarr.json").read_text())["attributes"]["run"]
        return state["stage"], state["batches_done"]
    except (FileNotFoundError, KeyError, ValueError):
        return "absent", 0


def _run_and_kill(protocol: Path, out: Path, resume: bool, kill_when) -> tuple[str, int, bool]:
    """Start `neurorecord run` in a subprocess and SIGKILL it once kill_when(stage, done) holds."""
    cmd = [sys.executable, "-m", "neurorecord.cli.main", "run", str(protocol), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd + (["--resume"] if resume else []), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        stage, done = _stage(out)
        if kill_when(stage, done):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return stage, done, True
        time.sleep(0.0005)
    proc.wait()
    assert proc.returncode == 0, proc.stderr.read().decode()
    return _stage(out) + (False,)


def _assert_same_store(a, b) -> None:
    assert set(a.children) == set(b.children)
    for region in a.attrs["regions"]:
        da, db = a[region].to_dataset(), b[region].to_dataset()
        assert da["activity"].values.tobytes() == db["activity"].values.tobytes()
        assert not np.isnan(db["activity"].values).any()
        for name in da.coords:
            assert np.array_equal(da[name].values, db[name].values), name
    ba, bb = a["behaviour"].to_dataset(), b["behaviour"].to_dataset()
    for name in ("output", "predicted", "correct"):
        assert ba[name].values.tobytes() == bb[name].values.tobytes(), name


@pytest.mark.slow
def test_sigkill_at_many_points_then_resume(write_protocol, tmp_path):
    protocol = write_protocol(PROTOCOL)
    reference = neurorecord.run(protocol, tmp_path / "reference", quiet=True)
    out = tmp_path / "killed"
    kill_points = [
        lambda stage, done: stage == "creating",  # while the store skeleton is being written
        lambda stage, done: stage == "recording" and done == 0,  # skeleton done, first chunk in flight
        lambda stage, done: done >= 5,
        lambda stage, done: done >= 17,
        lambda stage, done: done >= 30,
        lambda stage, done: done >= 42,  # last batch
    ]
    landed = []
    for i, point in enumerate(kill_points):
        stage, done, killed = _run_and_kill(protocol, out, resume=i > 0, kill_when=point)
        if killed:
            landed.append((stage, done))
            state = read_run_state(out)
            if state is not None and not state.complete:
                with pytest.raises(IncompleteRecordingError):
                    neurorecord.open_recording(out)
    assert len(landed) >= 4, f"too few kills landed mid-run: {landed}"
    assert any(stage == "recording" and 0 < done < 43 for stage, done in landed)
    stage, _, killed = _run_and_kill(protocol, out, resume=True, kill_when=lambda s, d: False)
    assert stage == "complete" and not killed
    _assert_same_store(reference, neurorecord.open_recording(out))


@pytest.mark.slow
def test_sigkill_at_random_times_then_resume(write_protocol, tmp_path):
    """Kills at arbitrary moments (import, subject building, writing) never corrupt the store."""
    protocol = write_protocol(PROTOCOL)
    reference = neurorecord.run(protocol, tmp_path / "reference", quiet=True)
    out = tmp_path / "killed"
    rng = np.random.default_rng(0)
    cmd = [sys.executable, "-m", "neurorecord.cli.main", "run", str(protocol), "--out", str(out), "--quiet", "--resume"]
    for delay in rng.uniform(0.5, 4.0, size=6):
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    subprocess.run(cmd, check=True)
    _assert_same_store(reference, neurorecord.open_recording(out))
