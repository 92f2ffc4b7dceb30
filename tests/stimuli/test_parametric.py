"""Generated stimuli: each image measured against what was asked; grids, errors, ids, protocols."""

from __future__ import annotations

import itertools
import json
import textwrap

import numpy as np
import pytest
from scipy import ndimage

import neurorecord
from neurorecord.errors import ProtocolError, StimulusError
from neurorecord.protocol import protocol_from_text
from neurorecord.protocol.schema import STIMULUS_KINDS
from neurorecord.stimuli import build_stimulus_sets
from neurorecord.stimuli.grid import ParameterGrid
from neurorecord.stimuli.parametric import ParametricSet


def make(kind: str, protocol_seed: int = 0, **keys) -> ParametricSet:
    """A set of ``kind`` built from spec keys, as in a protocol whose seed is ``protocol_seed``."""
    return ParametricSet(STIMULUS_KINDS[kind](name="s", kind=kind, **keys), protocol_seed)


def grey(s: ParametricSet, index=None) -> np.ndarray:
    """Images as float64 (n, H, W) (channel 0)."""
    index = np.arange(len(s)) if index is None else np.asarray(index)
    return s.images(index)[:, 0].astype(np.float64)


def fft_peak(image: np.ndarray, pad: int = 512) -> tuple[float, float]:
    """(orientation deg mod 180, frequency cycles/pixel) of the strongest component, y up."""
    spectrum = np.abs(np.fft.fft2(image - image.mean(), s=(pad, pad)))
    row, col = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    f_col, f_row = np.fft.fftfreq(pad)[col], np.fft.fftfreq(pad)[row]
    return float(np.degrees(np.arctan2(-f_row, f_col)) % 180), float(np.hypot(f_col, f_row))


def michelson(image: np.ndarray) -> float:
    return float((image.max() - image.min()) / (image.max() + image.min()))


def axis_fft(line: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft(line - line.mean()))


# ---------------------------------------------------------------------------------------------- gratings


@pytest.mark.parametrize("orientation", [0, 30, 45, 90, 120, 165])
def test_grating_orientation_and_frequency_from_fft_peak(orientation):
    s = make("grating", size=(64, 64), grid={"orientation": orientation, "spatial_frequency": 0.2})
    found, frequency = fft_peak(grey(s)[0])
    assert abs((found - orientation + 90) % 180 - 90) < 1.0
    assert frequency == pytest.approx(0.2, abs=2 / 512)


def test_spatial_frequency_in_cycles_per_degree():
    s = make("grating", size=(64, 64), pixels_per_degree=16, grid={"spatial_frequency": [1, 3], "orientation": 60})
    for image, cpd in zip(grey(s), [1, 3]):
        orientation, cpp = fft_peak(image)
        assert cpp == pytest.approx(cpd / 16, abs=2 / 512) and orientation == pytest.approx(60, abs=1.0)
    assert s.parameters()["spatial_frequency"].tolist() == [1.0, 3.0]
    assert s.describe()["units"]["spatial_frequency"] == "cycles/degree"
    assert make("grating").describe()["units"]["spatial_frequency"] == "cycles/pixel"


@pytest.mark.parametrize("contrast", [10, 50, 100])
@pytest.mark.parametrize("background", [0.3, 0.5])
def test_grating_michelson_contrast_and_mean(contrast, background):
    # period 8 px and phase 22.5 deg put samples on the peaks and troughs
    s = make("grating", size=(32, 32), background=background, grid={"spatial_frequency": 0.125, "phase": 22.5, "contrast": contrast})
    image = grey(s)[0]
    assert michelson(image) == pytest.approx(contrast / 100, abs=1e-6)
    assert image.mean() == pytest.approx(background, abs=1e-6)


def test_square_wave_has_two_levels_and_odd_harmonics():
    s = make("grating", size=(32, 32), grid={"spatial_frequency": 0.125, "contrast": 40, "waveform": ["sine", "square"]})
    sine, square = grey(s)
    assert np.unique(square.round(6)).tolist() == [0.3, 0.7]
    assert len(np.unique(sine.round(6))) > 2
    # period 8 over 32 px: fundamental at bin 4, third harmonic at bin 12
    for image, expected in ((sine, 0.0), (square, np.sin(np.pi / 8) / np.sin(3 * np.pi / 8))):
        spectrum = axis_fft(image[0])
        assert spectrum[12] / spectrum[4] == pytest.approx(expected, abs=1e-5)
    assert s.parameters()["waveform"].tolist() == ["sine", "square"]


def test_circular_mask_has_zero_contrast_outside():
    s = make("grating", size=(32, 32), mask="circular", grid={"aperture": [10, 20], "orientation": 30})
    x = np.arange(32) - 15.5
    r = np.hypot(x[None, :], x[:, None])
    for image, aperture in zip(grey(s), [10, 20]):
        outside = r > aperture / 2 + np.sqrt(0.5)  # the whole pixel is outside
        assert np.all(image[outside] == np.float32(0.5))
        assert np.abs(image[r < aperture / 2 - 1] - 0.5).max() > 0.4
    assert s.parameters()["aperture"].tolist() == [10.0, 20.0]


def test_aperture_defaults_to_smaller_side_in_protocol_units():
    s = make("grating", size=(16, 24), pixels_per_degree=8, mask="circular")
    assert s.parameters()["aperture"].tolist() == [2.0]  # 16 pixels at 8 pixels/degree
    assert "aperture" not in make("grating").parameters()


def test_pixel_defaults_are_converted_to_degrees():
    plain, deg = make("gabor", size=(32, 32)), make("gabor", size=(32, 32), pixels_per_degree=8)
    assert deg.parameters()["spatial_frequency"].tolist() == [1.0]  # 0.125 cycles/pixel x 8 pixels/degree
    assert deg.parameters()["sigma"].tolist() == [0.5]  # 4 pixels / 8 pixels/degree
    # the same pixels either way: the defaults mean the same image in any units
    np.testing.assert_allclose(deg.images(np.array([0])), plain.images(np.array([0])), atol=1e-6)
    bar = make("bar", size=(32, 32), pixels_per_degree=4)
    assert bar.parameters()["length"].tolist() == [4.0] and bar.parameters()["width"].tolist() == [0.5]


def test_three_channels_replicate_grey():
    images = make("gabor", size=(16, 16), channels=3).images(np.array([0]))
    assert images.shape == (1, 3, 16, 16) and images.dtype == np.float32
    assert np.array_equal(images[:, 0], images[:, 1]) and np.array_equal(images[:, 0], images[:, 2])


# ---------------------------------------------------------------------------------------------- drifting


def test_drifting_grating_phase_advances_at_temporal_frequency():
    s = make("drifting_grating", size=(32, 32), frames=12, frame_rate=60,
             grid={"spatial_frequency": 0.125, "temporal_frequency": [2.5, 3.75, 10], "phase": 30})
    movies = s.images(np.arange(3))
    assert movies.shape == (3, 12, 1, 32, 32) and movies.dtype == np.float32 and s.time_steps == 12
    for movie, tf in zip(movies, [2.5, 3.75, 10]):
        phases = np.unwrap([np.angle(np.fft.rfft(frame[0, 0].astype(np.float64))[4]) for frame in movie])
        per_frame = -np.diff(phases)  # cos(2 pi f x - phase): the Fourier phase falls as the phase grows
        assert per_frame * 60 / (2 * np.pi) == pytest.approx(np.full(11, tf), abs=1e-4)


@pytest.mark.parametrize(("direction", "axis", "shift"), [(0, 1, 1), (90, 0, -1), (180, 1, -1), (270, 0, 1)])
def test_drifting_grating_moves_along_its_direction(direction, axis, shift):
    # 7.5 Hz at 60 frames/s and 1/8 cycles/pixel: one pixel per frame; axis 0 is rows (downward)
    s = make("drifting_grating", size=(32, 32), frames=3, frame_rate=60,
             grid={"direction": direction, "spatial_frequency": 0.125, "temporal_frequency": 7.5})
    movie = s.images(np.array([0]))[0, :, 0]
    assert np.allclose(movie[1], np.roll(movie[0], shift, axis=axis), atol=1e-6)
    assert not np.allclose(movie[1], np.roll(movie[0], -shift, axis=axis), atol=1e-3)


def test_drifting_grating_orientation_coordinate_is_direction_mod_180():
    s = make("drifting_grating", size=(8, 8), grid={"direction": {"start": 0, "stop": 315, "step": 45}})
    p = s.parameters()
    assert p["orientation"].tolist() == [0, 45, 90, 135, 0, 45, 90, 135]
    assert s.describe()["units"]["orientation"] == "deg" and s.describe()["time_steps"] == 16


# ---------------------------------------------------------------------------------------------- gabor, plaid, bar


@pytest.mark.parametrize("ppd", [None, 16.0])
def test_gabor_centre_and_sigma_from_envelope_moments(ppd):
    unit = 1.0 if ppd is None else 1 / ppd
    s = make("gabor", size=(64, 64), pixels_per_degree=ppd, background=0.5,
             grid={"orientation": 30, "spatial_frequency": 0.125 / unit, "sigma": 6 * unit, "x": 5 * unit, "y": -8 * unit,
                   "phase": [0, 90], "contrast": 80})
    even, odd = grey(s) - 0.5
    weight = (even**2 + odd**2) / (0.5 * 0.8) ** 2  # the squared envelope, exp(-r^2 / sigma^2)
    assert weight.max() == pytest.approx(1.0, abs=0.02)
    x = np.arange(64) - 31.5
    y = 31.5 - np.arange(64)  # y up
    total = weight.sum()
    cx, cy = (weight * x[None, :]).sum() / total, (weight * y[:, None]).sum() / total
    var_x = (weight * (x[None, :] - cx) ** 2).sum() / total
    assert (cx, cy) == pytest.approx((5.0, -8.0), abs=1e-6)
    assert np.sqrt(2 * var_x) == pytest.approx(6.0, abs=1e-6)
    assert np.argmax(weight.sum(axis=1)) in (39, 40)  # below the centre row (31.5): y is up


def test_plaid_components_and_contrast():
    # components at 45 -+ 45 = 0 and 90 deg; odd size puts samples on the plaid's peak and trough
    s = make("plaid", size=(33, 33), grid={"orientation": 45, "plaid_angle": 90, "spatial_frequency": 0.125, "contrast": 60})
    image = grey(s)[0]
    assert michelson(image) == pytest.approx(0.6, abs=1e-6)
    spectrum = np.abs(np.fft.fft2(image - image.mean(), s=(512, 512)))
    fx = np.fft.fftfreq(512)
    peaks = np.argsort(spectrum.ravel())[::-1][:4]
    angles = sorted({round(float(np.degrees(np.arctan2(-fx[i // 512], fx[i % 512])) % 180)) for i in peaks})
    assert angles == [0, 90]


@pytest.mark.parametrize("orientation", [0, 30, 90, 135])
def test_bar_area_orientation_and_polarity(orientation):
    s = make("bar", size=(48, 48), grid={"orientation": orientation, "length": 20, "width": 4, "x": 3, "y": 2,
                                         "contrast": 50, "polarity": ["light", "dark"]})
    light, dark = grey(s)
    cover = (light - 0.5) / (0.5 * 0.5)
    assert np.allclose(dark - 0.5, -(light - 0.5), atol=1e-6)
    assert cover.min() >= -1e-6 and cover.max() <= 1 + 1e-6
    assert cover.sum() == pytest.approx(80.0, rel=0.01)
    x = np.arange(48) - 23.5
    y = 23.5 - np.arange(48)
    X, Y = np.meshgrid(x, y)
    total = cover.sum()
    cx, cy = (cover * X).sum() / total, (cover * Y).sum() / total
    assert (cx, cy) == pytest.approx((3.0, 2.0), abs=0.02)
    cov = np.cov(np.stack([X.ravel(), Y.ravel()]), aweights=cover.ravel())
    long_axis = np.linalg.eigh(cov)[1][:, -1]
    across = (np.degrees(np.arctan2(long_axis[1], long_axis[0])) - 90) % 180  # the bar's normal
    assert abs((across - orientation + 90) % 180 - 90) < 0.5


def test_axis_aligned_bar_fills_whole_pixels():
    cover = (grey(make("bar", size=(32, 32), grid={"length": 16, "width": 2}))[0] - 0.5) / 0.5
    assert np.unique(cover.round(6)).tolist() == [0.0, 1.0]
    assert np.argwhere(cover > 0.5)[:, 1].tolist() == [15, 16] * 16  # vertical: two columns
    assert cover.sum() == pytest.approx(32.0)


# ---------------------------------------------------------------------------------------------- noise, dots


def radial_slope(images: np.ndarray) -> float:
    n, h, w = images.shape
    amplitude = np.abs(np.fft.fft2(images - images.mean(axis=(1, 2), keepdims=True))).mean(axis=0)
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    bins = np.linspace(2 / h, 0.45, 15)
    which = np.digitize(f, bins)
    centres, means = [], []
    for k in range(1, len(bins)):
        sel = which == k
        centres.append(f[sel].mean())
        means.append(amplitude[sel].mean())
    return float(np.polyfit(np.log(centres), np.log(means), 1)[0])


def test_noise_spectrum_slopes_pink_and_white():
    s = make("noise", protocol_seed=1, size=(64, 64), count=20, grid={"color": ["white", "pink"]})
    images = grey(s)
    assert radial_slope(images[:20]) == pytest.approx(0.0, abs=0.1)
    assert radial_slope(images[20:]) == pytest.approx(-1.0, abs=0.1)


@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_rms_contrast_as_asked(color):
    s = make("noise", size=(32, 32), count=4, grid={"color": color, "contrast": [5, 15]})
    for image, contrast in zip(grey(s), [5] * 4 + [15] * 4):
        assert image.std() / image.mean() == pytest.approx(contrast / 100, rel=1e-5)
        assert image.mean() == pytest.approx(0.5, abs=1e-6)


def test_noise_is_seeded_by_seed_and_sample_only():
    a = make("noise", protocol_seed=7, size=(16, 16), count=5, grid={"color": ["white", "pink"]})
    b = make("noise", protocol_seed=7, size=(16, 16), count=3, grid={"color": ["white", "pink"]})
    assert np.array_equal(a.images(np.array([2, 5])), b.images(np.array([2, 3])))  # white 2; pink 0
    assert np.array_equal(a.parameters()["stimulus_id"][[2, 5]], b.parameters()["stimulus_id"][[2, 3]])
    other = make("noise", protocol_seed=8, size=(16, 16), count=5)
    assert not np.array_equal(other.images(np.array([0])), a.images(np.array([0])))
    own = make("noise", protocol_seed=99, seed=7, size=(16, 16), count=5, grid={"color": ["white", "pink"]})
    assert np.array_equal(own.images(np.arange(10)), a.images(np.arange(10)))
    assert own.describe()["seed"] == 7
    white, pink = grey(a, [0, 5])
    assert np.corrcoef(white.ravel(), pink.ravel())[0, 1] > 0.1  # the pink sample is the white one filtered


def test_negative_protocol_seed_needs_the_set_own_seed():
    with pytest.raises(StimulusError, match="need a seed >= 0, and the protocol's seed is -1"):
        make("dots", protocol_seed=-1, count=2)


@pytest.mark.parametrize("dots", [1, 4, 9])
def test_dots_count_size_and_polarity(dots):
    s = make("dots", protocol_seed=3, size=(48, 48), count=6, grid={"dots": dots, "dot_size": 4, "contrast": 80, "polarity": ["light", "dark", "mixed"]})
    images = grey(s)
    signed = (images - 0.5) / (0.5 * 0.8)
    for cover in signed:
        assert ndimage.label(np.abs(cover) > 0.5)[1] == dots
        assert np.abs(cover).sum() == pytest.approx(dots * np.pi * 4, rel=0.03)
    light, dark, mixed = signed[:6], signed[6:12], signed[12:]
    assert light.min() > -1e-6 and dark.max() < 1e-6
    assert np.allclose(np.abs(light), np.abs(dark), atol=1e-6) and np.allclose(np.abs(light), np.abs(mixed), atol=1e-6)
    if dots > 1:
        assert mixed.min() < -0.9 and mixed.max() > 0.9
    assert s.parameters()["dots"].dtype == np.int64 and s.parameters()["sample"].tolist() == list(range(6)) * 3


# ---------------------------------------------------------------------------------------------- grids


def test_grid_expansion_order_list_range_zip():
    s = make("grating", grid={"orientation": [0, 90], "spatial_frequency": {"start": 0.1, "stop": 0.3, "step": 0.1}},
             zip={"phase": [0, 180], "contrast": [50, 100]})
    p = s.parameters()
    expected = [(o, f, ph, c) for o, f, (ph, c) in itertools.product([0.0, 90.0], [0.1, 0.2, 0.3], [(0.0, 50.0), (180.0, 100.0)])]
    assert len(s) == 12
    assert list(zip(p["orientation"], p["spatial_frequency"], p["phase"], p["contrast"])) == expected
    assert p["waveform"].dtype == object and set(p["waveform"]) == {"sine"}
    assert s.describe()["order"] == [["orientation"], ["spatial_frequency"], ["phase", "contrast"], ["waveform"]]


def test_zip_lists_may_repeat_values_but_not_pairs():
    s = make("grating", zip={"orientation": [0, 0, 90, 90], "phase": [0, 180, 0, 180]})
    assert list(zip(s.parameters()["orientation"], s.parameters()["phase"])) == [(0, 0), (0, 180), (90, 0), (90, 180)]
    assert len(set(s.parameters()["stimulus_id"])) == 4


def test_zip_group_takes_its_first_member_place():
    s = make("gabor", grid={"x": [-2, 2]}, zip={"orientation": [0, 90, 45], "sigma": [2, 3, 4]})
    assert s.describe()["order"][0] == ["orientation", "sigma"]
    assert s.parameters()["orientation"].tolist() == [0, 0, 90, 90, 45, 45]
    assert s.parameters()["x"].tolist() == [-2, 2] * 3


@pytest.mark.parametrize(
    ("written", "values"),
    [
        (45, [45.0]),
        ([0, 22.5], [0.0, 22.5]),
        ({"start": 0, "stop": 180, "step": 45}, [0.0, 45.0, 90.0, 135.0, 180.0]),  # stop on the grid: included
        ({"start": 0, "stop": 100, "step": 45}, [0.0, 45.0, 90.0]),
        ({"start": 0, "stop": 1, "step": 0.1}, [round(0.1 * i, 1) for i in range(11)]),  # 0.3, not 0.30000000000000004
        ({"start": 5, "stop": 5, "step": 1}, [5.0]),
        ({"start": -0.3, "stop": 0.3, "step": 0.1}, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]),
        ({"start": 0.05, "stop": 0.3, "step": 0.05}, [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]),
        ([-0.0, 90], [0.0, 90.0]),
    ],
)
def test_values_forms(written, values):
    phases = make("grating", grid={"phase": written}).parameters()["phase"].tolist()
    assert phases == values and all(str(p) == str(v) for p, v in zip(phases, values))  # no -0.0, no 0.30000000000000004


def test_integer_parameter_range():
    s = make("dots", count=1, grid={"dots": {"start": 1, "stop": 7, "step": 3}, "dot_size": 1})
    assert s.parameters()["dots"].tolist() == [1, 4, 7]


def test_parameter_grid_checks_axes():
    with pytest.raises(ValueError, match="equal length; found a: 2, b: 3"):
        ParameterGrid([{"a": np.zeros(2), "b": np.zeros(3)}])
    with pytest.raises(IndexError, match="out of range 0..3"):
        ParameterGrid([{"a": np.zeros(2)}, {"b": np.zeros(2)}]).columns(np.array([4]))


# ---------------------------------------------------------------------------------------------- errors

PROTOCOL = """\
neurorecord: 1
name: p
subject:
  zoo: digits-mlp
stimuli:
  - name: s
    kind: {kind}
{body}
record:
  regions: [fc1]
"""


def error_of(kind: str, body: str) -> str:
    text = PROTOCOL.format(kind=kind, body=textwrap.indent(textwrap.dedent(body).strip("\n"), "    "))
    with pytest.raises(ProtocolError) as info:
        protocol_from_text(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("grating", "grid: {orientation: {start: 0, stop: 90, step: 0}}", "<protocol>:8:25: stimuli[0].grid.orientation: range step must be > 0, found 0"),
        ("grating", "grid: {orientation: {start: 0, stop: -10, step: 5}}", "stimuli[0].grid.orientation: empty range: stop -10 is below start 0"),
        ("grating", "grid: {orientation: {start: 0, stop: 90, stepp: 5}}", "stimuli[0].grid.orientation: unknown range key 'stepp' (did you mean 'step'?); a range is {start, stop, step}"),
        ("grating", "grid: {orientation: {start: 0, stop: 90}}", "a range needs start, stop and step; missing 'step'"),
        ("grating", "grid: {orientation: {start: 0, stop: 1, step: 1.0e-7}}", "range of 10000001 values; at most 1000000"),
        (
            "grating",
            "zip: {orientation: [0, 45, 90], phase: [0, 90]}",
            "<protocol>:8:10: stimuli[0].zip: zipped parameters are paired element by element and need equal numbers of values; "
            "found orientation: 3 values, phase: 2 values",
        ),
        ("grating", "zip: {orientation: [0, 45]}", "stimuli[0].zip: zip pairs the values of two or more parameters element by element; found only 'orientation'"),
        ("grating", "grid: {phase: 0}\nzip: {phase: [0, 90], contrast: [10, 20]}", "stimuli[0].zip: 'phase' is given under both grid and zip"),
        ("grating", "zip: {phase: [0, 0], contrast: [10, 10]}", "stimuli[0].zip: the combination (phase=0, contrast=10) is listed twice"),
        (
            "grating",
            "grid: {orientaton: 45}",
            "<protocol>:8:11: stimuli[0].grid: unknown parameter 'orientaton' of kind grating (did you mean 'orientation'?); "
            "parameters of grating: aperture, contrast, orientation, phase, spatial_frequency, waveform",
        ),
        ("bar", "zip: {lenght: [1, 2], width: [1, 2]}", "stimuli[0].zip: unknown parameter 'lenght' of kind bar (did you mean 'length'?)"),
        ("grating", "grid: {contrast: 150}", "<protocol>:8:22: stimuli[0].grid.contrast: 150 is above the maximum 100 (contrast is a percentage, 0 to 100)"),
        ("noise", "count: 2\ngrid: {contrast: [10, -5]}", "stimuli[0].grid.contrast: -5 is below the minimum 0"),
        ("gabor", "grid: {sigma: [2, 0]}", "stimuli[0].grid.sigma: must be greater than 0, found 0"),
        ("grating", "grid: {spatial_frequency: 0.5}", "stimuli[0]: grid.spatial_frequency: 0.5 cycles/pixel is at or above the Nyquist limit of 0.5 cycles/pixel"),
        (
            "plaid",
            "pixels_per_degree: 32\nzip: {spatial_frequency: [4, 20], phase: [0, 90]}",
            "stimuli[0]: zip.spatial_frequency: 20 cycles/degree (0.625 cycles/pixel at 32 pixels/degree) is at or above the "
            "Nyquist limit of 0.5 cycles/pixel (16 cycles/degree)",
        ),
        ("grating", "background: 0.8", "grid.contrast (default): 100% on background 0.8 reaches luminance 1.6, above 1; the highest contrast on this background is 25%"),
        ("drifting_grating", "frame_rate: 10\ngrid: {temporal_frequency: 5}", "grid.temporal_frequency: 5 Hz is at or above the temporal Nyquist limit, frame_rate / 2 = 5 Hz"),
        ("grating", "grid: {aperture: 10}", "grid.aperture: an aperture is only used with 'mask: circular' (mask is 'full')"),
        ("dots", "size: [8, 8]\ncount: 2\ngrid: {dots: 5}", "grid.dots: 5 dots of size 2 do not fit a 8x8 image: it holds 4 cells of side 2 * dot_size"),
        ("grating", "grid: {waveform: sqare}", "stimuli[0].grid.waveform: expected one of sine, square (or a list of them), found 'sqare' (did you mean 'square'?)"),
        ("grating", "grid: {orientation: [0, 45, 45]}", "stimuli[0].grid: orientation: 45 is listed twice; each value may appear once (zip pairs repeated values)"),
        ("grating", "grid: {orientation: north}", "stimuli[0].grid.orientation: expected a number, a list of them or a range {start, stop, step}, found 'north'"),
        ("grating", "grid: {orientation: []}", "stimuli[0].grid.orientation: empty list"),
        ("grating", "mask: circular\nzip: {aperture: null, phase: [0]}", "stimuli[0].zip.aperture: expected a number, a list of them or a range {start, stop, step}, found None"),
        ("dots", "count: 1\ngrid: {dots: 1.5}", "stimuli[0].grid.dots: expected an integer, found 1.5"),
        ("grating", "orientation: 45", "stimuli[0]: 'orientation' is a stimulus parameter of kind grating: write it under 'grid:' (or 'zip:')"),
        ("noise", "grid: {color: pink}", "stimuli[0].count: required key is missing"),
        ("grating", "gird: {phase: 0}", "stimuli[0].gird: unknown key (did you mean 'grid'?)"),
    ],
)
def test_errors_rendered_with_key_path(kind, body, expected):
    assert expected in error_of(kind, body)


# ---------------------------------------------------------------------------------------------- ids


ALL_KINDS = {
    "grating": "grid: {orientation: [0, 45], waveform: [sine, square]}",
    "drifting_grating": "frames: 4\ngrid: {direction: [0, 90, 180]}",
    "gabor": "grid: {x: [-2, 2], y: [0, 1]}",
    "bar": "grid: {orientation: [0, 90], polarity: [light, dark]}",
    "plaid": "mask: circular\ngrid: {plaid_angle: [60, 120]}",
    "noise": "count: 3\ngrid: {color: [white, pink]}",
    "dots": "count: 3\ngrid: {dots: [1, 2], dot_size: 1}",
}


def protocol_with(kinds: dict[str, str], size: str = "[8, 8]", seed: int = 0) -> str:
    entries = "\n".join(
        f"  - name: {kind}\n    kind: {kind}\n    size: {size}\n" + textwrap.indent(body, "    ") for kind, body in kinds.items()
    )
    return f"neurorecord: 1\nname: p\nseed: {seed}\nsubject:\n  zoo: digits-mlp\nstimuli:\n{entries}\nrecord:\n  regions: [fc1]\n  batch_size: 7\n"


def test_stimulus_ids_stable_unique_and_subset_independent():
    text = protocol_with(ALL_KINDS)
    first = build_stimulus_sets(protocol_from_text(text))
    second = build_stimulus_sets(protocol_from_text(text))
    for a, b in zip(first, second):
        ids = a.parameters()["stimulus_id"]
        assert np.array_equal(ids, b.parameters()["stimulus_id"])
        assert len(set(ids)) == len(ids) and all(i.startswith(a.spec.kind + "-") for i in ids)
        subset = np.array([len(a) - 1, 0])
        assert np.array_equal(a.images(subset), b.images(np.arange(len(b)))[subset])
    other_seed = build_stimulus_sets(protocol_from_text(protocol_with(ALL_KINDS, seed=5)))
    changed = {s.spec.kind for s, t in zip(first, other_seed) if not np.array_equal(s.parameters()["stimulus_id"], t.parameters()["stimulus_id"])}
    assert changed == {"noise", "dots"}
    bigger = build_stimulus_sets(protocol_from_text(protocol_with(ALL_KINDS, size="[8, 9]")))
    assert all(not set(s.parameters()["stimulus_id"]) & set(t.parameters()["stimulus_id"]) for s, t in zip(first, bigger))


def test_stimulus_id_pinned_and_independent_of_name_and_number_form():
    # a change of this value breaks comparisons with every earlier recording: only on purpose
    a = ParametricSet(STIMULUS_KINDS["grating"](name="a", kind="grating", grid={"orientation": 45}))
    b = ParametricSet(STIMULUS_KINDS["grating"](name="b", kind="grating", grid={"orientation": [0, 45.0]}))
    assert a.parameters()["stimulus_id"][0] == "grating-3d6aef52de8448ff"
    assert b.parameters()["stimulus_id"][1] == a.parameters()["stimulus_id"][0]


def test_large_set_is_lazy():
    s = make("grating", grid={"orientation": {"start": 0, "stop": 359, "step": 1}, "phase": {"start": 0, "stop": 350, "step": 10},
                              "contrast": {"start": 1, "stop": 100, "step": 1}})
    assert len(s) == 360 * 36 * 100
    images = s.images(np.array([len(s) - 1, 12345]))
    assert images.shape == (2, 1, 32, 32)
    assert "_coords" not in vars(s)  # nothing per stimulus was built


def test_describe_is_json_with_units_and_settings():
    d = make("dots", protocol_seed=4, count=2, pixels_per_degree=8, grid={"dot_size": 0.25}).describe()
    json.dumps(d)
    assert d["kind"] == "dots" and d["seed"] == 4 and d["n"] == 2
    assert d["units"]["dot_size"] == "degrees" and d["units"]["contrast"] == "percent"
    assert d["parameters"]["dot_size"] == [0.25] and d["settings"]["pixels_per_degree"] == 8.0 and d["settings"]["count"] == 2


# ---------------------------------------------------------------------------------------------- protocols


def test_every_kind_loads_builds_and_static_kinds_record(tmp_path, write_protocol):
    text = protocol_with(ALL_KINDS)
    sets = build_stimulus_sets(protocol_from_text(text))
    assert [s.spec.kind for s in sets] == list(ALL_KINDS)
    assert [len(s) for s in sets] == [4, 3, 4, 4, 2, 6, 6]
    drift = sets[1]
    assert drift.images(np.array([2])).shape == (1, 4, 1, 8, 8)

    static = {k: v for k, v in ALL_KINDS.items() if k != "drifting_grating"}
    tree = neurorecord.run(write_protocol(protocol_with(static)), tmp_path / "out", quiet=True)
    fc1 = tree["fc1"]
    assert fc1["activity"].sizes["presentation"] == 4 + 4 + 4 + 2 + 6 + 6
    assert np.isfinite(fc1["activity"].values).all()
    coords = fc1["activity"].coords
    assert coords["stimulus_id"].values[0] == sets[0].parameters()["stimulus_id"][0]
    assert coords["orientation"].values[:4].tolist() == [0, 0, 45, 45]
    assert list(coords["waveform"].values[:4]) == ["sine", "square", "sine", "square"]
