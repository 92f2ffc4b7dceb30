"""Generated stimuli: gratings, drifting gratings, Gabors, bars, plaids, noise, dots.

A :class:`ParametricSet` turns a spec of :mod:`neurorecord.protocol.parametric` into images,
made on demand for the requested stimuli only: a set of a million gratings costs nothing to
construct, and :meth:`~ParametricSet.images` renders one batch at a time. Images are float32
luminance in [0, 1] around the set's ``background``, of shape (n, channels, height, width), or
(n, frames, channels, height, width) for ``drifting_grating``; ``channels: 3`` replicates the
grey image.

Conventions (module docstring of :mod:`neurorecord.protocol.parametric`): positions from the
image centre, x right and y up; ``orientation`` is the wave vector's angle counter-clockwise
from rightward (0: vertical stripes); ``direction`` is the direction of motion; ``phase``
shifts the waveform by ``phase / 360`` cycles along the wave vector. Spatial frequencies are in
cycles/pixel and lengths in pixels, or cycles/degree and degrees with ``pixels_per_degree``.
Bars, dots and circular apertures are antialiased (each pixel averages 8 x 8 sample points).

Stimulus ids
------------
``stimulus_id`` is ``<kind>-<16 hex digits>``: the start of the sha256 of a canonical text of
everything that fixes the image: the kind; the set-level keys ``size``, ``channels``,
``background``, ``pixels_per_degree`` and those of the kind (``mask``, ``frames``,
``frame_rate``; the seed for noise and dots); and every stimulus parameter's value (Python
``repr`` of floats, so 45 and 45.0 are one value). The set's name, ``count`` and
``preprocess`` are not part of it. The same parameters give the same id in any protocol, run or
machine, and the grid's values are distinct, so ids are unique within a set.

>>> from neurorecord.protocol.parametric import GratingStimuli
>>> spec = GratingStimuli(name="gratings", kind="grating", size=(16, 16),
...                       grid={"orientation": {"start": 0, "stop": 135, "step": 45}, "contrast": [50, 100]})
>>> s = ParametricSet(spec)
>>> len(s), s.image_shape, s.images(np.array([0, 7])).shape
(8, (1, 16, 16), (2, 1, 16, 16))
>>> p = s.parameters()
>>> p["orientation"].tolist(), p["contrast"][:2].tolist(), p["stimulus_id"][0][:8]
([0.0, 0.0, 45.0, 45.0, 90.0, 90.0, 135.0, 135.0], [50.0, 100.0], 'grating-')
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cached_property, lru_cache
from typing import Any, Callable

import numpy as np

from ..errors import StimulusError
from ..protocol.parametric import (
    PARAMETRIC_SPECS,
    DriftingGratingStimuli,
    GeneratedStimuli,
    dot_cells,
    parameter_unit,
)
from ..protocol.schema import Protocol
from .base import StimulusSet
from .grid import ParameterGrid

__all__ = ["ParametricSet", "PARAMETRIC_BUILDERS"]

#: Pixels rendered at once (float64 intermediates of about 32 MB each); bounds memory for large images.
_CHUNK_PIXELS = 2**22
#: Sample-point offsets within a pixel (in pixels) for antialiased shapes: 8 x 8 per pixel
#: (areas of bars and discs within 0.3% at any orientation; 4 x 4 errs by 1.6% at 45 deg).
_SUB = (np.arange(8) + 0.5) / 8 - 0.5
#: long_name of every generated-stimulus parameter (units come from ``parameter_unit``).
_LONG_NAMES = {
    "orientation": "orientation (wave vector, counter-clockwise from rightward)",
    "direction": "direction of motion",
    "spatial_frequency": "spatial frequency",
    "temporal_frequency": "temporal frequency",
    "phase": "phase",
    "contrast": "Michelson contrast",
    "x": "horizontal position from the image centre",
    "y": "vertical position from the image centre (up)",
    "sigma": "s.d. of the Gaussian envelope",
    "length": "bar length",
    "width": "bar width",
    "aperture": "aperture diameter",
    "plaid_angle": "angle between the plaid's components",
    "dot_size": "dot diameter",
    "dots": "number of dots",
    "sample": "index of the random sample",
    "waveform": "waveform",
    "polarity": "polarity",
    "color": "noise colour",
}
#: Period (deg) of the angular parameters whose tuning is circular.
_PERIODS = {"orientation": 180.0, "direction": 360.0, "phase": 360.0}


class ParametricSet(StimulusSet):
    """The stimuli of one generated set: the factorial grid of its spec, rendered on demand.

    Parameters
    ----------
    spec
        A generated kind's spec (:class:`~neurorecord.protocol.parametric.GratingStimuli`, ...).
    seed
        The protocol's seed; used by ``noise`` and ``dots`` unless the spec gives its own.

    Attributes
    ----------
    spec : GeneratedStimuli
        The spec, as given.
    grid : ParameterGrid
        The parameter axes (in the protocol's units); stimulus ``i`` is ``grid.columns([i])``.
    seed : int or None
        Seed of the random kinds (None for the others).

    Notes
    -----
    :meth:`parameters` gives ``stimulus_id`` and one coordinate per stimulus parameter, in the
    protocol's units (see :meth:`describe`): floats, integers (``dots``, ``sample``), or text as
    object arrays (``waveform``, ``polarity``, ``color``). A drifting grating also gets
    ``orientation`` = ``direction mod 180``.

    Examples
    --------
    >>> from neurorecord.protocol.parametric import DriftingGratingStimuli
    >>> spec = DriftingGratingStimuli(name="drift", kind="drifting_grating", size=(8, 8), frames=4,
    ...                               grid={"direction": [0, 90, 180, 270]})
    >>> s = ParametricSet(spec)
    >>> s.time_steps, s.images(np.arange(2)).shape, s.parameters()["orientation"].tolist()
    (4, (2, 4, 1, 8, 8), [0.0, 90.0, 0.0, 90.0])
    >>> s.describe()["units"]["temporal_frequency"]
    'Hz'
    """

    def __init__(self, spec: GeneratedStimuli, seed: int = 0) -> None:
        self.spec = spec
        self.name = spec.name
        self.image_shape = (spec.channels, *spec.size)
        self.time_steps = spec.frames if isinstance(spec, DriftingGratingStimuli) else None
        sampled = "count" in type(spec).model_fields
        self.seed = (spec.seed if spec.seed is not None else seed) if sampled else None
        if self.seed is not None and self.seed < 0:
            raise StimulusError(
                f"stimuli '{spec.name}': random {spec.kind} samples need a seed >= 0, and the protocol's seed is {seed}; "
                "give the set its own 'seed'"
            )
        axes: list[dict[str, np.ndarray]] = []
        zipped = spec.zipped()
        for name in spec.parameter_names():
            if name not in zipped:
                axes.append({name: _array(spec.values(name))})
            elif name == zipped[0]:
                axes.append({n: _array(spec.values(n)) for n in zipped})
        if sampled:
            axes.append({"sample": np.arange(spec.count, dtype=np.int64)})
        self.grid = ParameterGrid(axes)
        h, w = spec.size
        self._x = np.arange(w) - (w - 1) / 2  # pixel centres, rightward
        self._y = (h - 1) / 2 - np.arange(h)  # pixel centres, upward

    def __len__(self) -> int:
        return len(self.grid)

    def parameters(self) -> dict[str, np.ndarray]:
        return dict(self._coords)

    @cached_property
    def _coords(self) -> dict[str, np.ndarray]:
        columns = self.grid.columns(np.arange(len(self)))
        identity = self.spec.model_dump(mode="json", exclude={"name", "preprocess", "grid", "zip", "count", "seed"})
        identity["seed"] = self.seed
        prefix = json.dumps(identity, sort_keys=True, separators=(",", ":")) + "|"
        names = sorted(columns)
        rows = zip(*(columns[n].tolist() for n in names))
        ids = np.array(
            [
                f"{self.spec.kind}-" + hashlib.sha256((prefix + ",".join(f"{n}={v!r}" for n, v in zip(names, row))).encode()).hexdigest()[:16]
                for row in rows
            ],
            dtype=object,
        )
        coords = {"stimulus_id": ids, **columns}
        if "direction" in columns:
            coords["orientation"] = np.mod(columns["direction"], 180.0)
        for values in coords.values():
            values.setflags(write=False)
        return coords

    def images(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        columns = self.grid.columns(index)
        ppd = self.spec.pixels_per_degree
        if ppd is not None:  # to cycles/pixel and pixels
            columns = {
                k: v / ppd if k == "spatial_frequency" else v * ppd if parameter_unit(k, ppd) == "degrees" else v
                for k, v in columns.items()
            }
        frames = () if self.time_steps is None else (self.time_steps,)
        out = np.empty((len(index), *frames, *self.image_shape), dtype=np.float32)
        chunk = max(1, _CHUNK_PIXELS // math.prod((*frames, *self.spec.size)))
        for start in range(0, len(index), chunk):
            part = {k: v[start : start + chunk] for k, v in columns.items()}
            luminance = _RENDER[self.spec.kind](self, part, len(index[start : start + chunk]))
            out[start : start + chunk] = np.expand_dims(luminance, -3)  # grey into every channel
        return out

    def coordinate_attrs(self) -> dict[str, dict[str, Any]]:
        """CF-style attrs of the coordinates: ``long_name``, ``units`` (the protocol's: deg,
        cycles/pixel or cycles/degree, pixels or degrees, percent, Hz) and, for orientation,
        direction and phase, ``period`` (deg).

        >>> from neurorecord.protocol.parametric import GratingStimuli
        >>> s = ParametricSet(GratingStimuli(name="g", kind="grating", size=(8, 8), grid={"orientation": [0, 90]}))
        >>> s.coordinate_attrs()["orientation"]["units"], s.coordinate_attrs()["spatial_frequency"]["units"]
        ('deg', 'cycles/pixel')
        """
        out = super().coordinate_attrs()
        ppd = self.spec.pixels_per_degree
        for name in self.parameters():
            if name in _LONG_NAMES:
                unit = parameter_unit(name, ppd)
                out[name] = {"long_name": _LONG_NAMES[name], **({"units": unit} if unit else {}),
                             **({"period": _PERIODS[name]} if name in _PERIODS else {})}
        return out

    def describe(self) -> dict[str, Any]:
        """Provenance: the base description plus kind, units, parameter values, settings and seed."""
        ppd = self.spec.pixels_per_degree
        names = list(self.grid.names) + (["orientation"] if "direction" in self.grid.names else [])
        return {
            **super().describe(),
            "kind": self.spec.kind,
            "units": {n: parameter_unit(n, ppd) for n in names if parameter_unit(n, ppd) is not None},
            "parameters": {n: v.tolist() for axis in self.grid.axes for n, v in axis.items()},
            "zip": list(self.spec.zipped()),
            "order": [list(axis) for axis in self.grid.axes],
            "settings": self.spec.model_dump(mode="json", exclude={"name", "grid", "zip"}),
            "seed": self.seed,
            "stimulus_id": f"{self.spec.kind}-<first 16 hex digits of the sha256 of the canonical generation parameters>",
            "conventions": "positions from the image centre, x right, y up; orientation/direction: wave vector's angle "
            "counter-clockwise from rightward; phase: waveform shift along the wave vector, cycles * 360",
        }

    # -- rendering: each returns float64 luminance (n, H, W), or (n, T, H, W) for drifting gratings

    def _wave(self, orientation: np.ndarray, frequency: np.ndarray, phase: np.ndarray,
              x0: np.ndarray | float = 0.0, y0: np.ndarray | float = 0.0) -> np.ndarray:
        """Phase argument ``2 pi f s - phase`` (radians), s along the wave vector from (x0, y0): (n, H, W)."""
        theta = np.deg2rad(orientation)[:, None, None]
        dx = self._x[None, None, :] - np.asarray(x0)[..., None, None]
        dy = self._y[None, :, None] - np.asarray(y0)[..., None, None]
        along = dx * np.cos(theta) + dy * np.sin(theta)
        return 2 * np.pi * frequency[:, None, None] * along - np.deg2rad(phase)[:, None, None]

    def _window(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """Coverage of the circular aperture, (n, H, W), or 1 without a mask."""
        if "aperture" not in p:
            return np.ones((1, 1, 1))
        return np.stack([_disc_cached(self.spec.size, float(a) / 2) for a in p["aperture"]])

    def _grating(self, p: dict[str, np.ndarray], n: int) -> np.ndarray:
        return self._periodic(p, p["orientation"], p["phase"])

    def _periodic(self, p: dict[str, np.ndarray], orientation: np.ndarray, phase: np.ndarray) -> np.ndarray:
        wave = np.cos(self._wave(orientation, p["spatial_frequency"], phase))
        square = (p["waveform"] == "square")[:, None, None]
        wave = np.where(square, np.where(wave >= 0, 1.0, -1.0), wave)
        return self.spec.background * (1 + p["contrast"][:, None, None] / 100 * wave * self._window(p))

    def _drifting_grating(self, p: dict[str, np.ndarray], n: int) -> np.ndarray:
        frames = self.spec.frames
        t = np.arange(frames) / self.spec.frame_rate
        phase = p["phase"][:, None] + 360 * p["temporal_frequency"][:, None] * t[None, :]
        flat = {k: np.repeat(v, frames) for k, v in p.items()}
        out = self._periodic(flat, flat["direction"], phase.ravel())
        return out.reshape(n, frames, *self.spec.size)

    def _gabor(self, p: dict[str, np.ndarray], n: int) -> np.ndarray:
        carrier = np.cos(self._wave(p["orientation"], p["spatial_frequency"], p["phase"], p["x"], p["y"]))
        r2 = (self._x[None, None, :] - p["x"][:, None, None]) ** 2 + (self._y[None, :, None] - p["y"][:, None, None]) ** 2
        envelope = np.exp(-r2 / (2 * p["sigma"][:, None, None] ** 2))
        return self.spec.background * (1 + p["contrast"][:, None, None] / 100 * envelope * carrier)

    def _bar(self, p: dict[str, np.ndarray], n: int) -> np.ndarray:
        cover = np.zeros((n, *self.spec.size))
        for i in range(n):
            x0, y0, length, width = p["x"][i], p["y"][i], p["length"][i], p["width"][i]
            r, c = _box(self._x, self._y, x0, y0, np.hypot(length, width) / 2)
            cover[i][np.ix_(r, c)] = _rectangle(self._x[c], self._y[r], x0, y0, p["orientation"][i], length, width)
        sign = np.where(p["polarity"] == "light", 1.0, -1.0)[:, None, None]
        return self.spec.background * (1 + sign * p["contrast"][:, None, None] / 100 * cover)

    def _plaid(self, p: dict[str, np.ndarray], n: int) -> np.ndarray:
        half = p["plaid_angle"] / 2
        wave = (np.cos(self._wave(p["orientation"] - half, p["spatial_frequency"], p["phase"]))
                + np.cos(self._wave(p["orientation"] + half, p["spatial_frequency"], p["phase"]))) / 2
        return self.spec.background * (1 + p["contrast"][:, None, None] / 100 * wave * self._window(p))

    @cached_property
    def _pink_filter(self) -> np.ndarray:
        """1/f on the rfft2 grid (f: radial frequency, cycles/pixel), 0 at f = 0."""
        h, w = self.spec.size
        f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
        return np.divide(1.0, f, out=np.zeros_like(f), where=f > 0)

    def _noise(self, p: dict[str, np.ndarray], n: int) -> np.ndarray:
        out = np.empty((n, *self.spec.size))
        for i in range(n):
            z = np.random.default_rng([self.seed, int(p["sample"][i])]).standard_normal(self.spec.size)
            if p["color"][i] == "pink":
                z = np.fft.irfft2(np.fft.rfft2(z) * self._pink_filter, s=self.spec.size)
            z = (z - z.mean()) / z.std()
            out[i] = self.spec.background * (1 + p["contrast"][i] / 100 * z)
        return np.clip(out, 0.0, 1.0)

    def _dots(self, p: dict[str, np.ndarray], n: int) -> np.ndarray:
        out = np.zeros((n, *self.spec.size))
        for i in range(n):
            size, count = float(p["dot_size"][i]), int(p["dots"][i])
            rows, cols = dot_cells(self.spec.size, size)
            rng = np.random.default_rng([self.seed, int(p["sample"][i])])
            cells = rng.choice(rows * cols, size=count, replace=False)
            jitter = rng.uniform(-size / 4, size / 4, size=(count, 2))
            signs = np.where(rng.integers(0, 2, size=count) == 1, 1.0, -1.0)
            if p["polarity"][i] != "mixed":
                signs[:] = 1.0 if p["polarity"][i] == "light" else -1.0
            cx = (cells % cols + 0.5) * 2 * size - cols * size + jitter[:, 0]
            cy = rows * size - (cells // cols + 0.5) * 2 * size + jitter[:, 1]
            for x0, y0, sign in zip(cx, cy, signs):
                r, c = _box(self._x, self._y, x0, y0, size / 2)
                out[i][np.ix_(r, c)] += sign * _disc(self._x[c], self._y[r], x0, y0, size / 2)
        return self.spec.background * (1 + p["contrast"][:, None, None] / 100 * out)


_RENDER: dict[str, Callable[[ParametricSet, dict[str, np.ndarray], int], np.ndarray]] = {
    "grating": ParametricSet._grating,
    "drifting_grating": ParametricSet._drifting_grating,
    "gabor": ParametricSet._gabor,
    "bar": ParametricSet._bar,
    "plaid": ParametricSet._plaid,
    "noise": ParametricSet._noise,
    "dots": ParametricSet._dots,
}


def _array(values: tuple[Any, ...]) -> np.ndarray:
    """Values of one parameter: float64, int64, or object for text."""
    if isinstance(values[0], str):
        return np.array(values, dtype=object)
    return np.array(values, dtype=np.int64 if isinstance(values[0], int) else np.float64)


@lru_cache(maxsize=64)
def _disc_cached(shape: tuple[int, int], radius: float) -> np.ndarray:
    """:func:`_disc` centred on an image of ``shape`` (read-only, shared)."""
    h, w = shape
    cover = _disc(np.arange(w) - (w - 1) / 2, (h - 1) / 2 - np.arange(h), 0.0, 0.0, radius)
    cover.setflags(write=False)
    return cover


def _box(x: np.ndarray, y: np.ndarray, cx: float, cy: float, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels (centres ``y`` by ``x``) a shape within ``reach`` of (cx, cy) may touch."""
    return np.flatnonzero(np.abs(y - cy) <= reach + 1), np.flatnonzero(np.abs(x - cx) <= reach + 1)


def _disc(x: np.ndarray, y: np.ndarray, cx: float, cy: float, radius: float) -> np.ndarray:
    """Fraction of each pixel (centres ``y`` by ``x``) inside a disc: (len(y), len(x))."""
    dx = x[None, :, None, None] + _SUB[None, None, None, :] - cx
    dy = y[:, None, None, None] + _SUB[None, None, :, None] - cy
    return (dx**2 + dy**2 <= radius**2).mean(axis=(2, 3))


def _rectangle(x: np.ndarray, y: np.ndarray, cx: float, cy: float, orientation: float, length: float, width: float) -> np.ndarray:
    """Fraction of each pixel inside a bar whose normal is at ``orientation`` deg: (len(y), len(x))."""
    theta = np.deg2rad(orientation)
    dx = x[None, :, None, None] + _SUB[None, None, None, :] - cx
    dy = y[:, None, None, None] + _SUB[None, None, :, None] - cy
    across = dx * np.cos(theta) + dy * np.sin(theta)
    along = -dx * np.sin(theta) + dy * np.cos(theta)
    return ((np.abs(across) <= width / 2) & (np.abs(along) <= length / 2)).mean(axis=(2, 3))


def _build(spec: GeneratedStimuli, protocol: Protocol) -> ParametricSet:
    return ParametricSet(spec, protocol.seed)


#: ``{spec model: builder(spec, protocol)}`` for the parametric kinds.
PARAMETRIC_BUILDERS: dict[type, Callable[[Any, Protocol], StimulusSet]] = {spec: _build for spec in PARAMETRIC_SPECS}
