"""The fast lesion sweep equals the obvious loop, per stimulus, on every kind of split."""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurorecord.errors import RegionError
from neurorecord.lesion import (
    Lesion,
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


def check_same(model, x, region, lesions, *, shortcut_runs, **options):
    """Fast == obvious (predictions exactly, logits to float rounding) on both paths: the default
    (the shortcut where it applies: ``shortcut_runs`` says whether it must here) and every layer
    after the region recomputed (``shortcut=False``), each checked to have run the path it names;
    returns the default result."""
    means = options.pop("means", None)
    slow, slow_logits = obvious_predictions(model, x, region, lesions, means=means, seed=options.get("seed", 0), return_logits=True)
    default = lesion_predictions(model, x, region, lesions, means=means, return_logits=True, **options)
    exact = lesion_predictions(model, x, region, lesions, means=means, return_logits=True, shortcut=False, **options)
    assert not exact.shortcut and exact.shortcut_reason == ""  # not asked for: recomputed
    # the default ran the shortcut exactly where it applies, and says why where it did not
    assert default.shortcut == shortcut_runs and (default.shortcut_reason == "") == shortcut_runs
    for fast in (default, exact):
        assert torch.equal(fast.predictions, slow)
        torch.testing.assert_close(fast.logits, slow_logits, rtol=1e-5, atol=1e-5)
        assert torch.equal(fast.intact_predictions, model(x).argmax(1))
    return default


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ---------------------------------------------------------------- equality with the obvious loop


def test_mlp_all_single_unit_zero_lesions_of_fc2(mlp, x):
    result = check_same(mlp, x, "fc2", single_unit_lesions(100), shortcut_runs=True)
    assert result.split_kind == "sequential" and result.cache == "memory" and result.shortcut
    # the plan was measured: pack sizes 1, 4, ... on the first 64 stimuli, upstream batches from 64
    kinds = [probe[0] for probe in result.plan.probes]
    assert kinds[0] == "upstream" and "downstream" in kinds
    assert [probe[1] for probe in result.plan.probes if probe[0] == "downstream"][:2] == [1, 1]
    assert (result.pack_size, result.stimulus_chunk, result.upstream_batch) == (result.plan.pack_size, result.plan.stimulus_chunk,
                                                                                result.plan.upstream_batch)
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
        result = check_same(mlp, x, "fc2", lesions, means=means, seed=3, pack_size=pack_size, shortcut_runs=False)
    assert result.pack_size == 7 and not result.shortcut and result.shortcut_reason == "a noise lesion"


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
    result = check_same(cnn, x, region, single_unit_lesions(n_channel), shortcut_runs=region != "conv2")
    assert result.split_kind == "sequential"
    assert (result.predictions != result.intact_predictions).any()


@pytest.mark.parametrize("per", ["channel", "unit"])
def test_cnn_mean_and_noise_channel_lesions(cnn, x, per):
    means = unit_means(cnn, x, "conv2", per=per)
    assert tuple(means.shape) == ((32,) if per == "channel" else (32, 8, 8))
    lesions = single_unit_lesions(32, "mean") + [Lesion((0, 5), "noise", std=0.5), Lesion(tuple(range(16)), "clamp", value=0.2)]
    check_same(cnn, x, "conv2", lesions, means=means, pack_size=9, shortcut_runs=False)


def test_unit_means_match_numpy(cnn, x):
    with torch.no_grad():
        h = torch.nn.Sequential(*list(cnn.children())[:2])(x).numpy()
    np.testing.assert_allclose(unit_means(cnn, x, "conv2").numpy(), h.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("region", ["relu1", "relu2", "conv3", "fc"])
def test_skip_connection_model_uses_fx(x, region):
    model = seeded(Skip)
    n_channel = 10 if region == "fc" else 8
    lesions = single_unit_lesions(n_channel) + [Lesion(tuple(range(n_channel)))]
    result = check_same(model, x, region, lesions, shortcut_runs=False)
    assert result.split_kind == "fx" and "not cut as an nn.Sequential chain" in result.shortcut_reason
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
        result = check_same(model, x, region, lesions, shortcut_runs=False)
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
    result = check_same(mlp, x, "fc2.linear", single_unit_lesions(100, "clamp", value=-1.0)[::10], shortcut_runs=False)
    assert "goes into a ReLU" in result.shortcut_reason


# ---------------------------------------------------------------- memory: zarr cache, the plan


def test_zarr_cache_and_stimulus_chunks(cnn, x, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    lesions = single_unit_lesions(16)
    small = lesion_predictions(cnn, x, "conv1", lesions, cache_budget=0, batch_size=100, pack_size=1)
    budget = int(3 * 50 * small.row_bytes)
    result = check_same(cnn, x, "conv1", lesions, cache_budget=0, batch_size=100, memory_budget=budget, shortcut_runs=True)
    assert result.cache == "zarr"
    assert result.pack_size * result.stimulus_chunk * result.row_bytes + result.stimulus_chunk * result.frontier_bytes <= budget
    assert result.stimulus_chunk < 454
    assert os.listdir(tmp_path) == []  # the temporary zarr arrays are gone


@pytest.mark.parametrize("region", ["fc2", "fc3"])
def test_every_plan_gives_the_same_predictions(mlp, x, region):
    """The plan cuts the work, never changes it: fixed packs and chunks of any size, the measured
    plan and tiny memory budgets all give the obvious loop's predictions."""
    lesions = single_unit_lesions(100)
    slow = obvious_predictions(mlp, x, region, lesions)
    measured = lesion_predictions(mlp, x, region, lesions)
    assert torch.equal(measured.predictions, slow)
    for pack, chunk in [(1, 454), (100, 454), (7, 13), (100, 1), (3, None), (None, 50)]:
        result = lesion_predictions(mlp, x, region, lesions, pack_size=pack, stimulus_chunk=chunk)
        assert torch.equal(result.predictions, slow), (pack, chunk)
        if pack is not None:
            assert result.pack_size == pack
        if chunk is not None:
            assert result.stimulus_chunk == chunk
            assert not [p for p in result.plan.probes if p[0] == "downstream"] or pack is None
    tiny = lesion_predictions(mlp, x, region, lesions, memory_budget=int(100 * measured.row_bytes))
    assert tiny.pack_size == 1 and tiny.stimulus_chunk < 100
    assert torch.equal(tiny.predictions, slow)


def test_pass_sizes_fit_the_memory_budget(mlp, x):
    big = lesion_predictions(mlp, x, "fc2", single_unit_lesions(100), memory_budget=1 << 40)
    budget = int(454 * (10 * big.row_bytes + big.frontier_bytes))
    mid = lesion_predictions(mlp, x, "fc2", single_unit_lesions(100), memory_budget=budget)
    assert mid.pack_size * mid.stimulus_chunk * mid.row_bytes + mid.stimulus_chunk * mid.frontier_bytes <= budget
    for _, pack, chunk, _ in mid.plan.probes:
        assert pack * chunk * mid.row_bytes + chunk * mid.frontier_bytes <= budget or pack == 1
    assert torch.equal(mid.predictions, big.predictions)


def test_plan_measures_pack_sizes_on_the_first_chunk():
    """The planner's ladder: 1, 4, 16, ... lesions per pack on the first chunk while a pass gets
    faster per row (each size on two passes), then passes of the fastest rows."""
    from neurorecord.lesion.plan import PassPlanner

    def run(cost_per_row):  # a fake sweep whose pass time per row depends on the rows only
        planner = PassPlanner(1000, 200, row_bytes=100.0, frontier_bytes=10.0, budget=1 << 40)
        start = 0
        while start < 1000:
            chunk = planner.chunk(start)
            done = 0
            while done < 200:
                pack = planner.pack(start, done)
                done += pack
                planner.observe(start, pack, chunk, cost_per_row(pack * chunk) * pack * chunk, done)
            start += chunk
        return planner.plan(1, [])

    faster_until_1024 = run(lambda rows: 1.0 + 100.0 / rows if rows <= 1024 else 2.0)  # a fixed cost per pass, then caches
    assert [p[1] for p in faster_until_1024.probes] == [1, 1, 4, 4, 16, 16, 64, 64]
    # then passes of about the 16 x 64 rows found fastest, as many stimuli per pass as they allow
    assert (faster_until_1024.pack_size, faster_until_1024.stimulus_chunk) == (1, 1000)
    small_is_best = run(lambda rows: rows)
    assert [p[1] for p in small_is_best.probes] == [1, 1, 4, 4]
    assert (small_is_best.pack_size, small_is_best.stimulus_chunk) == (1, 64)


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
def test_readout_shortcut_decides_exactly(mlp, x, value):
    """fc3 feeds the readout: the shortcut updates the logits themselves (rank 1), and its
    predictions equal the obvious loop's, also where many winners change."""
    lesions = single_unit_lesions(100, "clamp", value=value) if value else single_unit_lesions(100)
    slow = obvious_predictions(mlp, x, "fc3", lesions)
    fast = lesion_predictions(mlp, x, "fc3", lesions, shortcut=True, pack_size=7)
    assert fast.shortcut and torch.equal(fast.predictions, slow)
    if value == 50.0:
        assert (slow != fast.intact_predictions).float().mean() > 0.05  # many winners do change


def test_readout_shortcut_on_scattered_units_and_mixed_methods(mlp, x):
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
        lesion_predictions(mlp, x[:20], "fc2", [0, 1])
        obvious_predictions(mlp, x[:20], "fc2", [0])
        assert mlp.training and all(m.training for m in mlp.modules()) and no_hooks(mlp)
    finally:
        mlp.eval()


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "region, lesions, options, error, match",
    [
        ("fc9", [0], {}, RegionError, r"no region named 'fc9'.*did you mean"),
        ("fc2", [100], {}, ValueError, r"lesions\[0\].units: expected channel indices in \[0, 100\) of region 'fc2'.*found \[100\]"),
        ("fc2", [[]], {}, ValueError, r"lesions\[0\].units: expected a non-empty sequence"),
        ("fc2", [Lesion((0,), "cut")], {}, ValueError, r"lesions\[0\].method: expected one of 'zero', 'mean', 'noise', 'clamp', found 'cut'"),
        ("fc2", [0, Lesion((1,), "mean")], {}, ValueError, r"means: expected .* for lesions\[1\] of method 'mean'; found None"),
        ("fc2", [Lesion((1,), "mean")], {"means": torch.zeros(7)}, ValueError, r"means: expected shape \(100,\).*found shape \(7,\)"),
        ("fc2", [Lesion((1,), "noise", std=-1.0)], {}, ValueError, r"lesions\[0\].std: expected a finite number >= 0, found -1.0"),
        ("fc2", [], {}, ValueError, r"lesions: expected at least one lesion, found an empty sequence"),
        ("fc2", Lesion((1,)), {}, TypeError, r"lesions: expected a sequence of Lesion \(or of unit indices\), found Lesion"),
        ("fc2", [0], {"pack_size": 0}, ValueError, r"pack_size: expected an integer >= 1 or None, found 0"),
        ("fc2", [0], {"batch_size": 2.5}, ValueError, r"batch_size: expected an integer >= 1 or None, found 2.5 \(float\)"),
        ("fc2", [0], {"stimulus_chunk": -3}, ValueError, r"stimulus_chunk: expected an integer >= 1 or None, found -3"),
        ("fc2", [0], {"seed": -1}, ValueError, r"seed: expected an integer >= 0, found -1"),
    ],
)
def test_bad_arguments(mlp, x, region, lesions, options, error, match):
    with pytest.raises(error, match=match):
        lesion_predictions(mlp, x, region, lesions, **options)
    assert no_hooks(mlp) and not mlp.training


def test_every_call_checks_its_split(mlp, x, monkeypatch):
    """No cache of checked splits: each call cuts and checks the model as it is now, so a changed
    model (new weights, a replaced layer) is never run through a stale cut."""
    from neurorecord.lesion import split as split_module

    seen: list[str] = []
    real = split_module._verify
    monkeypatch.setattr(split_module, "_verify", lambda split, model, example: seen.append(split.kind) or real(split, model, example))
    own = copy.deepcopy(mlp).eval()
    before = lesion_predictions(own, x, "fc2", single_unit_lesions(100)).predictions
    with torch.no_grad():
        for p in own.parameters():
            p.mul_(-1.0)
    own.fc3.linear = nn.Linear(100, 100)
    after = lesion_predictions(own, x, "fc2", single_unit_lesions(100)).predictions
    assert seen == ["sequential", "sequential"]
    assert not torch.equal(before, after) and torch.equal(after, obvious_predictions(own, x, "fc2", single_unit_lesions(100)))
