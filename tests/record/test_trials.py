"""Trial-to-trial variability: jitter shifts, input noise, dropout as neural noise; seeded and resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

import neurorecord
from neurorecord.errors import RegionError
from neurorecord.protocol.schema import DropoutNoise, Variability
from neurorecord.store import read_run_state
from neurorecord.store import write_run_state
from neurorecord.record.trials import TrialVariability
from neurorecord.subjects import digits_mlp
from tests.helpers import DIGITS_MLP


def _slow_shift(image: np.ndarray, dy: int, dx: int, fill: float) -> np.ndarray:
    """Reference: move the content of one (C, H, W) image by (dy, dx) pixel by pixel."""
    out = np.full_like(image, fill)
    _, h, w = image.shape
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[:, r, c] = image[:, r - dy, c - dx]
    return out


def test_jitter_matches_pixel_by_pixel_shift():
    v = TrialVariability(Variability(jitter=2, fill=-1.0), seed=5, n_presentations=40)
    x = torch.rand(40, 2, 7, 9)
    got = v.apply(x, start=0).numpy()
    coords = v.coords()
    for i in range(40):
        want = _slow_shift(x[i].numpy(), int(coords["jitter_y"][i]), int(coords["jitter_x"][i]), -1.0)
        np.testing.assert_array_equal(got[i], want)


def test_jitter_sequence_frames_move_together_and_offset_start_is_used():
    v = TrialVariability(Variability(jitter=1), seed=1, n_presentations=10)
    x = torch.rand(4, 3, 1, 6, 6)  # presentations 6..9, three frames each
    got = v.apply(x, start=6).numpy()
    c = v.coords()
    for i in range(4):
        for t in range(3):
            want = _slow_shift(x[i, t].numpy(), int(c["jitter_y"][6 + i]), int(c["jitter_x"][6 + i]), 0.0)
            np.testing.assert_array_equal(got[i, t], want)


def test_jitter_shifts_are_seeded_uniform_and_cover_the_range():
    a = TrialVariability(Variability(jitter=2), seed=3, n_presentations=5000).coords()
    b = TrialVariability(Variability(jitter=2), seed=3, n_presentations=5000).coords()
    c = TrialVariability(Variability(jitter=2), seed=4, n_presentations=5000).coords()
    assert np.array_equal(a["jitter_x"], b["jitter_x"]) and not np.array_equal(a["jitter_x"], c["jitter_x"])
    for key in ("jitter_x", "jitter_y"):
        values, counts = np.unique(a[key], return_counts=True)
        assert values.tolist() == [-2, -1, 0, 1, 2]
        assert counts.min() > 900 and counts.max() < 1100  # 1000 expected each
    assert TrialVariability(None, seed=0, n_presentations=3).coords() == {}


def test_input_noise_has_the_asked_standard_deviation_and_is_seeded():
    v = TrialVariability(Variability(input_noise=0.3), seed=0, n_presentations=200)
    x = torch.rand(200, 1, 16, 16)
    torch.manual_seed(11)
    a = v.apply(x, 0)
    torch.manual_seed(11)
    b = v.apply(x, 0)
    assert torch.equal(a, b)
    noise = (a - x).numpy().ravel()
    assert abs(noise.std() - 0.3) < 0.005 and abs(noise.mean()) < 0.005


def test_dropout_silences_the_asked_fraction_rescales_and_is_removed_after():
    model = digits_mlp().eval()
    v = TrialVariability(Variability(dropout=DropoutNoise(region="fc1.linear", p=0.25)), seed=0, n_presentations=1)
    v.check_region(model)
    x = torch.rand(4000, 1, 8, 8)
    captured = {}
    handle = model.fc1.linear.register_forward_hook(lambda m, i, o: captured.__setitem__("out", o))
    with torch.inference_mode():
        clean = model.fc1.linear(x.flatten(1))
        with v.neural_noise(model):
            model(x)
        noisy = captured["out"]
        model(x)
        after = captured["out"]
    handle.remove()
    dropped = (noisy == 0) & (clean != 0)
    assert abs(dropped.float().mean().item() - 0.25) < 0.01
    kept = noisy != 0
    torch.testing.assert_close(noisy[kept], clean[kept] / 0.75)
    assert torch.equal(after, clean)  # hook gone


def test_unknown_dropout_region_is_named_with_valid_names():
    v = TrialVariability(Variability(dropout=DropoutNoise(region="fc9", p=0.1)), seed=0, n_presentations=1)
    with pytest.raises(RegionError, match=r"record.variability.dropout.region: no module named 'fc9' .*did you mean 'fc[0-9]'.*valid names: flatten, fc1, fc1.linear"):
        v.check_region(digits_mlp())


NOISY = DIGITS_MLP.replace("  reduce: mean\n", "  reduce: mean\n  repetitions: 3\n  variability: {input_noise: 0.05, jitter: 1, dropout: {region: fc2, p: 0.1}}\n")


def test_repetitions_differ_runs_repeat_and_resume_matches(write_protocol, tmp_path):
    path = write_protocol(NOISY)
    tree = neurorecord.run(path, tmp_path / "a", quiet=True)
    act = tree["fc3"]["activity"].values
    assert act.shape == (3 * 454, 100)
    assert not np.allclose(act[:454], act[454:908])  # trials differ
    assert {"jitter_x", "jitter_y"} <= set(tree["fc1"].to_dataset().coords)
    fc2 = tree["fc2"]["activity"].values
    assert 0.05 < float((fc2 == 0).mean() - (neurorecord.run(write_protocol(DIGITS_MLP, "clean.yaml"), tmp_path / "clean", quiet=True)["fc2"]["activity"].values == 0).mean()) < 0.15
    again = neurorecord.run(path, tmp_path / "b", quiet=True)
    assert np.array_equal(again["fc3"]["activity"].values, act)
    # an interruption after the first chunk (8 batches of 100): the later batches are redrawn exactly
    group = zarr.open_group(tmp_path / "b", mode="r+")
    state = read_run_state(tmp_path / "b")
    assert state.batches_per_chunk == 8
    state.stage, state.batches_done = "recording", 8
    for region in ("fc1", "fc2", "fc3"):
        group[f"{region}/activity"][800:] = 0.0
    group.attrs["complete"] = False
    write_run_state(group, state)
    resumed = neurorecord.run(path, tmp_path / "b", resume=True, quiet=True)
    assert np.array_equal(resumed["fc3"]["activity"].values, act)


def test_noise_free_repetitions_are_identical(write_protocol, tmp_path):
    tree = neurorecord.run(write_protocol(DIGITS_MLP.replace("  reduce: mean\n", "  reduce: mean\n  repetitions: 2\n")), tmp_path / "o", quiet=True)
    act = tree["fc1"]["activity"].values
    assert np.array_equal(act[:454], act[454:])
