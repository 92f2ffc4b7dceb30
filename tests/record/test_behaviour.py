"""The subject's behaviour, recorded next to its activity: output, predicted class, correct where labelled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurorecord
from neurorecord.cli.info import describe_store
from neurorecord.errors import NeurorecordError
from neurorecord.stimuli import DigitsSet
from neurorecord.subjects import load_zoo_subject
from tests.helpers import DIGITS_MLP, LIKES_3

GRATINGS = "    split: test\n  - name: gratings\n    kind: grating\n    size: [8, 8]\n    grid: {orientation: [0, 45, 90, 135]}\n"


def test_behaviour_is_the_subjects_own_output(write_protocol, tmp_path):
    tree = neurorecord.run(write_protocol(DIGITS_MLP), tmp_path / "o", quiet=True)
    b = tree["behaviour"].to_dataset()
    subject = load_zoo_subject("digits-mlp")
    images = DigitsSet("digits", "test").images(np.arange(454))
    with torch.inference_mode():
        logits = subject.model(torch.from_numpy(images)).numpy()
    np.testing.assert_array_equal(b["output"].values, logits)
    np.testing.assert_array_equal(b["predicted"].values, logits.argmax(1))
    np.testing.assert_array_equal(b["correct"].values, (logits.argmax(1) == b["label"].values).astype(np.float32))
    assert float(b["correct"].mean()) == pytest.approx(subject.info["test_accuracy"], abs=1e-6)
    assert list(b["stimulus_id"].values) == list(tree["fc1"]["stimulus_id"].values)
    assert b["output"].dims == ("presentation", "output_unit") and b["output"].attrs["units"] == "a.u."
    assert f"accuracy {subject.info['test_accuracy']:.4f} on 454 labelled presentations" in describe_store(tmp_path / "o")


def test_unlabelled_presentations_are_not_scored(write_protocol, tmp_path):
    tree = neurorecord.run(write_protocol(DIGITS_MLP.replace("    split: test\n", GRATINGS)), tmp_path / "o", quiet=True)
    b = tree["behaviour"].to_dataset()
    gratings = (b["stimulus_set"] == "gratings").values
    assert gratings.sum() == 4 and np.isnan(b["correct"].values[gratings]).all()
    assert not np.isnan(b["correct"].values[~gratings]).any()
    line = next(s for s in describe_store(tmp_path / "o").splitlines() if s.startswith("behaviour"))
    assert "on 454 labelled presentations" in line and "digits:" in line and "gratings" not in line


def test_behaviour_can_be_turned_off(write_protocol, tmp_path):
    text = DIGITS_MLP.replace("  reduce: mean\n", "  reduce: mean\n  behaviour: false\n")
    tree = neurorecord.run(write_protocol(text), tmp_path / "o", quiet=True)
    assert "behaviour" not in tree.children and tree.attrs["behaviour"] is False
    assert not any(line.startswith("behaviour") for line in describe_store(tmp_path / "o").splitlines())


def test_output_that_is_not_a_class_vector_is_refused_before_the_run(write_protocol, tmp_path):
    (tmp_path / "conv.py").write_text("from torch import nn\ndef build():\n    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())\n")
    text = DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'conv:build'").replace("[fc1, fc2, fc3]", "['0']")
    path = write_protocol(text)
    with pytest.raises(NeurorecordError, match=r"record.behaviour: .* needs a tensor of shape \(batch, classes\); found shape \(2, 4, 6, 6\); "
                                               "set record.behaviour: false"):
        neurorecord.run(path, tmp_path / "o", quiet=True)
    assert not (tmp_path / "o").exists()
    path.write_text(text.replace("  reduce: mean\n", "  reduce: mean\n  behaviour: false\n"))
    assert neurorecord.run(path, tmp_path / "o", quiet=True)["0"]["activity"].shape == (454, 4)


def test_a_region_named_like_a_store_node_is_refused(write_protocol, tmp_path):
    (tmp_path / "named.py").write_text(
        "from collections import OrderedDict\nfrom torch import nn\n"
        "def build():\n    return nn.Sequential(OrderedDict(flat=nn.Flatten(), behaviour=nn.Linear(64, 4)))\n")
    text = DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'named:build'").replace("[fc1, fc2, fc3]", "[behaviour]")
    with pytest.raises(NeurorecordError, match=r"protocol.yaml:\d+:\d+: record.regions: a region cannot be named 'behaviour'"):
        neurorecord.prepare(write_protocol(text))


def test_a_population_condition_missing_from_the_stimuli_is_refused_before_the_run(write_protocol, tmp_path):
    """Knowable before the run, so validate says it (it used to fail at the analysing stage)."""
    text = DIGITS_MLP + "analyses:\n" + LIKES_3.replace("condition: 3", "condition: 12")
    with pytest.raises(NeurorecordError, match=r"analyses\[0\]\.condition: expected a level of .label., found 12; levels: 0, 1, 2"):
        neurorecord.run(write_protocol(text), tmp_path / "o", quiet=True)
    assert not (tmp_path / "o").exists()
