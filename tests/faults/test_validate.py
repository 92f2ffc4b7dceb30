"""What ``validate`` accepts, ``run`` finishes: every mistake knowable before recording is refused
before anything is written, with the protocol's file, line and entry."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurorecord
from neurorecord.errors import NeurorecordError, ProtocolError
from tests.helpers import DIGITS_MLP, LIKES_3

GRU = DIGITS_MLP.replace("digits-mlp", "digits-gru").replace("[fc1, fc2, fc3]", "[encoder, gru]")
TWICE = """
from torch import nn
class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.flat, self.a, self.relu, self.b = nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10)
    def forward(self, x):
        return self.relu(self.b(self.relu(self.a(self.flat(x)))))
def build():
    return Twice()
"""
UNUSED = TWICE.replace("Twice", "Unused").replace("self.relu(self.b(self.relu(self.a(self.flat(x)))))", "self.b(self.a(self.flat(x)))")

EXTRA = DIGITS_MLP.replace("    split: test\n", "    split: test\n  - {name: extra, kind: npy, path: imgs.npy}\n")

CASES = [
    # (name, protocol text, files, expected message)
    ("empty unit group", DIGITS_MLP + "lesions:\n  - {name: g, region: fc3, evaluate: digits, units: []}\n", {},
     r"protocol.yaml:\d+:\d+: lesions\[0\]: units: an empty list lesions nothing"),
    ("unit listed twice", DIGITS_MLP + "lesions:\n  - {name: g, region: fc3, evaluate: digits, units: [3, 3, 17]}\n", {},
     r"protocol.yaml:\d+:\d+: lesions\[0\]: units: unit 3 is listed twice; .*silence 2 units but draw controls of 3"),
    ("labels outside the outputs", DIGITS_MLP.replace("    split: test\n", "    split: test\n  - {name: extra, kind: npy, path: imgs.npy, labels: labels.npy}\n")
     + "lesions:\n  - {name: g, region: fc3, evaluate: extra}\n", {"npy": 12},
     r"protocol.yaml:\d+:\d+: lesions\[0\]\.evaluate: the labels of stimulus set 'extra' must be class indices 0\.\.9 .* found 12"),
    ("by with one level", DIGITS_MLP.replace("    split: test\n", "    split: test\n  - {name: extra, kind: npy, path: imgs.npy, labels: labels.npy}\n")
     + "analyses:\n  - {name: t, kind: anova, by: stimulus_set}\n".replace("stimulus_set", "repetition"), {"npy": 3},
     r"protocol.yaml:\d+:\d+: analyses\[0\]\.by: .*'repetition'"),
    ("region called twice", DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'twice:build'").replace("[fc1, fc2, fc3]", "[a, relu]"),
     {"twice.py": TWICE}, r"protocol.yaml:\d+:\d+: record.regions: region 'relu' is called 2 times in one forward pass"),
    ("region never called", DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'unused:build'").replace("[fc1, fc2, fc3]", "[a, relu]"),
     {"unused.py": UNUSED}, r"protocol.yaml:\d+:\d+: record.regions: region 'relu' was never called during the forward pass"),
    ("time-resolved subject without record.time", GRU, {},
     r"record.regions: region 'encoder' outputs \(2, 1, 64\) .* steps of a sequence, not channels; .*record.time"),
    ("lesions of a TorchScript subject", DIGITS_MLP.replace("zoo: digits-mlp", "torchscript: m.ts") .replace("[fc1, fc2, fc3]", "['1']")
     + "lesions:\n  - {name: g, region: '1', evaluate: digits}\n", {"script": True},
     r"lesions\[0\]: lesion sweeps silence units with hooks, and a TorchScript subject takes none"),
    ("stimuli holding NaN", EXTRA, {"values": np.nan},
     r"imgs.npy: stimuli 'extra': 2 of 4 images hold NaN or inf values, the first image 1 \(stimulus_id 'extra-1'\)"),
    ("stimuli holding inf", EXTRA, {"values": np.inf}, r"imgs.npy: stimuli 'extra': 2 of 4 images hold NaN or inf values"),
    ("a set of no images", EXTRA, {"values": None}, r"imgs.npy: stimuli 'extra': expected at least one image, found none"),
]


@pytest.mark.parametrize("name, text, files, message", CASES, ids=[c[0] for c in CASES])
def test_refused_before_the_run(write_protocol, tmp_path, name, text, files, message):
    import numpy as np
    import torch

    for file, content in files.items():
        if file == "npy":
            np.save(tmp_path / "imgs.npy", np.zeros((4, 1, 8, 8), dtype=np.float32))
            np.save(tmp_path / "labels.npy", np.array([0, 1, 2, content]))
        elif file == "values":  # images 1 and 3 hold a bad value; None: an array of no images
            images = np.zeros((0 if content is None else 4, 1, 8, 8), dtype=np.float32)
            if content is not None:
                images[1:, 0, 2, 3] = content
                images[2] = 0.5
            np.save(tmp_path / "imgs.npy", images)
        elif file == "script":
            torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))).save(str(tmp_path / "m.ts"))
        else:
            (tmp_path / file).write_text(textwrap.dedent(content))
    path = write_protocol(text)
    with pytest.raises((NeurorecordError, ProtocolError), match=message):
        neurorecord.run(path, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()
    proc = subprocess.run([sys.executable, "-m", "neurorecord.cli.main", "validate", str(path)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr


def test_batch_size_larger_than_the_presentations_allocates_what_is_presented(write_protocol, tmp_path):
    """It used to allocate batch_size rows per buffer (373 GiB for a batch_size of 1e9)."""
    import tracemalloc

    text = DIGITS_MLP.replace("batch_size: 100", "batch_size: 1000000000")
    tracemalloc.start()
    tree = neurorecord.run(write_protocol(text), tmp_path / "o", quiet=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert tree["fc1"]["activity"].shape == (454, 100) and peak < 200e6
