"""benchmarks/gpu.py runs (on the CPU, tiny) and its layer2 sweep predicts what the plain-torch limit does."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow  # imports torch and builds a ResNet in a subprocess: about a minute on 2 shared cores
def test_gpu_benchmark_runs_small_on_cpu():
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--device", "cpu", "--small", "--rounds", "1",
         "--images", "8", "--batch", "4", "--sweep-units", "3", "--sweep-images", "6"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for line in ("plain forward", "channel means, 4 regions", "full layer2 maps", "layer2 sweep (neurorecord)",
                 "whole-network loop"):
        assert line in out.stdout
    assert "sweep predictions equal to the limit's: True" in out.stdout
