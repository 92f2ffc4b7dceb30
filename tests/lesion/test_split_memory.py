"""split_at remembers the outcome of checking a split while the model is unchanged."""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch
from torch import nn

from neurorecord.lesion import lesion_predictions, obvious_predictions, single_unit_lesions, split_at
from neurorecord.lesion import split as split_module
from neurorecord.lesion.split import UnsplittableModelWarning
from tests.lesion.test_sweep import Branchy, Skip, seeded


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of split that ``_verify`` checked, in order (a spy around the real check)."""
    seen: list[str] = []
    real = split_module._verify

    def spy(split, model, example):  # type: ignore[no-untyped-def]
        seen.append(split.kind)
        return real(split, model, example)

    monkeypatch.setattr(split_module, "_verify", spy)
    return seen


@pytest.fixture
def own_mlp(mlp: nn.Module) -> nn.Module:
    """A private copy of the digits MLP, free to be changed."""
    return copy.deepcopy(mlp).eval()


def test_checked_once_while_unchanged(own_mlp: nn.Module, x: torch.Tensor, checks: list[str]) -> None:
    first = split_at(own_mlp, "fc2", x[:3])
    again = split_at(own_mlp, "fc2", x[5:8])
    assert checks == ["sequential"]
    assert first.example_frontier is not None and again.example_frontier is None
    assert again.kind == "sequential" and again.upstream_bytes == first.upstream_bytes > 0
    assert again.measured is first.measured
    assert torch.equal(again.downstream(again.upstream(x)), own_mlp(x))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda m: m.fc3.register_forward_hook(lambda mod, i, o: o * 2), id="forward-hook"),
        pytest.param(lambda m: setattr(m, "fc3", copy.deepcopy(m.fc3)), id="module-replaced"),
        pytest.param(lambda m: setattr(m.fc3, "linear", nn.Linear(100, 100)), id="layer-replaced"),
        pytest.param(lambda m: m.fc3.train(), id="train-mode"),
        pytest.param(lambda m: m.double(), id="dtype"),
    ],
)
def test_a_changed_model_is_checked_again(own_mlp: nn.Module, x: torch.Tensor, checks: list[str], change) -> None:  # type: ignore[no-untyped-def]
    split_at(own_mlp, "fc2", x[:3])
    change(own_mlp)
    split_at(own_mlp, "fc2", x[:3].to(next(own_mlp.parameters()).dtype))
    assert checks == ["sequential", "sequential"]


def test_new_weight_values_need_no_new_check(own_mlp: nn.Module, x: torch.Tensor, checks: list[str]) -> None:
    split_at(own_mlp, "fc2", x[:3])
    with torch.no_grad():
        own_mlp.fc3.linear.weight.mul_(1.5)
        own_mlp.load_state_dict({k: v * 0.5 for k, v in own_mlp.state_dict().items()})
    split = split_at(own_mlp, "fc2", x[:3])
    assert checks == ["sequential"]
    assert torch.equal(split.downstream(split.upstream(x)), own_mlp(x))


def test_other_region_or_stimulus_shape_is_checked(own_mlp: nn.Module, x: torch.Tensor, checks: list[str]) -> None:
    split_at(own_mlp, "fc2", x[:3])
    split_at(own_mlp, "fc3", x[:3])
    split_at(own_mlp, "fc2", x[10:13].clone())  # other stimuli of the same shape and dtype: remembered
    split_at(own_mlp, "fc2", x[:3].reshape(3, 64))  # another stimulus shape
    assert checks == ["sequential", "sequential", "sequential"]


def test_sweep_after_weights_change_matches_the_obvious_loop(own_mlp: nn.Module, x: torch.Tensor) -> None:
    lesions = single_unit_lesions(100)
    before = lesion_predictions(own_mlp, x, "fc2", lesions).predictions
    with torch.no_grad():
        for p in own_mlp.parameters():
            p.mul_(-1.0)  # a different network: same shapes, every parameter changed in place
    after = lesion_predictions(own_mlp, x, "fc2", lesions).predictions
    assert not torch.equal(before, after)
    assert torch.equal(after, obvious_predictions(own_mlp, x, "fc2", lesions))


def test_keeps_no_model_alive(x: torch.Tensor) -> None:
    model = seeded(Skip)
    split_at(model, "relu1", x[:3])
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_fx_split_remembered(x: torch.Tensor, checks: list[str]) -> None:
    model = seeded(Skip)
    assert split_at(model, "relu1", x[:3]).kind == "fx"
    split = split_at(model, "relu1", x[:3])
    assert split.kind == "fx" and checks == ["fx"]
    assert torch.equal(split.downstream(split.upstream(x)), model(x))


def test_unsplittable_model_warns_at_every_call(x: torch.Tensor, checks: list[str]) -> None:
    model = seeded(Branchy)
    for _ in range(2):
        with pytest.warns(UnsplittableModelWarning, match="cannot be split at region 'b'"):
            assert split_at(model, "b", x[:3]).kind == "full"
    assert checks.count("fx") <= 1  # the second call did not try again
