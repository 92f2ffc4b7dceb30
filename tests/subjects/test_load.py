"""Subjects from entry points, state dicts (weights_only) and TorchScript files."""

from __future__ import annotations

import hashlib
import textwrap
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from neurorecord.errors import RegionError, SubjectError
from neurorecord.protocol.schema import SubjectSpec
from neurorecord.record import RegionTap
from neurorecord.subjects import build_subject, digits_mlp, weight_sha256

MODEL_FILE = '''
from collections import OrderedDict
import torch
from torch import nn

def build(hidden=8):
    torch.manual_seed(1)
    return nn.Sequential(OrderedDict([
        ("flat", nn.Flatten()),
        ("fc", nn.Sequential(nn.Linear(64, hidden), nn.ReLU())),
        ("out", nn.Linear(hidden, 10)),
    ]))

def not_a_module():
    return 42

def broken():
    raise ValueError("bad config")

class Unsafe:
    pass
'''


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    (tmp_path / "usermodels_nr_test.py").write_text(textwrap.dedent(MODEL_FILE))
    return tmp_path


def test_entry_point_from_protocol_folder_with_kwargs(model_folder):
    subject = build_subject(SubjectSpec(entry_point="usermodels_nr_test:build", kwargs={"hidden": 5}), model_folder)
    assert subject.model.fc[0].out_features == 5 and not subject.model.training
    module = model_folder / "usermodels_nr_test.py"
    assert subject.source == {"entry_point": "usermodels_nr_test:build", "kwargs": {"hidden": 5}, "module_file": str(module),
                              "module_sha256": hashlib.sha256(module.read_bytes()).hexdigest()}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("nosuchmodule_xyz:build", "cannot import module 'nosuchmodule_xyz'"),
        ("usermodels_nr_test:biuld", "has no attribute 'biuld' (did you mean 'build'?)"),
        ("usermodels_nr_test:not_a_module", "returned a int, expected a torch.nn.Module"),
        ("usermodels_nr_test:broken", "calling 'usermodels_nr_test:broken' failed: ValueError: bad config"),
        ("usermodels_nr_test", "expected 'module:callable'"),
    ],
)
def test_entry_point_errors(model_folder, entry, message):
    with pytest.raises(SubjectError, match=None) as info:
        build_subject(SubjectSpec(entry_point=entry), model_folder)
    assert message in str(info.value)


def test_state_dict_loads_into_architecture(model_folder):
    donor = build_subject(SubjectSpec(entry_point="usermodels_nr_test:build"), model_folder).model
    with torch.no_grad():
        for p in donor.parameters():
            p.add_(1.0)
    torch.save(donor.state_dict(), model_folder / "w.pt")
    subject = build_subject(SubjectSpec(entry_point="usermodels_nr_test:build", state_dict="w.pt"), model_folder)
    assert weight_sha256(subject.model) == weight_sha256(donor)
    assert subject.source["state_dict"] == str(model_folder / "w.pt")


def test_state_dict_mismatch_is_described(model_folder):
    other = build_subject(SubjectSpec(entry_point="usermodels_nr_test:build", kwargs={"hidden": 6}), model_folder).model
    sd = other.state_dict()
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, model_folder / "w.pt")
    with pytest.raises(SubjectError) as info:
        build_subject(SubjectSpec(entry_point="usermodels_nr_test:build", state_dict="w.pt"), model_folder)
    msg = str(info.value)
    assert "weights do not match the architecture built by 'usermodels_nr_test:build'" in msg
    assert "not in the model: extra.weight" in msg
    assert "fc.0.weight: file (6, 64) vs model (8, 64)" in msg


def test_state_dict_is_loaded_weights_only(model_folder):
    """A pickle holding arbitrary objects is refused (torch.load(weights_only=True))."""
    import usermodels_nr_test

    torch.save({"fc.0.weight": usermodels_nr_test.Unsafe()}, model_folder / "evil.pt")
    with pytest.raises(SubjectError, match=r"does not unpickle \(unpickling runs arbitrary code\)"):
        build_subject(SubjectSpec(entry_point="usermodels_nr_test:build", state_dict="evil.pt"), model_folder)


def test_missing_weights_file(model_folder):
    with pytest.raises(SubjectError, match=r"nope.pt: subject.state_dict: file not found"):
        build_subject(SubjectSpec(entry_point="usermodels_nr_test:build", state_dict="nope.pt"), model_folder)


def test_torchscript_subject_records_sequential_regions(tmp_path):
    torch.manual_seed(0)
    plain = digits_mlp().eval()
    torch.jit.save(torch.jit.script(plain), tmp_path / "m.ts")
    subject = build_subject(SubjectSpec(torchscript="m.ts"), tmp_path)
    x = torch.rand(7, 1, 8, 8)
    with torch.inference_mode():
        with RegionTap(subject.model, ["fc1", "fc2.linear", "fc3"]) as tap:
            got = tap(x)
        with RegionTap(plain, ["fc1", "fc2.linear", "fc3"]) as tap:
            want = tap(x)
    for name in want:
        assert torch.equal(got[name], want[name])
    assert subject.weight_sha256 == weight_sha256(plain)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(64, 64)

    def forward(self, x):
        return x + self.inner(x)


def test_torchscript_region_inside_compiled_module_is_explained(tmp_path):
    model = nn.Sequential(OrderedDict([("flat", nn.Flatten()), ("res", _Residual()), ("out", nn.Linear(64, 10))]))
    torch.jit.save(torch.jit.script(model), tmp_path / "m.ts")
    subject = build_subject(SubjectSpec(torchscript="m.ts"), tmp_path)
    with pytest.raises(RegionError, match=r"'res.inner' is inside a compiled TorchScript module .* recordable regions: flat, res, out"):
        with RegionTap(subject.model, ["res.inner"]):
            pass
    with RegionTap(subject.model, ["res"]) as tap:
        assert set(tap(torch.rand(2, 1, 8, 8))) == {"res"}


def test_bad_torchscript_file(tmp_path):
    (tmp_path / "m.ts").write_bytes(b"not a zip")
    with pytest.raises(SubjectError, match="not a loadable TorchScript file"):
        build_subject(SubjectSpec(torchscript="m.ts"), tmp_path)
