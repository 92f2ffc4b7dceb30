"""No tracebacks for users: every failure a user can cause ends in one ``error:`` line and exit 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import DIGITS_MLP

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "protocols" / "digits.yaml"


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "neurorecord.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)


def _setup(case: str, tmp: Path) -> tuple[list[str], dict[str, str], str]:
    """(arguments, environment, expected text) of one case, after preparing its files in ``tmp``."""
    import os

    if case == "out under a file":
        (tmp / "afile").write_text("x")
        return ["run", str(DEFAULT), "--out", str(tmp / "afile" / "run"), "--quiet"], {}, "afile/run: Not a directory"
    if case == "out in a read-only file system":
        return ["run", str(DEFAULT), "--out", "/proc/neurorecord-run", "--quiet"], {}, "/proc/neurorecord-run"
    if case == "out a dangling symlink":
        (tmp / "link").symlink_to(tmp / "nowhere")
        return ["run", str(DEFAULT), "--out", str(tmp / "link"), "--quiet"], {}, "link"
    if case == "stimuli out in a read-only file system":
        return ["stimuli", str(DEFAULT), "--out", "/proc/sheet.png"], {}, "/proc/sheet.png"
    if case == "schema out in a missing folder of /proc":
        return ["schema", "--out", "/proc/none/s.json"], {}, "/proc/none"
    if case == "deeply nested YAML":
        (tmp / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
        return ["validate", str(tmp / "deep.yaml")], {}, "nested too deeply"
    if case == "absurd dpi":
        return ["stimuli", str(DEFAULT), "--out", str(tmp / "s.png"), "--dpi", "100000"], {}, "expected a resolution of 1 to 1200"
    if case == "cache path is a file":
        (tmp / "cache").write_text("x")
        return ["validate", str(DEFAULT)], {"NEURORECORD_CACHE": str(tmp / "cache")}, "the zoo cache NEURORECORD_CACHE="
    if case == "corrupt zoo cache":
        shutil.copytree(os.environ["NEURORECORD_CACHE"], tmp / "cache")
        for weights in (tmp / "cache" / "zoo").glob("digits-mlp-*.pt"):
            weights.write_bytes(b"garbage")
        return ["validate", str(DEFAULT)], {"NEURORECORD_CACHE": str(tmp / "cache")}, "the cache is damaged: delete"
    if case == "weights that need pickle":
        (tmp / "net.py").write_text("from torch import nn\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n")
        torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), tmp / "whole.pt")  # the model, pickled
        text = DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'net:build'\n  state_dict: whole.pt").replace("[fc1, fc2, fc3]", "['1']")
        (tmp / "p.yaml").write_text(text)
        return ["validate", str(tmp / "p.yaml")], {}, "which neurorecord does not unpickle"
    raise AssertionError(case)


CASES = ["out under a file", "out in a read-only file system", "out a dangling symlink", "stimuli out in a read-only file system", "schema out in a missing folder of /proc", "deeply nested YAML", "absurd dpi",
         "cache path is a file", "corrupt zoo cache", "weights that need pickle"]


@pytest.mark.parametrize("case", CASES)
def test_one_error_line_and_exit_2(tmp_path, case):
    args, env, expected = _setup(case, tmp_path)
    proc = _cli(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "weights_only=False" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]  # argparse prints its usage above
    assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_library_warnings_are_one_line(monkeypatch, capsys):
    """A warning raised while a command runs is one ``warning:`` line: no source path, no code line."""
    import warnings

    import numpy as np

    from neurorecord.cli import main as cli

    def noisy(args):
        warnings.warn("neurorecord's own warning\nwith a second line", UserWarning)
        np.log(np.zeros(1))  # numpy's RuntimeWarning: divide by zero
        return 0

    monkeypatch.setattr(cli, "_cmd_validate", noisy)
    assert cli.main(["validate", str(DEFAULT)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "warning: neurorecord's own warning"
    assert err[1].startswith("warning: divide by zero encountered in log"), err
    assert len(err) == 2


def test_a_full_disk_is_one_line_and_leaves_the_store_incomplete(tmp_path):
    """Writes refused part-way (a file-size limit, as a full disk refuses them: Python ignores
    SIGXFSZ, so the write raises) end in one error line; the store says it is incomplete."""
    import os
    import resource

    from neurorecord.store import read_run_state
    from neurorecord.subjects.zoo import load_zoo_subject

    load_zoo_subject("digits-mlp")  # trained and cached first: the limit is for the store's writes

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "neurorecord.cli.main", "run", str(DEFAULT), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path, preexec_fn=limit, env=dict(os.environ), timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1, proc.stderr
    assert "File too large" in proc.stderr, proc.stderr
    state = read_run_state(out)
    assert state is not None and not state.complete
