"""Preprocessing (resize, channels, normalize) on every kind of stimulus set."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from neurorecord.errors import StimulusError
from neurorecord.protocol import protocol_from_text
from neurorecord.protocol.schema import Preprocess
from neurorecord.stimuli import DigitsSet, build_stimulus_sets, load_digits_array
from neurorecord.stimuli.base import StimulusSet
from neurorecord.stimuli.preprocess import PreprocessedSet, convert_channels, normalize_images, resize_images
from tests.helpers import DIGITS_MLP

RNG = np.random.default_rng(1)


class Frames(StimulusSet):
    """A sequence set: n stimuli of T frames of random (C, H, W) images."""

    def __init__(self, n: int = 3, time_steps: int = 2, shape: tuple[int, int, int] = (3, 6, 8)) -> None:
        self.name = "frames"
        self.time_steps = time_steps
        self.image_shape = shape
        self._data = RNG.random((n, time_steps, *shape), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._data)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"stimulus_id": np.array([f"f{i}" for i in range(len(self))], dtype=object), "speed": np.arange(len(self)) * 2.0}

    def images(self, index: np.ndarray) -> np.ndarray:
        return self._data[index]


def digits_with(preprocess: str):
    text = DIGITS_MLP.replace("    split: test\n", "    split: test\n    preprocess: " + preprocess + "\n")
    return build_stimulus_sets(protocol_from_text(text))[0]


def test_resize_matches_pillow_bilinear_shrinking_and_enlarging():
    image = RNG.random((13, 17), dtype=np.float32)
    for height, width in [(5, 6), (4, 17), (20, 30), (13, 9)]:
        want = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
        got = resize_images(image[None, None], (height, width))[0, 0]
        np.testing.assert_allclose(got, want, atol=2e-6)


def test_resize_two_to_one_by_hand():
    """8 -> 4 columns of the ramp x = column: the kernel is a triangle two input pixels wide each side.

    Output column k is centred at 2k + 1 (pixel edges at integers); input column i (centre i + 0.5)
    weighs max(0, 1 - |i + 0.5 - (2k + 1)| / 2). Inside, the weights are symmetric, so the ramp gives
    its value at the centre, 2k + 0.5; at the left edge the weights 3/4, 3/4, 1/4 of columns 0, 1, 2
    are renormalised: (0 * 3/4 + 1 * 3/4 + 2 * 1/4) / (7/4) = 5/7.
    """
    ramp = np.tile(np.arange(8, dtype=np.float32), (3, 1))[None, None]
    got = resize_images(ramp, (3, 4))[0, 0]
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got[:, 1:3], [[2.5, 4.5]] * 3, atol=1e-6)
    np.testing.assert_allclose(got[:, 0], 5 / 7, atol=1e-6)
    np.testing.assert_allclose(got[:, 3], 7 - 5 / 7, atol=1e-6)


def test_channel_conversion_numbers():
    rgb = np.array([0.2, 0.6, 1.0], dtype=np.float32).reshape(1, 3, 1, 1)
    assert convert_channels(rgb, 1)[0, 0, 0, 0] == pytest.approx(0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0, abs=1e-7)
    grey = np.array([[[[0.25, 0.5]]]], dtype=np.float32)
    assert convert_channels(grey, 3)[0, :, 0].tolist() == [[0.25, 0.5]] * 3
    assert convert_channels(rgb, 3) is rgb
    with pytest.raises(ValueError, match="cannot convert 4-channel images to 1 channel"):
        convert_channels(np.zeros((1, 4, 2, 2), np.float32), 1)


def test_normalize_scalar_and_per_channel():
    x = RNG.random((2, 3, 2, 2), dtype=np.float32)
    np.testing.assert_allclose(normalize_images(x, 0.5, 0.25), (x - 0.5) / 0.25, rtol=1e-6)
    mean, std = [0.1, 0.2, 0.3], [1.0, 2.0, 4.0]
    want = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    got = normalize_images(x, mean, std)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_digits_resized_through_the_protocol():
    s = digits_with("{resize: [32, 32]}")
    assert s.image_shape == (1, 32, 32) and s.name == "digits" and len(s) == 454
    images = s.images(np.arange(3))
    raw = DigitsSet("digits").images(np.arange(3))
    assert images.shape == (3, 1, 32, 32)
    for k in range(3):
        want = np.asarray(Image.fromarray(raw[k, 0]).resize((32, 32), Image.BILINEAR))
        np.testing.assert_allclose(images[k, 0], want, atol=2e-6)
    assert s.parameters()["stimulus_id"].tolist() == DigitsSet("digits").parameters()["stimulus_id"].tolist()


def test_all_steps_in_order_on_digits():
    """resize, then channels, then normalize (whose lists count the channels after conversion)."""
    s = digits_with("{resize: [4, 4], channels: 3, normalize: {mean: [0.1, 0.2, 0.3], std: [1, 2, 4]}}")
    raw = DigitsSet("digits").images(np.arange(2))
    small = resize_images(raw, (4, 4))
    want = (np.repeat(small, 3, axis=1) - np.array([0.1, 0.2, 0.3], np.float32)[:, None, None]) / np.array([1, 2, 4], np.float32)[:, None, None]
    assert s.image_shape == (3, 4, 4)
    np.testing.assert_allclose(s.images(np.arange(2)), want, rtol=1e-6, atol=1e-7)
    described = s.describe()
    assert [step["step"] for step in described["preprocess"]] == ["resize", "channels", "normalize"]
    assert described["preprocess"][0]["size"] == [4, 4] and described["preprocess"][1]["channels"] == 3
    assert described["preprocess"][2]["mean"] == [0.1, 0.2, 0.3] and described["preprocess"][2]["std"] == [1.0, 2.0, 4.0]
    assert described["image_shape"] == [3, 4, 4] and described["image_shape_before_preprocess"] == [1, 8, 8]
    assert described["class"] == "DigitsSet" and described["n"] == 454  # the inner set's description stays


def test_npy_scaled_by_normalize(tmp_path):
    images, labels = load_digits_array()
    np.save(tmp_path / "x.npy", (images[:5, 0] * 255).round().astype(np.uint8))
    text = DIGITS_MLP.replace(
        "    split: test\n", "    split: test\n  - name: raw\n    kind: npy\n    path: x.npy\n    preprocess: {normalize: {mean: 0, std: 255}}\n"
    )
    s = build_stimulus_sets(protocol_from_text(text, path=tmp_path / "p.yaml"))[1]
    np.testing.assert_allclose(s.images(np.arange(5)), images[:5], atol=0.5 / 255)
    assert s.describe()["preprocess"] == [{"step": "normalize", "mean": [0.0], "std": [255.0], "method": "(x - mean) / std per channel"}]


@pytest.mark.parametrize(
    ("preprocess", "expected"),
    [
        ("{normalize: {mean: [0.5, 0.5]}}", "stimuli 'digits': preprocess.normalize.mean: 2 values given, the images have 1 channel(s)"),
        ("{channels: 3, normalize: {std: [0.5]}}", "stimuli 'digits': preprocess.normalize.std: 1 values given, the images have 3 channel(s)"),
    ],
)
def test_normalize_list_must_match_channels(preprocess, expected):
    with pytest.raises(StimulusError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        digits_with(preprocess)


def test_four_channels_cannot_be_converted():
    with pytest.raises(StimulusError, match=r"stimuli 'frames': preprocess.channels: converts grey \(1\) or RGB \(3\) images, the set's images have 4 channels"):
        PreprocessedSet(Frames(shape=(4, 2, 2)), Preprocess(channels=3))
    kept = PreprocessedSet(Frames(shape=(4, 2, 2)), Preprocess(resize=(3, 3)))  # no conversion asked: 4 channels pass
    assert kept.image_shape == (4, 3, 3)


def test_sequence_set_frame_by_frame():
    inner = Frames()
    s = PreprocessedSet(inner, Preprocess(resize=(3, 4), channels=1, normalize={"mean": 0.5, "std": 2.0}))
    assert s.time_steps == 2 and s.name == "frames" and len(s) == 3 and s.image_shape == (1, 3, 4)
    assert s.parameters()["speed"].tolist() == [0.0, 2.0, 4.0]
    got = s.images(np.array([2, 0]))
    assert got.shape == (2, 2, 1, 3, 4)
    for k, i in enumerate([2, 0]):
        for t in range(2):
            frame = inner.images(np.array([i]))[0, t][None]
            want = (convert_channels(resize_images(frame, (3, 4)), 1) - 0.5) / 2.0
            np.testing.assert_allclose(got[k, t], want[0], rtol=1e-6, atol=1e-7)
    assert s.describe()["time_steps"] == 2


def test_preprocess_on_loaded_kinds(tmp_path):
    """npz and zarr sets get the same steps (RGB to grey, then 2x smaller)."""
    import zarr

    rgb = RNG.random((3, 3, 8, 8), dtype=np.float32)
    np.savez(tmp_path / "a.npz", images=rgb)
    zarr.create_array(tmp_path / "a.zarr", shape=rgb.shape, dtype="float32")[:] = rgb
    want = convert_channels(resize_images(rgb, (4, 4)), 1)
    for entry in ("kind: npz\n    path: a.npz", "kind: zarr\n    path: a.zarr"):
        text = DIGITS_MLP.replace("    kind: digits\n    split: test\n", f"    {entry}\n    preprocess: {{resize: [4, 4], channels: 1}}\n")
        s = build_stimulus_sets(protocol_from_text(text, path=tmp_path / "p.yaml"))[0]
        assert s.image_shape == (1, 4, 4)
        np.testing.assert_allclose(s.images(np.arange(3)), want, rtol=1e-6)
        assert len(s.describe()["sha256"]) == 64 and s.describe()["image_shape_before_preprocess"] == [3, 8, 8]
