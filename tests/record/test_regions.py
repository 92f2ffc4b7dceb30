"""Region taps and reductions, checked against direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurorecord.errors import RegionError
from neurorecord.record import RegionTap, reduce_output, region_layout
from neurorecord.subjects import digits_cnn, digits_mlp


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return digits_cnn().eval()


def test_tap_matches_direct_module_calls(cnn):
    x = torch.rand(5, 1, 8, 8)
    with torch.inference_mode():
        with RegionTap(cnn, ["conv1", "conv2", "fc1"]) as tap:
            got = tap(x)
        c1 = cnn.conv1(x)
        c2 = cnn.conv2(c1)
        f1 = cnn.fc1(cnn.flatten(cnn.pool(c2)))
    assert torch.equal(got["conv1"], c1) and torch.equal(got["conv2"], c2) and torch.equal(got["fc1"], f1)


def test_tap_stops_after_deepest_region(cnn):
    calls = []
    cnn.out.register_forward_hook(lambda *a: calls.append("out"))
    with RegionTap(cnn, ["conv1"]) as tap:
        tap(torch.rand(2, 1, 8, 8))
        assert calls == []
        _, output = tap.with_output(torch.rand(2, 1, 8, 8))  # the whole pass, for the subject's behaviour
        assert calls == ["out"] and output.shape == (2, 10)
    cnn(torch.rand(2, 1, 8, 8))
    assert calls == ["out", "out"]


def test_tap_hooks_exist_only_inside_the_block(cnn):
    """The regression of the hooks a prepared experiment left on the subject: none before, none after, also after an error."""
    tap = RegionTap(cnn, ["conv1", "fc1"])
    assert not cnn.conv1._forward_hooks  # constructing stores the arguments, nothing more
    with pytest.raises(RuntimeError, match="only inside a `with RegionTap"):
        tap(torch.rand(2, 1, 8, 8))
    with tap:
        assert len(cnn.conv1._forward_hooks) == 1 and len(cnn.fc1._forward_hooks) == 1
    assert not cnn.conv1._forward_hooks and not cnn.fc1._forward_hooks
    with pytest.raises(RuntimeError, match="channels"), RegionTap(cnn, ["conv1", "fc1"]) as tap:
        tap(torch.rand(2, 3, 8, 8))  # wrong channel count: the forward pass raises inside the block
    assert not any(m._forward_hooks for m in cnn.modules())


def test_unknown_region_lists_valid_names():
    with pytest.raises(RegionError, match=r"no region named 'fc4' in the subject \(did you mean 'fc3'\?\); valid regions: flatten, fc1, fc1.linear"):
        with RegionTap(digits_mlp(), ["fc1", "fc4"]):
            pass


@pytest.mark.parametrize("reduce", ["mean", "max", "center", "none"])
def test_reductions_against_numpy(reduce):
    t = torch.randn(3, 4, 5, 6)
    got = reduce_output(t, reduce).numpy()
    a = t.numpy()
    want = {
        "mean": a.mean(axis=(2, 3)),
        "max": a.max(axis=(2, 3)),
        "center": a[:, :, 2, 3],
        "none": a.reshape(3, -1),
    }[reduce]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert got.dtype == np.float32


def test_linear_outputs_are_kept_and_bad_shapes_refused():
    t = torch.randn(2, 7)
    assert torch.equal(reduce_output(t, "mean"), t)
    assert reduce_output(t.double(), "none").dtype == torch.float32
    with pytest.raises(RegionError, match=r"output of shape \(2, 1, 2, 3, 4\) cannot be recorded"):
        reduce_output(torch.zeros(2, 1, 2, 3, 4), "mean")


def test_layout_ids_follow_flattening_order():
    t = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)
    layout = region_layout("conv1", torch.nn.Identity(), t, "none")
    flat = reduce_output(t, "none")[1].numpy()
    ids = layout.coords["neuroid_id"]
    assert len(ids) == 24 and len(set(ids)) == 24
    for k in [0, 5, 13, 23]:
        c, y, x = layout.coords["channel"][k], layout.coords["channel_y"][k], layout.coords["channel_x"][k]
        assert ids[k] == f"conv1.{c}.{y}.{x}"
        assert flat[k] == t[1, c, y, x]
    reduced = region_layout("conv1", torch.nn.Identity(), t, "mean")
    assert list(reduced.coords["neuroid_id"]) == ["conv1.0", "conv1.1", "conv1.2"]
    assert "channel_y" not in reduced.coords
    center = region_layout("conv1", torch.nn.Identity(), t, "center")
    assert list(center.coords["channel_y"]) == [1, 1, 1] and list(center.coords["channel_x"]) == [2, 2, 2]
    assert list(center.coords["region"]) == ["conv1"] * 3


def test_tuple_outputs_record_first_element():
    class Pair(torch.nn.Module):
        def forward(self, x):
            return x * 2, x

    model = torch.nn.Sequential(torch.nn.Flatten(), Pair())
    with RegionTap(model, ["1"]) as tap:
        out = tap(torch.ones(2, 1, 2, 2))
    assert torch.equal(out["1"], torch.full((2, 4), 2.0)) and tap.output_element["1"] == 0
