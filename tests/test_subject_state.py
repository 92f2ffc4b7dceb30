"""One common check over every public entry point that takes a subject: the subject is left as it was found.

In the manner of scikit-learn's common estimator checks: each entry of ``CALLS`` runs one public
function on a subject, once as it is meant to be used and once in a way that raises after the
subject has run; after both, the subject must have the same hooks (its own, none of ours), the
same train/eval flag on every module, and the same parameters and buffers (the same tensors, with
the same values). A new entry point joins by adding a row.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import neurorecord
from neurorecord import session, store
from neurorecord.lesion import check_downstream, downstream_regions, lesion_predictions, obvious_predictions, split_at, unit_means
from neurorecord.record import PresentationPlan, RegionTap, TrialVariability, stream_batches
from neurorecord.stimuli import DigitsSet
from neurorecord.subjects import digits_mlp


def _user_hook(module: nn.Module, inputs: object, output: object) -> None:
    """A hook the user had on the subject before calling us: it must stay, alone."""


def _subject() -> nn.Module:
    """The digits MLP in eval mode, except one submodule in train mode, with a user's hook."""
    torch.manual_seed(0)
    model = digits_mlp().eval()
    model.fc2.linear.train()  # a module whose flag differs from its parent's
    model.fc1.register_forward_hook(_user_hook)
    return model


def _state(model: nn.Module) -> dict[str, object]:
    hooks = {}
    for name, m in model.named_modules():
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                     "_forward_hooks_with_kwargs", "_state_dict_hooks", "_load_state_dict_pre_hooks"):
            table = getattr(m, kind, None)
            if table:
                hooks[(name, kind)] = [id(h) for h in table.values()]
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    return {
        "hooks": hooks,
        "modes": {name: m.training for name, m in model.named_modules()},
        "ids": {k: id(v) for k, v in tensors.items()},
        "values": {k: v.detach().clone() for k, v in tensors.items()},
        "requires_grad": {k: v.requires_grad for k, v in model.named_parameters()},
        "forward": {name: "forward" in vars(m) for name, m in model.named_modules()},
    }


def _assert_same(before: dict[str, object], model: nn.Module) -> None:
    after = _state(model)
    assert after["hooks"] == before["hooks"], "hooks were added or removed"
    assert after["modes"] == before["modes"], "a train/eval flag changed"
    assert after["ids"] == before["ids"], "a parameter or buffer was replaced"
    assert after["requires_grad"] == before["requires_grad"]
    assert after["forward"] == before["forward"], "a module's forward was patched"
    for k, v in before["values"].items():
        assert torch.equal(after["values"][k], v), f"{k} changed value"


X = torch.from_numpy(DigitsSet("digits", "test").images(np.arange(40)))


def _tap(model: nn.Module, fail: bool) -> None:
    with RegionTap(model, ["fc2", "fc3"]) as tap:
        tap(X[:4] if not fail else X[:4, :, :4])  # 4x8 images do not fit fc1


def _stream(model: nn.Module, fail: bool) -> None:
    plan = PresentationPlan([DigitsSet("digits", "test")])

    def write(batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
        if fail and batch == 1:
            raise OSError("disk full")

    stream_batches(model, plan, {"fc2": (100,)}, "mean", TrialVariability(None, 0, len(plan)), torch.device("cpu"), 0,
                   100, 0, write, behaviour=10, quiet=True)


def _stream_bfloat16(model: nn.Module, fail: bool) -> None:
    plan = PresentationPlan([DigitsSet("digits", "test")])

    def write(batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
        if fail and batch == 1:
            raise OSError("disk full")

    stream_batches(model, plan, {"fc2": (100,)}, "mean", TrialVariability(None, 0, len(plan)), torch.device("cpu"), 0,
                   100, 0, write, behaviour=10, quiet=True, dtype="bfloat16")


def _lesion(model: nn.Module, fail: bool) -> None:
    lesion_predictions(model, X, "fc2", [0, 1, 200 if fail else 2])


def _lesion_exact(model: nn.Module, fail: bool) -> None:
    lesion_predictions(model, X, "fc2", [0, 1, 200 if fail else 2], shortcut=False, downstream=["fc3"])


def _obvious(model: nn.Module, fail: bool) -> None:
    obvious_predictions(model, X, "fc2", [0, 200 if fail else 1])


def _means(model: nn.Module, fail: bool) -> None:
    unit_means(model, X if not fail else X[:, :, :4], "fc2")


def _split(model: nn.Module, fail: bool) -> None:
    split_at(model, "fc2", X[:2]).upstream(X[:2] if not fail else X[:2, :, :4])


def _downstream(model: nn.Module, fail: bool) -> None:
    downstream_regions(model, "fc2", X[:2] if not fail else X[:2, :, :4])


def _check_downstream(model: nn.Module, fail: bool) -> None:
    check_downstream(model, "fc2", ["fc1"] if fail else ["fc3"], X[:2])


CALLS: dict[str, Callable[[nn.Module, bool], None]] = {
    "RegionTap": _tap,
    "stream_batches": _stream,
    "stream_batches(dtype=bfloat16)": _stream_bfloat16,
    "lesion_predictions": _lesion,
    "lesion_predictions(shortcut=False, downstream)": _lesion_exact,
    "obvious_predictions": _obvious,
    "unit_means": _means,
    "split_at": _split,
    "downstream_regions": _downstream,
    "check_downstream": _check_downstream,
}


@pytest.mark.parametrize("name", list(CALLS))
def test_entry_point_leaves_the_subject_as_found(name: str) -> None:
    model = _subject()
    before = _state(model)
    CALLS[name](model, False)
    _assert_same(before, model)
    with pytest.raises(Exception):
        CALLS[name](model, True)
    _assert_same(before, model)


# ------------------------------------------------------------ prepare and run, through a protocol

FACTORY = '''
from neurorecord.subjects import digits_mlp
import torch

def _user_hook(module, inputs, output):
    pass

torch.manual_seed(0)
MODEL = digits_mlp().eval()
MODEL.fc1.register_forward_hook(_user_hook)

def build():
    return MODEL
'''

PROTOCOL = """neurorecord: 1
name: state
seed: 0
subject:
  entry_point: "subject_state_factory:build"
stimuli:
  - {name: digits, kind: digits, split: test}
record:
  regions: [fc1, fc2, fc3]
  batch_size: 100
  variability: {dropout: {region: fc1, p: 0.1}}
analyses:
  - {name: responsive, kind: population, regions: [fc3], test: anova, by: label, q_below: 0.05}
lesions:
  - {name: fc3-single, region: fc3, evaluate: digits, n_boot: 0}
"""


@pytest.fixture
def protocol_subject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "subject_state_factory.py").write_text(textwrap.dedent(FACTORY))
    path = tmp_path / "state.yaml"
    path.write_text(PROTOCOL)
    monkeypatch.delitem(sys.modules, "subject_state_factory", raising=False)
    exp = neurorecord.prepare(path)
    model = sys.modules["subject_state_factory"].MODEL
    assert exp.subject.model is model
    return path, model


def test_prepare_and_run_leave_the_subject_as_found(protocol_subject, tmp_path: Path) -> None:
    """The regression of hooks left by prepare()/run(): the user's one hook stays, ours (taps, dropout noise) are gone."""
    path, model = protocol_subject
    before = _state(model)
    assert list(before["hooks"]) == [("fc1", "_forward_hooks")]  # the user's hook only, after prepare
    tree = session.run(path, tmp_path / "out", quiet=True)
    _assert_same(before, model)
    assert tree["lesions/fc3-single"]["delta_accuracy"].sizes["lesion"] == 100


def test_failed_run_leaves_the_subject_as_found(protocol_subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, model = protocol_subject
    before = _state(model)
    writes = []
    real = store.write_run_state

    def failing(group, state):  # the disk fills up in the middle of the recording
        writes.append(state.stage)
        if len(writes) == 4:
            raise OSError("No space left on device")
        real(group, state)

    monkeypatch.setattr(store, "write_run_state", failing)
    with pytest.raises(OSError, match="No space"):
        session.run(path, tmp_path / "out", quiet=True)
    _assert_same(before, model)
