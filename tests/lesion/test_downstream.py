"""Downstream activity change: the packed fast pass equals an obvious per-lesion loop, on every split.

The reference (``obvious_downstream``) reruns the whole network once intact and once per lesion,
with forward hooks that apply the lesion and copy the downstream regions' outputs, and computes
every measure in float64 numpy from those copies.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from neurorecord.errors import RegionError
from neurorecord.lesion import (
    Lesion,
    UnsplittableModelWarning,
    downstream_regions,
    lesion_predictions,
    obvious_predictions,
    single_unit_lesions,
    unit_means,
)
from neurorecord.lesion.specs import _pack, apply_lesions
from neurorecord.subjects import load_zoo_subject

from .test_sweep import Branchy, Layers, Skip, seeded


class Blocky(nn.Module):
    """A general forward (fx split) whose downstream region ``block`` is a Sequential, which fx
    would trace into (losing its hooks) unless it is kept whole."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 24)
        self.block = nn.Sequential(nn.Linear(24, 24), nn.Tanh(), nn.Linear(24, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x.flatten(1)))
        return self.block(h) + 0.5 * h[:, :10]


class Twice(nn.Module):
    """Writes into its input: ``x *= 2`` (an in-place operation that is not idempotent)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(2.0)


class InplaceSkip(nn.Module):
    """ResNet-style block whose sum is written into the region's output: ``out.add_(h)`` (torch.fx
    traces ``out += h`` as an out-of-place add, but keeps ``add_``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        out = self.conv2(h)
        out.add_(h)
        return self.fc(torch.relu(out).flatten(1))


class Pair(nn.Module):
    """Returns a tuple: not a region whose activity can be measured."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


class Score(nn.Module):
    """One number per stimulus, (stimulus,): not a (stimulus, unit) output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1)


class PairUser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.pair, self.b, self.score = nn.Linear(64, 16), Pair(), nn.Linear(16, 10), Score()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.pair(torch.relu(self.a(x.flatten(1))))
        return self.b(h) + self.score(h)[:, None]


def conv_flatten_linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


def obvious_downstream(model: nn.Module, x: torch.Tensor, region: str, lesions: list, downstream: list[str],
                       means: torch.Tensor | None = None, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Every measure, the obvious way: one full forward per lesion, float64 numpy."""
    modules = dict(model.named_modules())
    captured: dict[str, np.ndarray] = {}

    def capture(name):
        def hook(module, inputs, output):
            captured[name] = output.detach().double().reshape(output.shape[0], output.shape[1], -1).numpy().copy()
        return hook

    handles = [modules[r].register_forward_hook(capture(r)) for r in downstream]
    runs = []
    try:
        with torch.inference_mode():
            model.eval()(x)
            intact = dict(captured)
            for i, lesion in enumerate(lesions):
                lesion = lesion if isinstance(lesion, Lesion) else Lesion(lesion)

                def edit(module, inputs, output, lesion=lesion, i=i):
                    if lesion.method == "noise":  # the sweep's own noise draws, so that both see the same noise
                        return apply_lesions(output, _pack([lesion], i, tuple(output.shape[1:]), means, seed, output.dtype, output.device),
                                             0, output.shape[0])
                    out = output.clone()
                    units = list(lesion.units)
                    if lesion.method == "zero":
                        out[:, units] = 0.0
                    elif lesion.method == "clamp":
                        out[:, units] = lesion.value
                    else:
                        m = means.reshape(means.shape[0], *([1] * (output.ndim - 2))) if means.ndim == 1 else means
                        out[:, units] = m[units].to(out.dtype)
                    return out

                handle = modules[region].register_forward_hook(edit)
                try:
                    model(x)
                finally:
                    handle.remove()
                runs.append(dict(captured))
    finally:
        for handle in handles:
            handle.remove()
    out = {}
    for r in downstream:
        a = intact[r]
        d = np.stack([run[r] for run in runs]) - a  # (lesion, stimulus, channel, position)
        out[r] = {"relative": np.sqrt((d**2).sum(axis=(1, 2, 3)) / (a**2).sum()), "unit": d.mean(axis=(1, 3)),
                  "abs": np.abs(d).mean(axis=(1, 3)), "intact": a.mean(axis=(0, 2)), "sq": (d**2).sum(axis=(1, 2, 3))}
    return out


def check_downstream_equal(result, reference, rtol=1e-6):
    """Every measure of ``result.downstream`` equals the reference (float rounding)."""
    activity = result.downstream
    offset = 0
    for j, region in enumerate(activity.regions):
        ref, c = reference[region], activity.channels[j]
        scale = max(ref["abs"].max(), 1e-12)
        np.testing.assert_allclose(activity.relative_change[:, j], ref["relative"], rtol=rtol, atol=rtol * ref["relative"].max())
        np.testing.assert_allclose(activity.sq_change[:, j], ref["sq"], rtol=rtol, atol=rtol * ref["sq"].max())
        np.testing.assert_allclose(activity.unit_change[:, offset : offset + c], ref["unit"], rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(activity.unit_abs_change[:, offset : offset + c], ref["abs"], rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(activity.unit_activity_intact[offset : offset + c], ref["intact"], rtol=1e-6, atol=1e-7)
        offset += c
    assert activity.unit_change.shape[1] == offset


# ---------------------------------------------------------------- which modules are downstream


def test_downstream_regions_follow_the_data(mlp, x):
    assert downstream_regions(mlp, "fc2", x[:1]) == ["fc3", "fc3.linear", "fc3.relu", "out"]
    # the skip connection: conv2 .. conv3 and fc depend on relu1, conv1 does not
    assert downstream_regions(seeded(Skip), "relu1", x[:1]) == ["conv2", "relu2", "conv3", "fc"]
    assert downstream_regions(seeded(Skip), "conv3", x[:1]) == ["fc"]
    # left as found: no hook, same mode
    assert mlp.training is False and all(not m._forward_hooks for m in mlp.modules())


# ---------------------------------------------------------------- fast pass == obvious loop


def test_mlp_every_method_many_packs_and_chunks(mlp, x):
    means = unit_means(mlp, x, "fc2")
    lesions = [*single_unit_lesions(12), *single_unit_lesions(6, "mean"), *single_unit_lesions(4, "clamp", value=2.5),
               Lesion((0, 1), "noise", std=1.0), Lesion(tuple(range(50))), [3, 7, 11]]
    downstream = ["fc3", "out", "fc3.linear"]
    result = lesion_predictions(mlp, x, "fc2", lesions, means=means, seed=5, pack_size=4, memory_budget=200_000, downstream=downstream)
    assert result.pack_size == 4 and result.stimulus_chunk < 454  # several packs and several chunks
    check_downstream_equal(result, obvious_downstream(mlp, x, "fc2", lesions, downstream, means=means, seed=5))
    assert torch.equal(result.predictions, obvious_predictions(mlp, x, "fc2", lesions, means=means, seed=5))
    assert result.downstream.neuroid_ids()[:2] == ["fc3.0", "fc3.1"] and result.downstream.n_stimuli == 454
    # silencing half of fc2 changes fc3 more than silencing one unit
    rel = result.downstream.relative_change[:, 0]
    assert rel[-2] > 5 * rel[:12].max() > 0


@pytest.mark.parametrize("region, downstream", [("conv1", ["conv2", "pool", "fc1", "out"]), ("conv2", ["fc1.linear", "out"])])
def test_cnn_channels_at_every_position(cnn, x, region, downstream):
    n = 16 if region == "conv1" else 32
    means = unit_means(cnn, x, region, per="unit")
    lesions = single_unit_lesions(n) + [Lesion((1, 2), "mean"), Lesion((0,), "noise", std=0.3)]
    result = lesion_predictions(cnn, x, region, lesions, means=means, downstream=downstream, pack_size=5)
    check_downstream_equal(result, obvious_downstream(cnn, x, region, lesions, downstream, means=means))
    pool = downstream.index("pool") if "pool" in downstream else None
    if pool is not None:  # 32 channels of 4 x 4 positions, averaged over positions
        assert (result.downstream.channels[pool], result.downstream.positions[pool]) == (32, 16)


@pytest.mark.parametrize(
    "cls, region, downstream, kind",
    [
        (Skip, "relu1", ["conv2", "conv3", "fc"], "fx"),
        (Blocky, "a", ["block", "block.1"], "fx"),  # 'block' must stay a whole module in the traced graph
        (Branchy, "a", ["b", "c"], "full"),
    ],
)
def test_other_splits(x, cls, region, downstream, kind):
    model = seeded(cls)
    n = {"relu1": 8, "a": 24 if cls is Blocky else 32}[region]
    lesions = single_unit_lesions(n) + [Lesion((0, 1))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsplittableModelWarning)
        result = lesion_predictions(model, x, region, lesions, downstream=downstream, pack_size=6)
    assert result.split_kind == kind
    check_downstream_equal(result, obvious_downstream(model, x, region, lesions, downstream))


def test_without_downstream_nothing_is_measured(mlp, x):
    assert lesion_predictions(mlp, x[:10], "fc2", [0]).downstream is None


# ---------------------------------------------------------------- the packed buffer and in-place operations


@pytest.mark.parametrize("kind", ["sequential", "fx"])
def test_downstream_that_writes_into_its_input(x, kind):
    """The packed frontier is reused across packs; an in-place operation downstream must not leak
    from one pack into the next (the buffers are filled again when their version changes)."""
    if kind == "sequential":
        torch.manual_seed(0)
        model, region = nn.Sequential(nn.Flatten(), nn.Linear(64, 20), Twice(), nn.ReLU(), nn.Linear(20, 10)).eval(), "1"
        lesions = single_unit_lesions(20) + single_unit_lesions(20, "clamp", value=-1.0)
    else:
        model, region = seeded(InplaceSkip), "conv2"
        lesions = single_unit_lesions(6) + single_unit_lesions(6, "clamp", value=0.7)
    fast = lesion_predictions(model, x, region, lesions, pack_size=3, return_logits=True)
    assert fast.split_kind == kind
    slow, logits = obvious_predictions(model, x, region, lesions, return_logits=True)
    assert torch.equal(fast.predictions, slow)
    torch.testing.assert_close(fast.logits, logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(fast.intact_predictions, model(x).argmax(1))


def test_predictions_of_exact_ties_match_argmax(x):
    """Two classes with identical weights tie exactly on every stimulus: the fast path reports the
    first, as argmax does."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 4)).eval()
    with torch.no_grad():
        model[3].weight[2] = model[3].weight[1]
        model[3].bias[2] = model[3].bias[1]
        model[3].weight[1] += 5.0  # class 1 (= class 2) wins most stimuli
    result = lesion_predictions(model, x, "2", single_unit_lesions(12), pack_size=5)
    assert (result.predictions == 1).any() and not (result.predictions == 2).any()
    assert torch.equal(result.predictions, obvious_predictions(model, x, "2", single_unit_lesions(12)))


def test_upstream_batches_measured_or_fixed(cnn, x):
    """The upstream part runs in batches of 64, 256, ... while they get faster per stimulus (each
    size on two batches where the stimuli allow); a batch_size fixes it. Predictions never change."""
    measured = lesion_predictions(cnn, x, "conv2", single_unit_lesions(4))
    sizes = [probe[2] for probe in measured.plan.probes if probe[0] == "upstream"]
    assert sizes[:2] == [64, 64] and set(sizes) <= {64, 256} and measured.upstream_batch in (64, 256)
    fixed = lesion_predictions(cnn, x, "conv2", single_unit_lesions(4), batch_size=50)
    assert fixed.upstream_batch == 50 and not [p for p in fixed.plan.probes if p[0] == "upstream"]
    assert torch.equal(fixed.predictions, measured.predictions)
    # a memory budget caps the batch: at most the stimuli whose upstream pass fits it
    capped = lesion_predictions(cnn, x, "conv2", single_unit_lesions(4), memory_budget=1 << 20)
    assert capped.upstream_batch < 64 and torch.equal(capped.predictions, measured.predictions)


# ---------------------------------------------------------------- the linear shortcut


def test_shortcut_with_downstream_regions(mlp, x):
    means = unit_means(mlp, x, "fc2")
    lesions = single_unit_lesions(100) + single_unit_lesions(100, "mean")[::9]
    downstream = ["fc3.linear", "fc3", "out"]
    result = lesion_predictions(mlp, x, "fc2", lesions, means=means, shortcut=True, downstream=downstream)
    assert result.shortcut
    # the shortcut's rounding differs from the recomputation's: 1e-4 relative on small changes
    check_downstream_equal(result, obvious_downstream(mlp, x, "fc2", lesions, downstream, means=means), rtol=1e-4)
    assert torch.equal(result.predictions, obvious_predictions(mlp, x, "fc2", lesions, means=means))


def test_conv_region_flatten_linear_shortcut(x):
    """A conv channel lesion before Flatten -> Linear: a rank-(positions) update of the linear
    layer, equal to the recomputation within float rounding (logits to 1e-5), predictions equal
    except at near ties."""
    model = conv_flatten_linear()
    means = unit_means(model, x, "3", per="unit")
    lesions = single_unit_lesions(6) + single_unit_lesions(6, "mean") + single_unit_lesions(6, "clamp", value=0.4)
    fast = lesion_predictions(model, x, "3", lesions, means=means, shortcut=True, return_logits=True, pack_size=5)
    assert fast.shortcut and fast.pack_size == 5
    slow, logits = obvious_predictions(model, x, "3", lesions, means=means, return_logits=True)
    torch.testing.assert_close(fast.logits, logits, rtol=1e-5, atol=1e-5)
    top2 = logits.topk(2, dim=2).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4
    assert torch.equal(fast.predictions[clear], slow[clear])
    assert torch.equal(fast.predictions, slow)  # and on these data there is no near tie
    exact = lesion_predictions(model, x, "3", lesions, means=means, shortcut=False)
    assert not exact.shortcut and torch.equal(exact.predictions, slow)


@pytest.mark.parametrize("model_name, region, n", [("convs", "1", 8), ("cnn", "conv1", 16)])
def test_conv_region_conv_shortcut(cnn, x, model_name, region, n):
    """A conv channel lesion before a Conv2d: the channel's change convolved alone, added to the
    intact output; equal to the recomputation within float rounding."""
    model = conv_flatten_linear() if model_name == "convs" else cnn
    after = "2" if model_name == "convs" else "conv2"
    means = unit_means(model, x, region, per="unit")
    lesions = single_unit_lesions(n) + single_unit_lesions(n, "mean")[::3] + single_unit_lesions(n, "clamp", value=0.4)[::3]
    fast = lesion_predictions(model, x, region, lesions, means=means, shortcut=True, return_logits=True, pack_size=5,
                              downstream=[after])
    assert fast.shortcut and fast.pack_size == 5
    slow, logits = obvious_predictions(model, x, region, lesions, means=means, return_logits=True)
    torch.testing.assert_close(fast.logits, logits, rtol=1e-5, atol=1e-5)
    top2 = logits.topk(2, dim=2).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4
    assert torch.equal(fast.predictions[clear], slow[clear])
    assert torch.equal(fast.predictions, slow)  # and on these data there is no near tie
    check_downstream_equal(fast, obvious_downstream(model, x, region, lesions, [after], means=means), rtol=1e-4)


def test_shortcut_declined_where_it_does_not_apply(mlp, x):
    model = conv_flatten_linear()
    # a downstream region before the linear layer (the Flatten) is not computed by the shortcut
    result = lesion_predictions(model, x[:50], "3", single_unit_lesions(6), shortcut=True, downstream=["4", "5"])
    assert not result.shortcut and result.shortcut_reason == "downstream region '4' is not read after the first linear layer"
    check_downstream_equal(result, obvious_downstream(model, x[:50], "3", single_unit_lesions(6), ["4", "5"]))
    reasons = {"noise": lesion_predictions(mlp, x[:50], "fc2", [Lesion((1,), "noise")], shortcut=True),
               "group": lesion_predictions(mlp, x[:50], "fc2", [[1, 2]], shortcut=True),
               "pool": lesion_predictions(load_zoo_subject("digits-cnn").model, x[:50], "conv2", single_unit_lesions(4), shortcut=True)}
    assert not any(r.shortcut for r in reasons.values())
    assert reasons["noise"].shortcut_reason == "a noise lesion"
    assert reasons["group"].shortcut_reason == "a lesion of several units"
    assert reasons["pool"].shortcut_reason == "the region's output goes into a MaxPool2d, not a Linear, Flatten-Linear or Conv2d"


def test_shortcut_declined_on_a_model_with_hooks_says_so(mlp, x):
    """A forward hook left on the model (the shortcut would bypass it) turns the shortcut off, visibly."""
    handle = mlp.out.register_forward_hook(lambda module, inputs, output: None)
    try:
        result = lesion_predictions(mlp, x[:50], "fc2", single_unit_lesions(5))
    finally:
        handle.remove()
    assert not result.shortcut and result.shortcut_reason == "the model carries forward hooks, which the shortcut would bypass"
    assert lesion_predictions(mlp, x[:50], "fc2", single_unit_lesions(5)).shortcut


# ---------------------------------------------------------------- bad downstream names


@pytest.mark.parametrize(
    "model_name, region, downstream, error, match",
    [
        ("mlp", "fc2", ["fc1"], RegionError, r"lesion.downstream\[0\]: 'fc1' is not downstream of region 'fc2' \(its output does not "
                                              r"depend on the output of 'fc2'\); modules downstream of 'fc2': fc3, fc3.linear, fc3.relu, out"),
        ("mlp", "fc2", ["fc3", "fc33"], RegionError, r"lesion.downstream\[1\]: no module named 'fc33' in the model \(did you mean 'fc3'\?\)"),
        ("mlp", "fc2", ["fc2"], RegionError, r"'fc2' is the lesioned region itself"),
        ("mlp", "fc2.linear", ["fc2"], RegionError, r"'fc2' contains the lesioned region 'fc2.linear'"),
        ("mlp", "fc2", ["out", "out"], ValueError, r"downstream: expected each region once, found 'out' twice"),
        ("mlp", "fc2", "fc3", TypeError, r"downstream: expected a sequence of module names \(such as \['fc3', 'out'\]\), found str 'fc3'"),
        ("mlp", "fc2", [3], TypeError, r"downstream\[0\]: expected a module name \(str\), found int 3"),
        ("layers", "layers.0", ["act"], RegionError, r"region 'act' was called 2 times in one downstream pass"),
        ("pair", "a", ["pair"], RegionError, r"lesion.downstream\[0\]: 'pair' outputs a tuple; a downstream region must output a tensor; "
                                               r"modules downstream of 'a': b, score"),
        ("pair", "a", ["score"], RegionError, r"lesion.downstream: region 'score' outputs shape \(3,\); a downstream region must output "
                                              r"a tensor \(stimulus, unit\) or \(stimulus, channel, ...\)"),
    ],
)
def test_bad_downstream(mlp, x, model_name, region, downstream, error, match):
    model = {"mlp": mlp, "layers": seeded(Layers), "pair": seeded(PairUser)}[model_name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsplittableModelWarning)
        with pytest.raises(error, match=match):
            lesion_predictions(model, x[:20], region, [0], downstream=downstream)
    assert all(not m._forward_hooks for m in model.modules()) and not model.training
