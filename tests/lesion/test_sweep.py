"""The fast lesion sweep equals the obvious loop, per stimulus, on every kind of split."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurorecord.errors import RegionError
from neurorecord.lesion.sweep import CPU_PASS_BYTES
from neurorecord.lesion import (
    Lesion,
    LesionSweep,
    UnsplittableModelWarning,
    lesion_predictions,
    obvious_predictions,
    single_unit_lesions,
    split_at,
    unit_means,
)


class Skip(nn.Module):
    """ResNet-style: ``out = relu(h + conv3(relu2(conv2(h))))``; ``x.size(0)`` read after the regions."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(1, 8, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.conv1(x))
        out = torch.relu(h + self.conv3(self.relu2(self.conv2(h))))
        return self.fc(F.max_pool2d(out, 2).reshape(x.size(0), -1))


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(64, 32), nn.Linear(32, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x.flatten(1)))
        if h.mean() > 0.2:
            h = 2 * h
        return self.c(torch.relu(self.b(h)))


class TwoBranch(nn.Module):
    """Two branches from the input, a parameter read after the head, a per-stimulus tensor made from x."""

    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.ReLU())
        self.b2 = nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.Tanh())
        self.head = nn.Linear(40, 10)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.b1(x), self.b2(x)], 1)) * self.scale + x.new_zeros(x.shape[0], 10)


class Layers(nn.Module):
    """A ModuleList, and one activation module called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(64, 30), nn.Linear(30, 30), nn.Linear(30, 10)])
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < 2:
                x = self.act(x)
        return x


class Boom(nn.Module):
    """Raises on batches of more than ``limit`` rows (after the probe passes)."""

    def __init__(self, limit: int = 3) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            raise RuntimeError("boom")
        return x


def seeded(cls: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


def check_same(model, x, region, lesions, **options):
    """Fast == obvious (predictions exactly, logits to float rounding), by default (shortcut
    where it applies) and with the downstream part recomputed (``shortcut=False``); returns the
    default result."""
    means = options.get("means")
    slow, slow_logits = obvious_predictions(model, x, region, lesions, means=means, seed=options.get("seed", 0), return_logits=True)
    results = [lesion_predictions(model, x, region, lesions, return_logits=True, **options)]
    if "shortcut" not in options:
        results.append(lesion_predictions(model, x, region, lesions, return_logits=True, shortcut=False, **options))
        assert not results[1].shortcut
    for fast in results:
        assert torch.equal(fast.predictions, slow)
        torch.testing.assert_close(fast.logits, slow_logits, rtol=1e-5, atol=1e-5)
        assert torch.equal(fast.intact_predictions, model(x).argmax(1))
    return results[0]


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ---------------------------------------------------------------- equality with the obvious loop


def test_mlp_all_single_unit_zero_lesions_of_fc2(mlp, x):
    result = check_same(mlp, x, "fc2", single_unit_lesions(100))
    assert result.split_kind == "sequential" and result.cache == "memory"
    # the default CPU budget: passes of at most CPU_PASS_BYTES, every stimulus in each
    assert result.stimulus_chunk == 454 and 1 < result.pack_size < 100
    assert result.pack_size * 454 * result.row_bytes + 454 * result.frontier_bytes <= CPU_PASS_BYTES
    assert (result.predictions != result.intact_predictions).any()  # lesions change something


def test_mlp_methods_and_groups_in_mixed_packs(mlp, x):
    means = unit_means(mlp, x, "fc2")
    lesions = [
        *single_unit_lesions(10, "mean"),
        *single_unit_lesions(10, "clamp", value=3.0),
        *single_unit_lesions(5, "noise", std=2.0),
        *single_unit_lesions(5, "noise", std=1.0, noise="replace"),
        Lesion(tuple(range(0, 100, 2))),
        Lesion(tuple(range(50)), "mean"),
        Lesion(tuple(range(100)), "noise", std=0.5),
        [3, 7, 11],
    ]
    for pack_size in (None, 7):  # 7 mixes methods inside packs
        result = check_same(mlp, x, "fc2", lesions, means=means, seed=3, pack_size=pack_size)
    assert result.pack_size == 7


def test_noise_is_seeded_per_lesion_and_independent_of_packing(mlp, x):
    lesions = single_unit_lesions(8, "noise", std=3.0) + [Lesion(tuple(range(100)), "noise", std=1.0)]
    a = lesion_predictions(mlp, x, "fc1", lesions, seed=1, return_logits=True)
    b = lesion_predictions(mlp, x, "fc1", lesions, seed=1, return_logits=True, pack_size=2, batch_size=100,
                           memory_budget=int(5 * 100 * a.row_bytes))  # other packs, other stimulus chunks
    assert b.pack_size == 2 and b.stimulus_chunk < 454
    assert torch.equal(a.predictions, b.predictions)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(a.predictions, obvious_predictions(mlp, x, "fc1", lesions, seed=1, batch_size=100))
    c = lesion_predictions(mlp, x, "fc1", lesions, seed=2, return_logits=True)
    assert not torch.equal(a.logits, c.logits)
    # the lesion's index, not its content, seeds it: two equal lesions get different noise
    twins = lesion_predictions(mlp, x, "fc1", [Lesion(tuple(range(100)), "noise", std=1.0)] * 2, return_logits=True)
    assert not torch.equal(twins.logits[0], twins.logits[1])


@pytest.mark.parametrize("region, n_channel", [("conv1", 16), ("conv2", 32), ("fc1", 64)])
def test_cnn_all_single_channel_lesions(cnn, x, region, n_channel):
    result = check_same(cnn, x, region, single_unit_lesions(n_channel))
    assert result.split_kind == "sequential"
    assert (result.predictions != result.intact_predictions).any()


@pytest.mark.parametrize("per", ["channel", "unit"])
def test_cnn_mean_and_noise_channel_lesions(cnn, x, per):
    means = unit_means(cnn, x, "conv2", per=per)
    assert tuple(means.shape) == ((32,) if per == "channel" else (32, 8, 8))
    lesions = single_unit_lesions(32, "mean") + [Lesion((0, 5), "noise", std=0.5), Lesion(tuple(range(16)), "clamp", value=0.2)]
    check_same(cnn, x, "conv2", lesions, means=means, pack_size=9)


def test_unit_means_match_numpy(cnn, x):
    with torch.no_grad():
        h = torch.nn.Sequential(*list(cnn.children())[:2])(x).numpy()
    np.testing.assert_allclose(unit_means(cnn, x, "conv2").numpy(), h.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("region", ["relu1", "relu2", "conv3", "fc"])
def test_skip_connection_model_uses_fx(x, region):
    model = seeded(Skip)
    n_channel = 10 if region == "fc" else 8
    lesions = single_unit_lesions(n_channel) + [Lesion(tuple(range(n_channel)))]
    result = check_same(model, x, region, lesions)
    assert result.split_kind == "fx"
    assert (result.predictions != result.intact_predictions).any()


def test_fx_frontier_keeps_the_skip_connection(x):
    split = split_at(seeded(Skip), "relu2", x[:3])
    assert split.kind == "fx"
    # relu1's output (the skip) and the input (its size(0) is read downstream) are cached with relu2's
    assert set(split.upstream(x[:3])) == {"x", "relu1", "relu2"}


@pytest.mark.parametrize(
    "cls, region, n_unit, kind, frontier",
    [
        (TwoBranch, "b1", 20, "fx", {"b1", "b2_2", "new_zeros"}),  # the other branch is computed once
        (TwoBranch, "b2.1", 20, "fx", {"b1_2", "b2_1", "new_zeros"}),
        (TwoBranch, "head", 10, "fx", {"head", "new_zeros"}),  # the parameter is read downstream
        (Layers, "layers.1", 30, "fx", {"layers_1"}),
        (Layers, "act", 30, "full", None),  # called twice: every call is lesioned, by a hook
    ],
)
def test_other_graphs(x, cls, region, n_unit, kind, frontier):
    model = seeded(cls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsplittableModelWarning)
        split = split_at(model, region, x[:3])
        assert split.kind == kind
        if frontier is not None:
            assert set(split.upstream(x[:3])) == frontier
        lesions = single_unit_lesions(n_unit) + [Lesion((0, 1), "noise", std=1.0), Lesion((2,), "clamp", value=4.0)]
        result = check_same(model, x, region, lesions)
    assert result.split_kind == kind


def test_unsplittable_model_falls_back_to_full_with_one_warning(x):
    model = seeded(Branchy)
    lesions = single_unit_lesions(32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = lesion_predictions(model, x, "a", lesions, pack_size=5)
        slow = obvious_predictions(model, x, "a", lesions)
    messages = [str(w.message) for w in caught if issubclass(w.category, UnsplittableModelWarning)]
    assert len(messages) == 1 and "cannot be split" in messages[0] and "rerun the full network" in messages[0]
    assert fast.split_kind == "full"
    assert torch.equal(fast.predictions, slow)


def test_split_kinds(mlp, cnn, x):
    assert split_at(mlp, "fc2").kind == "sequential"
    assert split_at(mlp, "fc2.relu", x[:3]).kind == "sequential"
    assert split_at(cnn, "conv2.conv", x[:3]).kind == "sequential"
    assert split_at(seeded(Skip), "relu1", x[:3]).kind == "fx"
    with pytest.warns(UnsplittableModelWarning, match="TraceError"):
        assert split_at(seeded(Branchy), "b", x[:3]).kind == "full"


def test_nested_region_inside_a_block(mlp, x):
    check_same(mlp, x, "fc2.linear", single_unit_lesions(100, "clamp", value=-1.0)[::10])


# ---------------------------------------------------------------- memory: zarr cache, pack-size rule


def test_zarr_cache_and_stimulus_chunks(cnn, x, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    lesions = single_unit_lesions(16)
    small = lesion_predictions(cnn, x, "conv1", lesions, cache_budget=0, batch_size=100, pack_size=1)
    budget = int(3 * 50 * small.row_bytes)
    result = check_same(cnn, x, "conv1", lesions, cache_budget=0, batch_size=100, memory_budget=budget)
    assert result.cache == "zarr"
    assert result.pack_size * result.stimulus_chunk * result.row_bytes + result.stimulus_chunk * result.frontier_bytes <= budget
    assert result.stimulus_chunk < 454
    assert os.listdir(tmp_path) == []  # the temporary zarr arrays are gone


def test_pack_size_rule(mlp, x):
    big = lesion_predictions(mlp, x, "fc2", single_unit_lesions(100), memory_budget=1 << 40)
    assert (big.pack_size, big.stimulus_chunk) == (100, 454)
    budget = int(454 * (10 * big.row_bytes + big.frontier_bytes))
    mid = lesion_predictions(mlp, x, "fc2", single_unit_lesions(100), memory_budget=budget)
    assert mid.stimulus_chunk == 454 and mid.pack_size == 10
    tiny = lesion_predictions(mlp, x, "fc2", single_unit_lesions(100), memory_budget=int(100 * big.row_bytes))
    assert tiny.pack_size == 1 and tiny.stimulus_chunk < 100
    assert torch.equal(tiny.predictions, big.predictions) and torch.equal(mid.predictions, big.predictions)


# ---------------------------------------------------------------- linear shortcut


def test_linear_shortcut_matches_within_tolerance(mlp, x):
    means = unit_means(mlp, x, "fc2")
    lesions = single_unit_lesions(100) + single_unit_lesions(100, "mean")[::7] + single_unit_lesions(100, "clamp", value=2.0)[::9]
    fast = lesion_predictions(mlp, x, "fc2", lesions, means=means, shortcut=True, return_logits=True)
    assert fast.shortcut
    slow, logits = obvious_predictions(mlp, x, "fc2", lesions, means=means, return_logits=True)
    torch.testing.assert_close(fast.logits, logits, rtol=1e-5, atol=1e-5)
    top2 = logits.topk(2, dim=2).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4  # predictions may differ only at (near) ties
    assert torch.equal(fast.predictions[clear], slow[clear])
    assert torch.equal(fast.predictions, slow)  # and on these data there is none
    # not applicable (conv region, group lesion): the recomputing path, exactly equal
    assert not lesion_predictions(mlp, x, "fc2", [[1, 2]], shortcut=True).shortcut


@pytest.mark.parametrize("value", [0.0, 5.0, 50.0])
def test_readout_margin_test_decides_exactly(mlp, x, value):
    """fc3 feeds the readout: most lesions are decided by the margin bound, the rest computed."""
    lesions = single_unit_lesions(100, "clamp", value=value) if value else single_unit_lesions(100)
    slow = obvious_predictions(mlp, x, "fc3", lesions)
    fast = lesion_predictions(mlp, x, "fc3", lesions, shortcut=True, pack_size=7)
    assert fast.shortcut and torch.equal(fast.predictions, slow)
    if value == 50.0:
        assert (slow != fast.intact_predictions).float().mean() > 0.05  # many winners do change


def test_readout_margin_test_on_scattered_units_and_mixed_methods(mlp, x):
    """Units in no order (gathered, not sliced), repeated, with mean and clamp lesions mixed in one pack."""
    order = torch.randperm(100, generator=torch.Generator().manual_seed(3)).tolist()
    means = unit_means(mlp, x, "fc3")
    lesions = ([Lesion((u,), "clamp", value=20.0) for u in order[:40]] + [Lesion((u,), "mean") for u in order[40:70]]
               + [Lesion((u,)) for u in order[70:]] + [Lesion((order[0],), "clamp", value=20.0)])
    slow = obvious_predictions(mlp, x, "fc3", lesions, means=means)
    fast = lesion_predictions(mlp, x, "fc3", lesions, means=means, pack_size=17)
    assert fast.shortcut and torch.equal(fast.predictions, slow)
    assert (slow != fast.intact_predictions).any()


# ---------------------------------------------------------------- the model is left as found


@pytest.mark.parametrize("kind", ["sequential", "full"])
@pytest.mark.parametrize("function", [lesion_predictions, obvious_predictions])
def test_model_left_as_found_after_a_call_that_raised(x, kind, function):
    if kind == "sequential":
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), Boom(), nn.Linear(16, 10))
    else:
        model = seeded(Branchy)
        model.b = nn.Sequential(model.b, Boom())
    model.train()
    model[1].eval() if kind == "sequential" else model.a.eval()
    modes = [m.training for m in model.modules()]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsplittableModelWarning)
        with pytest.raises(RuntimeError, match="boom"):
            function(model, x, "a" if kind == "full" else "2", single_unit_lesions(4), **({"cache_budget": 0} if function is lesion_predictions else {}))
    assert no_hooks(model)
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_model_left_as_found_after_success(mlp, x):
    mlp.train()
    try:
        LesionSweep("fc2", [0, 1]).run(mlp, x[:20])
        obvious_predictions(mlp, x[:20], "fc2", [0])
        assert mlp.training and all(m.training for m in mlp.modules()) and no_hooks(mlp)
    finally:
        mlp.eval()


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "region, lesions, options, error, match",
    [
        ("fc9", [0], {}, RegionError, r"no region named 'fc9'.*did you mean"),
        ("fc2", [100], {}, ValueError, r"lesion 0: units must be channel indices in \[0, 100\) of region 'fc2'.*got \[100\]"),
        ("fc2", [[]], {}, ValueError, r"lesion 0: units must be a non-empty sequence"),
        ("fc2", [Lesion((0,), "cut")], {}, ValueError, r"lesion 0: method must be one of 'zero', 'mean', 'noise', 'clamp'; got 'cut'"),
        ("fc2", [0, Lesion((1,), "mean")], {}, ValueError, r"lesion 1 uses method 'mean', which needs means"),
        ("fc2", [Lesion((1,), "mean")], {"means": torch.zeros(7)}, ValueError, r"means must have shape \(100,\).*got shape \(7,\)"),
        ("fc2", [Lesion((1,), "noise", std=-1.0)], {}, ValueError, r"std must be a finite number >= 0"),
        ("fc2", [], {}, ValueError, r"The lesions parameter of lesion_predictions must hold at least one lesion"),
        ("fc2", Lesion((1,)), {}, TypeError, r"The lesions parameter of lesion_predictions must be a sequence"),
        ("fc2", [0], {"pack_size": 0}, ValueError, r"The pack_size parameter of lesion_predictions must be an int >= 1 or None; got 0"),
        ("fc2", [0], {"batch_size": 2.5}, ValueError, r"The batch_size parameter .* got 2.5"),
    ],
)
def test_bad_arguments(mlp, x, region, lesions, options, error, match):
    with pytest.raises(error, match=match):
        lesion_predictions(mlp, x, region, lesions, **options)
    assert no_hooks(mlp) and not mlp.training
