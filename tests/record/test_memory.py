"""Streaming: peak memory does not grow with the number of stimuli."""

from __future__ import annotations

import subprocess
import sys

import pytest

from neurorecord.subjects import load_zoo_subject

from tests.helpers import DIGITS_MLP

# full conv maps of the digits CNN: 12 KB per presentation over two regions
PROTOCOL = (
    DIGITS_MLP.replace("digits-mlp", "digits-cnn")
    .replace("[fc1, fc2, fc3]", "[conv1, conv2]")
    .replace("batch_size: 100", "batch_size: 128")
    .replace("reduce: mean", "reduce: none\n  repetitions: {reps}")
)

MEASURE = """
import resource, sys
import neurorecord
tree = neurorecord.run(sys.argv[1], sys.argv[2], quiet=True)
assert tree["conv2"]["activity"].shape[0] == int(sys.argv[3])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_kib(write_protocol, tmp_path, reps: int) -> int:
    protocol = write_protocol(PROTOCOL.format(reps=reps), f"reps{reps}.yaml")
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(protocol), str(tmp_path / f"out{reps}"), str(454 * reps)],
        capture_output=True, text=True, check=True,
    )
    return int(result.stdout.split()[-1])


@pytest.mark.slow
def test_peak_rss_flat_for_10x_stimuli(write_protocol, tmp_path):
    load_zoo_subject("digits-cnn")  # train (if needed) here, not inside a measured process
    small = _peak_rss_kib(write_protocol, tmp_path, 3)
    large = _peak_rss_kib(write_protocol, tmp_path, 30)
    activity_mib = 454 * 30 * (16 + 32) * 64 * 4 / 2**20  # what holding the large recording would cost
    assert activity_mib > 150
    assert large <= 1.10 * small, f"peak RSS {small / 1024:.0f} MiB for 1,362 presentations, {large / 1024:.0f} MiB for 13,620"
