"""The command line: exit codes, messages without tracebacks, progress bar, info and validate."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from neurorecord.cli.main import main
from tests.helpers import DIGITS_MLP


def _fails(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_run_info_validate(write_protocol, tmp_path, capsys):
    path = write_protocol(DIGITS_MLP)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "presentations 454 = 454 stimuli x 1 repetitions" in out and "fc2" in out and "100 neuroids" in out
    assert main(["run", str(path), "--out", str(tmp_path / "rec"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["info", str(tmp_path / "rec")]) == 0
    info = capsys.readouterr().out
    assert "status    complete (454 presentations)" in info
    assert "region    fc1: activity {'presentation': 454, 'neuroid': 100} float32, chunks (454, 100)" in info
    assert "presentation coords: digit_index, label, repetition, stimulus_id, stimulus_set" in info
    assert "neuroid coords: channel, neuroid_id, region" in info
    assert f"torch {torch.__version__}" in info and "test accuracy 0.9" in info


def test_info_shows_incomplete(write_protocol, tmp_path, capsys):
    path = write_protocol(DIGITS_MLP)
    assert main(["run", str(path), "--out", str(tmp_path / "rec"), "--quiet"]) == 0
    import zarr

    group = zarr.open_group(tmp_path / "rec", mode="r+")
    state = dict(group.attrs["run"], stage="recording", batches_done=2)
    group.attrs.update({"run": state, "complete": False})
    assert main(["info", str(tmp_path / "rec")]) == 0
    assert "INCOMPLETE: stage 'recording', 2 of 5 batches written (200 of 454 presentations)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "protocol file not found"),
        ("neurorecord: 1\nname: [unclosed\n", "not valid YAML"),
        (DIGITS_MLP.replace("regions:", "regoins:"), "record.regoins: unknown key (did you mean 'regions'?)"),
        (DIGITS_MLP.replace("[fc1, fc2, fc3]", "[fc1, fc22]"), "record.regions: no region named 'fc22' in the subject (did you mean 'fc2'?); valid regions: flatten, fc1,"),
        (DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'no_such_pkg_q:build'"), "subject.entry_point: cannot import module 'no_such_pkg_q'"),
        (DIGITS_MLP.replace("zoo: digits-mlp", "zoo: digits-resnet"), "subject.zoo: unknown zoo subject 'digits-resnet'"),
    ],
)
def test_user_errors_exit_2_with_message(write_protocol, tmp_path, capsys, text, expected):
    path = tmp_path / "absent.yaml" if text is None else write_protocol(text)
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "o")]):
        assert expected in _fails(capsys, command)
    assert not (tmp_path / "o").exists()


def test_weights_mismatch_exit_2(write_protocol, tmp_path, capsys):
    (tmp_path / "arch.py").write_text(textwrap.dedent("""
        from torch import nn
        def build(width=100):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
    """))
    torch.save({"1.weight": torch.zeros(50, 64), "1.bias": torch.zeros(50), "3.weight": torch.zeros(10, 50), "3.bias": torch.zeros(10)}, tmp_path / "w.pt")
    text = DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'arch:build'\n  state_dict: w.pt").replace("[fc1, fc2, fc3]", "['1']")
    err = _fails(capsys, ["run", str(write_protocol(text)), "--out", str(tmp_path / "o")])
    assert "subject.state_dict: weights do not match the architecture built by 'arch:build'" in err
    assert "1.weight: file (50, 64) vs model (100, 64)" in err


def test_output_folder_with_other_run_refused(write_protocol, tmp_path, capsys):
    a = write_protocol(DIGITS_MLP, "a.yaml")
    b = write_protocol(DIGITS_MLP.replace("name: digits", "name: other"), "b.yaml")
    assert main(["run", str(a), "--out", str(tmp_path / "rec"), "--quiet"]) == 0
    err = _fails(capsys, ["run", str(b), "--out", str(tmp_path / "rec"), "--quiet"])
    assert "already holds a different run (protocol 'digits'" in err and "use --overwrite" in err
    assert main(["run", str(b), "--out", str(tmp_path / "rec"), "--quiet", "--overwrite"]) == 0
    assert main(["info", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_progress_bar_and_quiet(write_protocol, tmp_path):
    exe = shutil.which("neurorecord")
    assert exe is not None, "the console script is installed with the package"
    path = write_protocol(DIGITS_MLP)
    loud = subprocess.run([exe, "run", str(path), "--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert loud.returncode == 0, loud.stderr
    assert "recording digits" in loud.stderr and "454/454" in loud.stderr and loud.stdout == ""
    quiet = subprocess.run([exe, "run", str(path), "--out", str(tmp_path / "b"), "--quiet"], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""
    bad = subprocess.run([exe, "run", str(path), "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "use --overwrite" in bad.stderr


def test_module_entry_point_and_version():
    out = subprocess.run([sys.executable, "-m", "neurorecord.cli.main", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("neurorecord ")


def test_bad_device_flag(write_protocol, tmp_path, capsys):
    path = write_protocol(DIGITS_MLP)
    err = _fails(capsys, ["run", str(path), "--out", str(tmp_path / "o"), "--device", "gpu"])
    assert "--device: expected auto, cpu, cuda or cuda:N, found 'gpu'" in err and "protocol.yaml:" not in err
    assert not (tmp_path / "o").exists()
