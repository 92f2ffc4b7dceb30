"""Schema of the generated (parametric) stimulus kinds.

(Over 600 lines, one job: the schema of the seven generated kinds. Their parameter and set models
share the number/range/choice readers at the top; split per kind, each file would import them back.)

Kinds: ``grating``, ``drifting_grating``, ``gabor``, ``bar``, ``plaid``, ``noise``, ``dots``.
The images themselves are made by :mod:`neurorecord.stimuli.parametric`; this module says what
a protocol may ask for and checks it before any work starts.

Keys of a generated set
-----------------------
Set-level keys fix what every stimulus of the set shares: ``size: [height, width]`` (pixels),
``channels`` (1, or 3 with the grey image replicated), ``background`` (mean luminance; images
lie in [0, 1]) and ``pixels_per_degree``; some kinds add keys of their own (``mask``,
``frames``, ``frame_rate``, ``count``, ``seed``).

Stimulus parameters (orientation, spatial frequency, ...) go under ``grid:``, each written as

- a scalar: ``orientation: 45`` (one value),
- a list: ``orientation: [0, 45, 90, 135]`` (no value twice under ``grid:``),
- a range: ``orientation: {start: 0, stop: 180, step: 22.5}``: ``start, start + step, ...``
  up to ``stop``, which is included when it lands on the grid within 1e-9 steps (so the example
  has 9 values, 180 included). ``step`` must be > 0 and ``stop >= start``; values are rounded
  to 12 significant digits of the step, so ``{start: -0.3, stop: 0.3, step: 0.1}`` gives
  exactly 0 and 0.3, not 5.6e-17 and 0.30000000000000004.

The set is the full factorial product of the parameters' values. Parameters under ``zip:``
(same forms, equal numbers of values, no combination twice) are paired element by element,
and the pairs are combined factorially with the rest. Stimuli are ordered like nested loops over the kind's
parameters in the order the kind lists them (:meth:`GeneratedStimuli.parameter_names`), the
first slowest; a zipped group takes the place of its first member. A parameter given nowhere
takes its default, and every parameter, varied or fixed, becomes a per-stimulus coordinate.

Units
-----
Angles (``orientation``, ``direction``, ``phase``, ``plaid_angle``) are in degrees, contrasts
in percent, ``temporal_frequency`` in Hz. Without ``pixels_per_degree``, spatial frequencies
are in cycles/pixel and sizes, positions and ``sigma`` in pixels; with it, in cycles/degree
and degrees. Defaults of those are given in pixel units and converted when
``pixels_per_degree`` is set (the default spatial frequency 0.125 cycles/pixel is
``0.125 * pixels_per_degree`` cycles/degree).

Geometry and orientation
------------------------
Positions are measured from the image centre (the centre of the pixel grid: between two pixels
when a side is even), ``x`` to the right and ``y`` **up** (towards row 0). ``orientation`` is
the angle of a grating's wave vector (the direction across its stripes) counter-clockwise from
the rightward ``x`` axis: 0 gives vertical stripes, 90 horizontal ones, 45 stripes running from
top-left to bottom-right. A bar has the orientation of the grating whose stripes it is parallel
to (0: a vertical bar). ``direction`` is the direction of motion of a drifting grating, which
is its wave vector's direction, on the same axes (0: moving right, 90: moving up); its
orientation is ``direction mod 180``. ``phase`` shifts the waveform along the wave vector by
``phase / 360`` cycles: luminance is ``background * (1 + c * cos(2 pi f s - phase))`` with ``s``
the position along the wave vector, so at phase 0 a luminance peak runs through the image centre
(or the Gabor's centre), and a drifting grating's phase grows by ``360 * temporal_frequency /
frame_rate`` degrees per frame.

>>> spec = GratingStimuli(name="g", kind="grating", grid={"orientation": {"start": 0, "stop": 90, "step": 45}},
...                       zip={"phase": [0, 90], "contrast": [50, 100]})
>>> spec.parameter_names()
['orientation', 'spatial_frequency', 'phase', 'contrast', 'waveform']
>>> spec.values("orientation"), spec.values("spatial_frequency"), spec.zipped()
((0.0, 45.0, 90.0), (0.125,), ('phase', 'contrast'))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Field, NonNegativeInt, PositiveInt, WithJsonSchema, field_validator, model_validator

from ..errors import did_you_mean
from ._base import StimulusBase, Strict

__all__ = [
    "PARAMETRIC_SPECS",
    "GeneratedStimuli",
    "GratingStimuli",
    "DriftingGratingStimuli",
    "GaborStimuli",
    "BarStimuli",
    "PlaidStimuli",
    "NoiseStimuli",
    "DotsStimuli",
    "parameter_unit",
    "dot_cells",
    "NYQUIST",
    "MAX_RANGE_VALUES",
]

#: Highest spatial frequency a grid of pixels can show, cycles/pixel (excluded).
NYQUIST = 0.5
#: Most values one range may expand to (a guard against a mistyped step).
MAX_RANGE_VALUES = 1_000_000

_RANGE_KEYS = ("start", "stop", "step")
_ANGLES = {"orientation", "direction", "phase", "plaid_angle"}
_LENGTHS = {"x", "y", "sigma", "length", "width", "aperture", "dot_size"}


def parameter_unit(name: str, pixels_per_degree: float | None) -> str | None:
    """Unit of a stimulus parameter as the protocol writes it (None for a named choice).

    >>> parameter_unit("spatial_frequency", None), parameter_unit("spatial_frequency", 32.0)
    ('cycles/pixel', 'cycles/degree')
    >>> parameter_unit("sigma", 32.0), parameter_unit("phase", None), parameter_unit("waveform", None)
    ('degrees', 'deg', None)
    """
    if name in _ANGLES:
        return "deg"
    if name == "spatial_frequency":
        return "cycles/pixel" if pixels_per_degree is None else "cycles/degree"
    if name in _LENGTHS:
        return "pixels" if pixels_per_degree is None else "degrees"
    return {"contrast": "percent", "temporal_frequency": "Hz", "dots": "count", "sample": "index"}.get(name)


# ----------------------------------------------------------------------------------------------
# Values: a scalar, a list or a range, read into a tuple


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(raw: Any, integer: bool) -> float | int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        what = "an integer" if integer else "a number"
        raise ValueError(f"expected {what}, a list of them or a range {{start, stop, step}}, found {raw!r}")
    if not math.isfinite(raw):
        raise ValueError(f"expected a finite number, found {raw!r}")
    if integer:
        if raw != int(raw):
            raise ValueError(f"expected an integer, found {raw!r}")
        return int(raw)
    return float(raw) + 0.0  # -0.0 and 0.0: one value, one stimulus id


def _expand_range(raw: dict[Any, Any], integer: bool) -> tuple[float | int, ...]:
    for key in raw:
        if key not in _RANGE_KEYS:
            raise ValueError(f"unknown range key {key!r}{did_you_mean(str(key), _RANGE_KEYS)}; a range is {{start, stop, step}}")
    missing = [k for k in _RANGE_KEYS if k not in raw]
    if missing:
        raise ValueError(f"a range needs start, stop and step; missing {', '.join(repr(k) for k in missing)}")
    start, stop, step = (_number(raw[k], integer) for k in _RANGE_KEYS)
    if step <= 0:
        raise ValueError(f"range step must be > 0, found {_fmt(step)}")
    if stop < start:
        raise ValueError(f"empty range: stop {_fmt(stop)} is below start {_fmt(start)}")
    n = math.floor((stop - start) / step + 1e-9) + 1
    if n > MAX_RANGE_VALUES:
        raise ValueError(f"range of {n} values; at most {MAX_RANGE_VALUES} are allowed (is step {_fmt(step)} meant?)")
    if integer:
        return tuple(int(start + i * step) for i in range(n))
    decimals = 12 - math.floor(math.log10(step))  # 12 significant digits of the step
    return tuple(round(start + i * step, decimals) + 0.0 for i in range(n))  # + 0.0: no -0.0


def _read_numbers(raw: Any, integer: bool, check: Callable[[float], str | None]) -> Any:
    if isinstance(raw, dict):
        values = _expand_range(raw, integer)
    elif isinstance(raw, (list, tuple)):
        if not raw:
            raise ValueError("empty list: give at least one value")
        values = tuple(_number(v, integer) for v in raw)
    else:
        values = (_number(raw, integer),)
    for value in values:
        problem = check(value)
        if problem:
            raise ValueError(problem)
    return values


def _read_choices(raw: Any, choices: tuple[str, ...]) -> Any:
    items = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    if not items:
        raise ValueError("empty list: give at least one value")
    for item in items:
        if item not in choices:
            hint = did_you_mean(str(item), choices)
            raise ValueError(f"expected one of {', '.join(choices)} (or a list of them), found {item!r}{hint}")
    return tuple(items)


def _unbounded(value: float) -> str | None:
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, found {_fmt(value)}"


def _percent(value: float) -> str | None:
    if value < 0:
        return f"{_fmt(value)} is below the minimum 0 (contrast is a percentage, 0 to 100)"
    if value > 100:
        return f"{_fmt(value)} is above the maximum 100 (contrast is a percentage, 0 to 100)"
    return None


def _numbers(check: Callable[[float], str | None], integer: bool = False, optional: bool = False) -> Any:
    item = {"type": "integer" if integer else "number"}
    schema = {
        "anyOf": [
            item,
            {"type": "array", "items": item, "minItems": 1},
            {"type": "object", "properties": {k: item for k in _RANGE_KEYS}, "required": list(_RANGE_KEYS), "additionalProperties": False},
        ]
    }
    read = tuple[int, ...] if integer else tuple[float, ...]
    return Annotated[
        read | None if optional else read,  # None: only as a default, computed when the set is built
        BeforeValidator(partial(_read_numbers, integer=integer, check=check)),
        WithJsonSchema(schema),
    ]


def _choices(*choices: str) -> Any:
    item = {"enum": list(choices)}
    schema = {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}
    return Annotated[tuple[str, ...], BeforeValidator(partial(_read_choices, choices=choices)), WithJsonSchema(schema)]


#: Any finite numbers (angles, positions).
Numbers = _numbers(_unbounded)
#: Numbers > 0 (frequencies, sizes).
PositiveNumbers = _numbers(_positive)
#: Percentages, 0 to 100.
Percents = _numbers(_percent)
#: Integers >= 1.
Counts = _numbers(_positive, integer=True)
#: Numbers > 0, or None for a default computed from other keys.
OptionalPositiveNumbers = _numbers(_positive, optional=True)
Waveforms = _choices("sine", "square")
BarPolarities = _choices("light", "dark")
Colors = _choices("white", "pink")
DotPolarities = _choices("light", "dark", "mixed")

_ORIENTATION = "Orientation, deg: angle of the wave vector (across the stripes), counter-clockwise from rightward, y up; 0 = vertical stripes. Default 0."
_SF = "Spatial frequency, cycles/pixel (cycles/degree with pixels_per_degree); below 0.5 cycles/pixel (Nyquist). Default 0.125 cycles/pixel."
_PHASE = "Spatial phase, deg: the waveform is shifted by phase/360 cycles along the wave vector; at 0 a luminance peak runs through the centre. Default 0."
_MICHELSON = "Michelson contrast, percent (0-100): luminance is background * (1 +- contrast/100). Default 100."
_WAVEFORM = "Luminance profile across the stripes: 'sine' or 'square' (the sinusoid's sign: +1 where it is >= 0, -1 elsewhere; harmonics above Nyquist alias). Default 'sine'."
_APERTURE = "Diameter of the circular window (mask: circular only), pixels (degrees with pixels_per_degree); zero contrast outside. Default: the image's smaller side."
_X = "Centre, horizontal offset from the image centre, pixels (degrees with pixels_per_degree), positive to the right. Default 0."
_Y = "Centre, vertical offset from the image centre, pixels (degrees with pixels_per_degree), positive UP. Default 0."
_WEBER = "Weber contrast, percent (0-100): luminance is background * (1 + contrast/100) for light, (1 - contrast/100) for dark. Default 100."


# ----------------------------------------------------------------------------------------------
# Parameters of each kind (the mappings under grid: and zip:)


class _Parameters(Strict):
    """Stimulus parameters of one kind; the field order is the nesting order of the grid."""

    kind: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = sorted(cls.model_fields)
            for key in data:
                if key not in cls.model_fields:
                    raise ValueError(
                        f"unknown parameter {key!r} of kind {cls.kind}{did_you_mean(str(key), names)}; "
                        f"parameters of {cls.kind}: {', '.join(names)}"
                    )
        return data


class GratingParameters(_Parameters):
    """Parameters of a static grating."""

    kind: ClassVar[str] = "grating"
    orientation: Numbers = Field((0.0,), description=_ORIENTATION)
    spatial_frequency: PositiveNumbers = Field((0.125,), description=_SF)
    phase: Numbers = Field((0.0,), description=_PHASE)
    contrast: Percents = Field((100.0,), description=_MICHELSON)
    waveform: Waveforms = Field(("sine",), description=_WAVEFORM)
    aperture: OptionalPositiveNumbers = Field(None, description=_APERTURE)


class DriftingGratingParameters(_Parameters):
    """Parameters of a drifting grating."""

    kind: ClassVar[str] = "drifting_grating"
    direction: Numbers = Field(
        (0.0,), description="Direction of motion (= of the wave vector), deg counter-clockwise from rightward, y up; 0 = moving right, 90 = up. Default 0."
    )
    spatial_frequency: PositiveNumbers = Field((0.125,), description=_SF)
    temporal_frequency: PositiveNumbers = Field(
        (3.75,), description="Temporal frequency, Hz (cycles per second); below frame_rate / 2. Default 3.75 (one cycle in 16 frames at 60 frames/s)."
    )
    phase: Numbers = Field((0.0,), description="Spatial phase at the first frame, deg (see grating's phase). Default 0.")
    contrast: Percents = Field((100.0,), description=_MICHELSON)
    waveform: Waveforms = Field(("sine",), description=_WAVEFORM)
    aperture: OptionalPositiveNumbers = Field(None, description=_APERTURE)


class GaborParameters(_Parameters):
    """Parameters of a Gabor patch."""

    kind: ClassVar[str] = "gabor"
    orientation: Numbers = Field((0.0,), description=_ORIENTATION)
    spatial_frequency: PositiveNumbers = Field((0.125,), description=_SF)
    phase: Numbers = Field(
        (0.0,), description="Spatial phase, deg, measured from the Gabor's centre: 0 puts a luminance peak there (even-symmetric), 90 makes it odd-symmetric. Default 0."
    )
    contrast: Percents = Field((100.0,), description="Michelson contrast of the carrier at the envelope's peak, percent (0-100). Default 100.")
    sigma: PositiveNumbers = Field((4.0,), description="Standard deviation of the circular Gaussian envelope, pixels (degrees with pixels_per_degree). Default 4 pixels.")
    x: Numbers = Field((0.0,), description=_X)
    y: Numbers = Field((0.0,), description=_Y)


class BarParameters(_Parameters):
    """Parameters of a bar."""

    kind: ClassVar[str] = "bar"
    orientation: Numbers = Field(
        (0.0,), description="Orientation, deg: that of the grating whose stripes the bar is parallel to (the angle of the bar's normal, counter-clockwise from rightward, y up); 0 = vertical bar. Default 0."
    )
    length: PositiveNumbers = Field((16.0,), description="Length along the bar, pixels (degrees with pixels_per_degree). Default 16 pixels.")
    width: PositiveNumbers = Field((2.0,), description="Width across the bar, pixels (degrees with pixels_per_degree). Default 2 pixels.")
    x: Numbers = Field((0.0,), description=_X)
    y: Numbers = Field((0.0,), description=_Y)
    contrast: Percents = Field((100.0,), description=_WEBER)
    polarity: BarPolarities = Field(("light",), description="'light' (brighter than the background) or 'dark'. Default 'light'.")


class PlaidParameters(_Parameters):
    """Parameters of a plaid (two superimposed sine gratings)."""

    kind: ClassVar[str] = "plaid"
    orientation: Numbers = Field(
        (0.0,), description="Orientation of the plaid, deg: the mean of its two components' orientations (the bisector of their wave vectors). Default 0."
    )
    plaid_angle: Numbers = Field(
        (90.0,), description="Angle between the components' wave vectors, deg; the components have orientations orientation -+ plaid_angle/2. Default 90."
    )
    spatial_frequency: PositiveNumbers = Field((0.125,), description=_SF + " Both components.")
    phase: Numbers = Field((0.0,), description="Spatial phase of both components, deg (see grating's phase). Default 0.")
    contrast: Percents = Field(
        (100.0,), description="Michelson contrast of the plaid (of the sum), percent (0-100); each component has half of it. Default 100."
    )
    aperture: OptionalPositiveNumbers = Field(None, description=_APERTURE)


class NoiseParameters(_Parameters):
    """Parameters of a noise image."""

    kind: ClassVar[str] = "noise"
    color: Colors = Field(
        ("white",), description="'white' (independent Gaussian pixels, flat spectrum) or 'pink' (amplitude spectrum 1/f, f the radial spatial frequency). Default 'white'."
    )
    contrast: Percents = Field(
        (20.0,), description="RMS contrast, percent: standard deviation of luminance / background, exact in each image before clipping to [0, 1]. Default 20."
    )


class DotsParameters(_Parameters):
    """Parameters of a sparse-dots image."""

    kind: ClassVar[str] = "dots"
    dots: Counts = Field((1,), description="Number of dots in each image. Default 1.")
    dot_size: PositiveNumbers = Field((2.0,), description="Diameter of each (disc) dot, pixels (degrees with pixels_per_degree). Default 2 pixels.")
    polarity: DotPolarities = Field(
        ("light",), description="'light', 'dark', or 'mixed' (each dot light or dark at random). Default 'light'."
    )
    contrast: Percents = Field((100.0,), description=_WEBER)


# ----------------------------------------------------------------------------------------------
# Stimulus set specs


class GeneratedStimuli(StimulusBase):
    """Keys every generated kind has, and the reading of its grid (see the module docstring)."""

    size: tuple[PositiveInt, PositiveInt] = Field((32, 32), description="[height, width] of the images, pixels.")
    channels: Literal[1, 3] = Field(1, description="1: grey; 3: the grey image replicated in three channels.")
    background: float = Field(0.5, gt=0, lt=1, description="Mean luminance (the blank screen); images lie in [0, 1].")
    pixels_per_degree: float | None = Field(
        None, gt=0, description="Pixels per degree of visual angle; when given, spatial frequencies are in cycles/degree and sizes and positions in degrees."
    )

    #: The parameter model of the kind (the type of ``grid`` and ``zip``).
    parameters_model: ClassVar[type[_Parameters]]
    #: Whether luminance may be clipped (noise); otherwise contrast must fit [0, 1].
    clips: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _parameters_under_grid(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in cls.parameters_model.model_fields and key not in cls.model_fields:
                    raise ValueError(f"{key!r} is a stimulus parameter of kind {cls.parameters_model.kind}: write it under 'grid:' (or 'zip:')")
        return data

    @field_validator("grid", mode="after", check_fields=False)
    @classmethod
    def _distinct_values(cls, value: _Parameters) -> _Parameters:
        for name in type(value).model_fields:
            values = getattr(value, name)
            repeated = next((v for i, v in enumerate(values or ()) if v in values[:i]), None)  # values None: a default
            if repeated is not None:
                raise ValueError(f"{name}: {_fmt(repeated)} is listed twice; each value may appear once (zip pairs repeated values)")
        return value

    @field_validator("zip", mode="after", check_fields=False)
    @classmethod
    def _zip_pairs(cls, value: _Parameters | None, info: Any) -> _Parameters | None:
        if value is None:
            return value
        names = [n for n in type(value).model_fields if n in value.model_fields_set]
        if len(names) < 2:
            found = f"only {names[0]!r}" if names else "none"
            raise ValueError(f"zip pairs the values of two or more parameters element by element; found {found} (a single parameter goes under grid)")
        grid = info.data.get("grid")
        twice = [n for n in names if grid is not None and n in grid.model_fields_set]
        if twice:
            raise ValueError(f"{twice[0]!r} is given under both grid and zip; give it in one of them")
        lengths = {n: len(getattr(value, n)) for n in names}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{n}: {k} value{'s' if k != 1 else ''}" for n, k in lengths.items())
            raise ValueError(f"zipped parameters are paired element by element and need equal numbers of values; found {listed}")
        rows = list(zip(*(getattr(value, n) for n in names)))
        repeated = next((r for i, r in enumerate(rows) if r in rows[:i]), None)
        if repeated is not None:
            raise ValueError(f"the combination ({', '.join(f'{n}={_fmt(v)}' for n, v in zip(names, repeated))}) is listed twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "GeneratedStimuli":
        mask = getattr(self, "mask", None)
        given = set(self.grid.model_fields_set) | (set(self.zip.model_fields_set) if self.zip is not None else set())
        if mask != "circular" and "aperture" in given:
            raise ValueError(f"{self._source('aperture')}: an aperture is only used with 'mask: circular' (mask is {mask!r})")
        if "spatial_frequency" in self.parameter_names():
            self._check_nyquist()
        if not self.clips:
            self._check_luminance()
        self._check_more()
        return self

    def _check_more(self) -> None:
        """Checks a kind adds (raise ValueError)."""

    def _source(self, name: str) -> str:
        if name in self.zipped():
            return f"zip.{name}"
        return f"grid.{name}" + ("" if name in self.grid.model_fields_set else " (default)")

    def _check_nyquist(self) -> None:
        ppd = self.pixels_per_degree
        top = max(self.values("spatial_frequency"))
        per_pixel = top if ppd is None else top / ppd
        if per_pixel >= NYQUIST:
            if ppd is None:
                found = f"{_fmt(top)} cycles/pixel"
            else:
                found = f"{_fmt(top)} cycles/degree ({_fmt(per_pixel)} cycles/pixel at {_fmt(ppd)} pixels/degree)"
            limit = "" if ppd is None else f" ({_fmt(NYQUIST * ppd)} cycles/degree)"
            raise ValueError(
                f"{self._source('spatial_frequency')}: {found} is at or above the Nyquist limit of {NYQUIST} cycles/pixel{limit}"
            )

    def _check_luminance(self) -> None:
        polarities = self.values("polarity") if "polarity" in self.parameter_names() else ("light",)
        if polarities == ("dark",):
            return  # background * (1 - c) >= 0 for every contrast up to 100
        top = max(self.values("contrast"))
        peak = self.background * (1 + top / 100)
        if peak > 1 + 1e-12:
            limit = 100 * (1 - self.background) / self.background
            raise ValueError(
                f"{self._source('contrast')}: {_fmt(top)}% on background {_fmt(self.background)} reaches luminance {_fmt(peak)}, "
                f"above 1; the highest contrast on this background is {limit:.4g}%"
            )

    def zipped(self) -> tuple[str, ...]:
        """Names of the zipped parameters, in the kind's order."""
        if self.zip is None:
            return ()
        return tuple(n for n in self.parameters_model.model_fields if n in self.zip.model_fields_set)

    def parameter_names(self) -> list[str]:
        """Names of the set's stimulus parameters, in nesting order (slowest first)."""
        mask = getattr(self, "mask", None)
        return [n for n in self.parameters_model.model_fields if n != "aperture" or mask == "circular"]

    def values(self, name: str) -> tuple[Any, ...]:
        """The values of a parameter: from ``zip``, ``grid`` or the default, in the protocol's units."""
        source = self.zip if name in self.zipped() else self.grid
        value = getattr(source, name)
        if value is None:  # aperture: the image's smaller side
            side = float(min(self.size))
            return (side if self.pixels_per_degree is None else side / self.pixels_per_degree,)
        ppd = self.pixels_per_degree
        if ppd is not None and name not in source.model_fields_set:  # a default, defined in pixel units
            if name == "spatial_frequency":
                return tuple(v * ppd for v in value)
            if parameter_unit(name, None) == "pixels":
                return tuple(v / ppd for v in value)
        return value


class _Masked(GeneratedStimuli):
    mask: Literal["full", "circular"] = Field(
        "full", description="'full': the pattern fills the image; 'circular': only inside a disc of diameter 'aperture' centred on the image."
    )


class GratingStimuli(_Masked):
    """Static sinusoidal or square-wave gratings; images (n, channels, height, width).

    >>> s = GratingStimuli(name="g", kind="grating", grid={"orientation": [0, 90], "contrast": {"start": 25, "stop": 100, "step": 25}})
    >>> s.values("contrast"), len(s.values("orientation")) * len(s.values("contrast"))
    ((25.0, 50.0, 75.0, 100.0), 8)
    """

    kind: Literal["grating"]
    grid: GratingParameters = Field(default_factory=GratingParameters, description="Stimulus parameters: scalars, lists or ranges, combined factorially.")
    zip: GratingParameters | None = Field(None, description="Parameters whose lists are paired element by element, combined factorially with grid.")
    parameters_model: ClassVar[type[_Parameters]] = GratingParameters


class DriftingGratingStimuli(_Masked):
    """Drifting gratings, a sequence set: images (n, frames, channels, height, width).

    Frame ``t`` (from 0) is the static grating of phase ``phase + 360 * temporal_frequency * t /
    frame_rate``, so the stripes move along ``direction``.

    >>> s = DriftingGratingStimuli(name="d", kind="drifting_grating", frames=8, grid={"direction": [0, 90, 180, 270]})
    >>> s.values("direction"), s.frames, s.frame_rate
    ((0.0, 90.0, 180.0, 270.0), 8, 60.0)
    """

    kind: Literal["drifting_grating"]
    frames: PositiveInt = Field(16, description="Frames in each stimulus (the time_steps of the set).")
    frame_rate: float = Field(60.0, gt=0, description="Frames per second.")
    grid: DriftingGratingParameters = Field(default_factory=DriftingGratingParameters, description="Stimulus parameters: scalars, lists or ranges, combined factorially.")
    zip: DriftingGratingParameters | None = Field(None, description="Parameters whose lists are paired element by element, combined factorially with grid.")
    parameters_model: ClassVar[type[_Parameters]] = DriftingGratingParameters

    def _check_more(self) -> None:
        top = max(self.values("temporal_frequency"))
        if top >= self.frame_rate / 2:
            raise ValueError(
                f"{self._source('temporal_frequency')}: {_fmt(top)} Hz is at or above the temporal Nyquist limit, "
                f"frame_rate / 2 = {_fmt(self.frame_rate / 2)} Hz"
            )


class GaborStimuli(GeneratedStimuli):
    """Gabor patches: a sine carrier under a circular Gaussian envelope; images (n, channels, height, width).

    Luminance is ``background * (1 + c * exp(-r^2 / (2 sigma^2)) * cos(2 pi f s - phase))`` with
    ``r`` the distance from the centre ``(x, y)`` and ``s`` the position along the wave vector
    measured from that centre.

    >>> GaborStimuli(name="g", kind="gabor", grid={"x": [-4, 0, 4], "sigma": 3}).values("x")
    (-4.0, 0.0, 4.0)
    """

    kind: Literal["gabor"]
    grid: GaborParameters = Field(default_factory=GaborParameters, description="Stimulus parameters: scalars, lists or ranges, combined factorially.")
    zip: GaborParameters | None = Field(None, description="Parameters whose lists are paired element by element, combined factorially with grid.")
    parameters_model: ClassVar[type[_Parameters]] = GaborParameters


class BarStimuli(GeneratedStimuli):
    """Oriented light or dark bars (rectangles, antialiased); images (n, channels, height, width).

    >>> BarStimuli(name="b", kind="bar", grid={"orientation": {"start": 0, "stop": 150, "step": 30}, "polarity": ["light", "dark"]}).values("polarity")
    ('light', 'dark')
    """

    kind: Literal["bar"]
    grid: BarParameters = Field(default_factory=BarParameters, description="Stimulus parameters: scalars, lists or ranges, combined factorially.")
    zip: BarParameters | None = Field(None, description="Parameters whose lists are paired element by element, combined factorially with grid.")
    parameters_model: ClassVar[type[_Parameters]] = BarParameters


class PlaidStimuli(_Masked):
    """Plaids: the sum of two sine gratings of equal spatial frequency; images (n, channels, height, width).

    >>> PlaidStimuli(name="p", kind="plaid", grid={"plaid_angle": [60, 90, 120]}).values("plaid_angle")
    (60.0, 90.0, 120.0)
    """

    kind: Literal["plaid"]
    grid: PlaidParameters = Field(default_factory=PlaidParameters, description="Stimulus parameters: scalars, lists or ranges, combined factorially.")
    zip: PlaidParameters | None = Field(None, description="Parameters whose lists are paired element by element, combined factorially with grid.")
    parameters_model: ClassVar[type[_Parameters]] = PlaidParameters


class _Sampled(GeneratedStimuli):
    count: PositiveInt = Field(..., description="Random samples (images) per combination of the grid's parameters; the 'sample' coordinate numbers them from 0.")
    seed: NonNegativeInt | None = Field(
        None, description="Seed of the samples; default: the protocol's seed. Sample i is drawn from numpy.random.default_rng([seed, i])."
    )


class NoiseStimuli(_Sampled):
    """White or pink (1/f) Gaussian noise of a given RMS contrast; images (n, channels, height, width).

    Sample ``i`` comes from ``numpy.random.default_rng([seed, i])``, whatever the color and
    contrast (a pink sample is the white one filtered, so the two share their random phases).
    Pixels beyond [0, 1] are clipped (at 20% RMS contrast on background 0.5, those 5 s.d. out).

    >>> s = NoiseStimuli(name="n", kind="noise", count=50, grid={"color": ["white", "pink"]})
    >>> s.values("color"), s.count, s.values("contrast")
    (('white', 'pink'), 50, (20.0,))
    """

    kind: Literal["noise"]
    grid: NoiseParameters = Field(default_factory=NoiseParameters, description="Stimulus parameters: scalars, lists or ranges, combined factorially.")
    zip: NoiseParameters | None = Field(None, description="Parameters whose lists are paired element by element, combined factorially with grid.")
    parameters_model: ClassVar[type[_Parameters]] = NoiseParameters
    clips: ClassVar[bool] = True

    def _check_more(self) -> None:
        if self.size[0] * self.size[1] < 2:
            raise ValueError(f"size: noise needs at least 2 pixels to have a contrast, found {list(self.size)}")


class DotsStimuli(_Sampled):
    """Sparse dots: discs at random, non-overlapping positions; images (n, channels, height, width).

    The image is tiled by square cells of side ``2 * dot_size`` (as many as fit, centred); each
    image puts its dots in distinct cells drawn at random, each dot within ``dot_size / 4`` of
    its cell's centre, so dots never touch. Sample ``i`` comes from
    ``numpy.random.default_rng([seed, i])`` (the same positions for every polarity and contrast).

    >>> DotsStimuli(name="d", kind="dots", count=100, grid={"dots": [1, 3], "polarity": "mixed"}).values("dots")
    (1, 3)
    """

    kind: Literal["dots"]
    grid: DotsParameters = Field(default_factory=DotsParameters, description="Stimulus parameters: scalars, lists or ranges, combined factorially.")
    zip: DotsParameters | None = Field(None, description="Parameters whose lists are paired element by element, combined factorially with grid.")
    parameters_model: ClassVar[type[_Parameters]] = DotsParameters

    def _check_more(self) -> None:
        if {"dots", "dot_size"} <= set(self.zipped()):
            pairs = list(zip(self.values("dots"), self.values("dot_size")))
        else:
            pairs = [(max(self.values("dots")), size) for size in self.values("dot_size")]
        for dots, size in pairs:
            rows, cols = dot_cells(self.size, size * (self.pixels_per_degree or 1.0))
            if dots > rows * cols:
                raise ValueError(
                    f"{self._source('dots')}: {dots} dots of size {_fmt(size)} do not fit a {self.size[0]}x{self.size[1]} image: "
                    f"it holds {rows * cols} cells of side 2 * dot_size, one dot each"
                )


def dot_cells(size: tuple[int, int], dot_size: float) -> tuple[int, int]:
    """Rows and columns of the cells (side ``2 * dot_size``) that dots of diameter ``dot_size``
    pixels are placed in, in an image of ``size = (height, width)`` pixels.

    >>> dot_cells((32, 32), 2.0), dot_cells((8, 10), 3.0)
    ((8, 8), (1, 1))
    """
    side = 2 * dot_size
    return int(size[0] // side), int(size[1] // side)


#: Spec models of the parametric kinds, joined into the protocol's stimulus union.
PARAMETRIC_SPECS: tuple[type[BaseModel], ...] = (
    GratingStimuli,
    DriftingGratingStimuli,
    GaborStimuli,
    BarStimuli,
    PlaidStimuli,
    NoiseStimuli,
    DotsStimuli,
)
