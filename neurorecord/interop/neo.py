"""Neo to recording: trial-aligned ``neo.Segment`` objects to binned spike counts or binned signals.

One ``neo.Segment`` is one trial (a presentation): its times are relative to stimulus onset, as
``neo.utils.cut_segment_by_epoch(..., reset_time=True)`` gives, and its annotations hold the
stimulus (``stimulus_id`` and parameters). Each ``neo.SpikeTrain`` in it is one unit (a
neuroid), recognised across segments by its ``neuroid_id`` annotation or its name; each channel
of an ``neo.AnalogSignal`` is one neuroid too. Times are converted to ms once, here; the result
has the recording layout (presentation x neuroid x time_bin) of
:func:`neurorecord.interop.read_ecker2010`, so every analysis runs on it. Turning annotations
into coordinates is :mod:`neurorecord.interop._neo_labels`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_choice
from ..store import index_labels
from . import InteropError, _provenance
from ._neo_labels import is_scalar, label, neuroids, presentations

__all__ = ["from_neo"]

_RESERVED = {"activity", "time_bin", "time_bin_start", "time_bin_end", "presentation", "neuroid"}
_SOURCES = ("auto", "spiketrains", "analogsignals")
#: Times closer than this fraction of a bin are the same time (float noise of cut trials).
TOLERANCE = 1e-6


def from_neo(segments: Any, bin_size: Any, t_start: Any = None, t_stop: Any = None, *, region: str = "unknown",
             stimulus_key: str = "stimulus_id", parameters: Sequence[str] | None = None,
             neuroid_annotations: Sequence[str] | None = None, source: str = "auto") -> xr.Dataset:
    """Bin the spike trains (or analog signals) of trial-aligned Neo segments into a recording Dataset.

    Parameters
    ----------
    segments : neo.Block, neo.Segment or sequence of neo.Segment
        One segment per presentation (trial), in the order they become ``presentation``; a Block
        gives its ``segments``. Times are relative to stimulus onset.
    bin_size : quantities.Quantity
        Width of a time bin, a time quantity (``10 * pq.ms``).
    t_start, t_stop : quantities.Quantity, optional
        The binned span ``[t_start, t_stop)``, relative to onset; it must be a whole number of
        bins. Spikes outside it are not counted. Default: the binned objects' own ``t_start`` /
        ``t_stop``, which must then be the same for all of them, to a millionth of a bin
        (``TOLERANCE``): the float noise of ``cut_segment_by_epoch(..., reset_time=True)`` is
        ignored, a real difference is an error.
    region : str, default "unknown"
        Region of a spike train or signal without a ``region`` annotation.
    stimulus_key : str, default "stimulus_id"
        The segment annotation naming the stimulus (required on every segment).
    parameters : sequence of str, optional
        Segment annotations to keep as ``presentation`` coordinates. Default: every annotation
        with a scalar value (str, number, bool, or a quantity of one value). A segment without
        one gets NaN (or ``""`` for text). A quantity (``90 * pq.deg``) gives its magnitude in
        the unit of the first segment's value (compatible units are rescaled: rad to deg) and
        the coordinate's ``attrs["units"]``.
    neuroid_annotations : sequence of str, optional
        Spike-train (or signal) annotations to keep as ``neuroid`` coordinates, besides
        ``region`` and ``channel``. Default: every scalar one. A neuroid must have the same
        value in every segment. Quantities as for ``parameters``.
    source : {"auto", "spiketrains", "analogsignals"}, default "auto"
        What to bin. ``"spiketrains"``: spike counts. ``"analogsignals"``: the mean of each
        ``AnalogSignal`` channel over each bin (the samples at times ``start <= t < end``).
        ``"auto"``: the spike trains if any segment has some, else the analog signals; with
        both present it bins the spike trains and warns.

    Returns
    -------
    xarray.Dataset
        ``activity`` (presentation x neuroid x time_bin, float32, ``attrs["bin_width_ms"]``):
        spike counts (``attrs["units"] == "spikes per bin"``) or bin means of the signals (in
        the first signal's units, e.g. ``"mV"``; other compatible units are rescaled), with
        coordinates

        - ``presentation``: ``stimulus_id``, ``repetition`` (the ``repetition`` annotation, or
          the count of earlier segments with the same ``stimulus_id``), the kept parameters;
        - ``neuroid``: ``neuroid_id``, ``region``, ``channel``, the kept annotations. For a
          spike train: the ``neuroid_id`` annotation, else its name, else ``region.channel``
          (``channel``: the annotation, else the position in its segment). For a signal
          channel: the ``neuroid_id`` array annotation, else ``region.channel`` (``channel``:
          the ``channel`` or ``channel_ids`` array annotation, else the column); its other
          array annotations (``channel_names``) become coordinates. Neuroids are in the order
          of the first segment;
        - ``time_bin``: index ``time_bin``, ``time_bin_start`` and ``time_bin_end`` (ms).

        ``attrs``: provenance (converter, package versions, creation time), ``neo_objects``
        (``"SpikeTrain"`` or ``"AnalogSignal"``), ``bin_width_ms``, ``t_start_ms``,
        ``t_stop_ms`` and, for a Block, its ``name`` and ``file_origin``.

    Raises
    ------
    InteropError
        ``segments`` holds something that is not a Segment, or nothing to bin; ``bin_size``,
        ``t_start`` or ``t_stop`` is not a time quantity, the span is not a whole number of
        bins, or the default span differs between objects; a segment lacks ``stimulus_key``; a
        neuroid is missing from a segment, appears twice in one, or changes an annotation
        between segments; annotations mix text and numbers, or quantities and plain numbers, or
        units that do not convert; a signal does not cover the span, or its samples are
        farther apart than a bin; ``source`` is not one of the choices or names objects the
        segments do not hold.
    ImportError
        neo or quantities is not installed.

    Warns
    -----
    UserWarning
        ``source="auto"`` and the segments hold both spike trains and analog signals.

    Notes
    -----
    A bin counts the spikes at times ``t`` with ``start <= t < end`` (the last bin too, unlike
    ``numpy.histogram``, whose last bin also counts a spike at ``t_stop``).

    Examples
    --------
    >>> import neo, quantities as pq
    >>> trials = []
    >>> for stim, times in [("grating-0", [1, 12, 15]), ("grating-90", [25]), ("grating-0", [0, 29.9])]:
    ...     seg = neo.Segment(stimulus_id=stim, orientation=float(stim.split("-")[1]) * pq.deg)
    ...     seg.spiketrains.append(neo.SpikeTrain(times, units="ms", t_start=0, t_stop=30,
    ...                                           name="V1.u0", region="V1"))
    ...     trials.append(seg)
    >>> ds = from_neo(trials, bin_size=10 * pq.ms)
    >>> ds["activity"].dims, ds["activity"].shape, ds["activity"].attrs["units"]
    (('presentation', 'neuroid', 'time_bin'), (3, 1, 3), 'spikes per bin')
    >>> ds["activity"].values[:, 0].tolist()
    [[1.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    >>> ds["repetition"].values.tolist(), ds["orientation"].values.tolist(), ds["orientation"].attrs["units"]
    ([0, 0, 1], [0.0, 90.0, 0.0], 'deg')
    >>> ds["neuroid_id"].values.tolist(), ds["region"].values.tolist()
    (['V1.u0'], ['V1'])

    An analog signal (two channels sampled at 1 kHz) gives the mean of each 10 ms bin:

    >>> lfp = neo.Segment(stimulus_id="grating-0")
    >>> lfp.analogsignals.append(neo.AnalogSignal(np.arange(40.0).reshape(20, 2), units="uV",
    ...                                           sampling_rate=1 * pq.kHz, region="V1"))
    >>> ds = from_neo(lfp, bin_size=10 * pq.ms)
    >>> ds["activity"].values.tolist(), ds["activity"].attrs["units"], ds["neuroid_id"].values.tolist()
    ([[[9.0, 29.0], [10.0, 30.0]]], 'uV', ['V1.0', 'V1.1'])
    """
    try:
        import neo
        import quantities as pq
    except ImportError as exc:  # pragma: no cover - both are dependencies of neurorecord
        raise ImportError(f"from_neo needs neo and quantities ({exc}); install them with `pip install neo quantities`") from exc

    origin: dict[str, str] = {}
    if isinstance(segments, neo.Block):
        origin = {"block_name": str(segments.name or ""), "block_file_origin": str(segments.file_origin or "")}
        segments = list(segments.segments)
    elif isinstance(segments, neo.Segment):
        segments = [segments]
    elif isinstance(segments, Iterable) and not isinstance(segments, (str, bytes)):
        segments = list(segments)
    else:
        raise InteropError(f"segments: expected a neo.Block, a neo.Segment or a sequence of neo.Segment, found {type(segments).__name__}")
    for i, seg in enumerate(segments):
        if not isinstance(seg, neo.Segment):
            raise InteropError(f"segments: element {i} is a {type(seg).__name__}, expected a neo.Segment (one per trial)")
    if not segments:
        raise InteropError("segments: no segments given; expected one neo.Segment per trial")
    if not isinstance(region, str) or not region:
        raise InteropError(f"region: expected a non-empty string, found {region!r}")
    check_choice("source", source, _SOURCES, error=InteropError)

    width = _to_ms(pq, "bin_size", bin_size)
    if not width > 0:
        raise InteropError(f"bin_size: must be positive, found {bin_size}")
    kind = _what_to_bin(segments, source)
    objects = [list(seg.spiketrains if kind == "spiketrains" else seg.analogsignals) for seg in segments]
    noun = "spike trains" if kind == "spiketrains" else "analog signals"
    start = _to_ms(pq, "t_start", t_start) if t_start is not None else \
        _common("t_start", [_ms(pq, o.t_start) for seg in objects for o in seg], width, noun)
    stop = _to_ms(pq, "t_stop", t_stop) if t_stop is not None else \
        _common("t_stop", [_ms(pq, o.t_stop) for seg in objects for o in seg], width, noun)
    n_bins = int(round((stop - start) / width))
    if n_bins < 1 or abs(n_bins * width - (stop - start)) > TOLERANCE * width:
        raise InteropError(
            f"t_start, t_stop: the span [{start:g}, {stop:g}) ms is not a whole, positive number of "
            f"{width:g} ms bins; choose t_start/t_stop/bin_size so that it is"
        )
    edges = start + width * np.arange(n_bins + 1, dtype=np.float64)

    if kind == "spiketrains":
        items = objects
    else:
        items = [[channel for sig in seg for channel in _channels(sig)] for seg in objects]
    ids, neuroid_coords, where = neuroids(segments, items, region, neuroid_annotations,
                                          "spike train" if kind == "spiketrains" else "signal channel")
    presentation_coords = presentations(segments, stimulus_key, parameters)

    clash = sorted((set(presentation_coords) & set(neuroid_coords)) | ((set(presentation_coords) | set(neuroid_coords)) & _RESERVED))
    if clash:
        raise InteropError(
            f"segments: annotation(s) {', '.join(map(repr, clash))} would name two coordinates (segment and spike-train "
            "annotations, or a name the layout reserves); drop one with parameters=/neuroid_annotations="
        )

    if kind == "spiketrains":
        values = _count_spikes(pq, objects, where, edges, len(ids))
        activity_attrs = {
            "units": "spikes per bin",
            "long_name": "spike count",
            "description": f"spikes of each unit in {width:g} ms bins [start, end); times relative to stimulus onset",
        }
    else:
        values, unit = _average_signals(pq, segments, objects, where, edges, len(ids))
        activity_attrs = {
            "units": unit,
            "long_name": "signal mean",
            "description": f"mean of the samples of each channel in {width:g} ms bins [start, end); "
                           "times relative to stimulus onset",
        }

    coords: dict[str, Any] = {name: ("presentation", v, a) for name, (v, a) in presentation_coords.items()}
    coords.update({name: ("neuroid", v, a) for name, (v, a) in neuroid_coords.items()})
    coords.update({
        "time_bin": ("time_bin", np.arange(n_bins, dtype=np.int64)),
        "time_bin_start": ("time_bin", edges[:-1], {"units": "ms", "long_name": "bin start after stimulus onset"}),
        "time_bin_end": ("time_bin", edges[1:], {"units": "ms", "long_name": "bin end after stimulus onset"}),
    })
    activity = xr.Variable(("presentation", "neuroid", "time_bin"), values,
                           attrs={**activity_attrs, "bin_width_ms": width})
    attrs = {
        **_provenance("neurorecord.interop.from_neo", ("neo", "quantities", "numpy", "xarray")),
        **origin,
        "neo_objects": "SpikeTrain" if kind == "spiketrains" else "AnalogSignal",
        "bin_width_ms": width,
        "t_start_ms": float(edges[0]),
        "t_stop_ms": float(edges[-1]),
        "n_segments": len(segments),
    }
    return index_labels(xr.Dataset({"activity": activity}, coords=coords, attrs=attrs))


def _what_to_bin(segments: list, source: str) -> str:
    """``"spiketrains"`` or ``"analogsignals"``, from ``source`` and what the segments hold."""
    n_spiketrains = sum(len(seg.spiketrains) for seg in segments)
    n_signals = sum(len(seg.analogsignals) for seg in segments)
    held = {
        "spike train(s)": n_spiketrains,
        "analog signal(s)": n_signals,
        "irregularly sampled signal(s)": sum(len(seg.irregularlysampledsignals) for seg in segments),
        "event array(s)": sum(len(seg.events) for seg in segments),
        "epoch array(s)": sum(len(seg.epochs) for seg in segments),
    }
    found = ", ".join(f"{n} {what}" for what, n in held.items() if n) or "nothing"
    if source == "spiketrains" and not n_spiketrains:
        raise InteropError(f"segments: no spike trains to bin (found {found}); pass source='analogsignals' to bin analog signals")
    if source == "analogsignals" and not n_signals:
        raise InteropError(f"segments: no analog signals to bin (found {found}); pass source='spiketrains' to bin spike trains")
    if source == "auto":
        if not (n_spiketrains or n_signals):
            raise InteropError(f"segments: no spike trains and no analog signals to bin (found {found}); from_neo bins "
                               "neo.SpikeTrain or neo.AnalogSignal objects")
        if n_spiketrains and n_signals:
            warnings.warn("segments hold both spike trains and analog signals; binning the spike trains and leaving the "
                          "signals out (pass source='analogsignals' to bin the signals, or source='spiketrains' to "
                          "silence this)", UserWarning, stacklevel=3)
        return "spiketrains" if n_spiketrains else "analogsignals"
    return source


def _channels(sig: Any) -> list[SimpleNamespace]:
    """One item per channel of an AnalogSignal: the signal's annotations, overridden by the
    entries of its array annotations, and ``channel`` (the ``channel`` annotation, else the
    ``channel_ids`` array annotation, else the column)."""
    per_channel = dict(sig.array_annotations)
    ids = per_channel.pop("channel_ids", None) if "channel" not in per_channel and "channel" not in sig.annotations else None
    out = []
    for c in range(sig.shape[1]):
        annotations = {**sig.annotations, **{k: _item(v[c]) for k, v in per_channel.items()}}
        annotations.setdefault("channel", _item(ids[c]) if ids is not None else c)
        out.append(SimpleNamespace(annotations=annotations, name=None))
    return out


def _item(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (text stays text)."""
    return value.item() if isinstance(value, np.generic) and is_scalar(value) else value


def _count_spikes(pq: Any, trains: list[list], where: list[list[int]], edges: np.ndarray, n_neuroids: int) -> np.ndarray:
    n_bins = len(edges) - 1
    counts = np.zeros((len(trains), n_neuroids, n_bins), dtype=np.float32)
    factors: dict[str, float] = {}
    for p, seg_trains in enumerate(trains):
        for j, st in enumerate(seg_trains):
            key = st.units.dimensionality.string
            if key not in factors:
                factors[key] = float(pq.Quantity(1.0, st.units).rescale(pq.ms).magnitude)
            t = np.asarray(st.magnitude, dtype=np.float64).ravel() * factors[key]
            b = np.searchsorted(edges, t, side="right") - 1
            b = b[(b >= 0) & (b < n_bins)]
            counts[p, where[p][j]] = np.bincount(b, minlength=n_bins)
    return counts


def _average_signals(pq: Any, segments: list, signals: list[list], where: list[list[int]], edges: np.ndarray,
                     n_neuroids: int) -> tuple[np.ndarray, str]:
    """Mean of each channel's samples over each bin, in the first signal's units."""
    width = float(edges[1] - edges[0])
    eps = TOLERANCE * width
    first_signal = next(sig for seg in signals for sig in seg)
    unit, reference = first_signal.units.dimensionality.string, first_signal.units
    means = np.zeros((len(signals), n_neuroids, len(edges) - 1), dtype=np.float32)
    for p, seg_signals in enumerate(signals):
        column = 0
        for k, sig in enumerate(seg_signals):
            where_text = f"analog signal {k} in segment {p}{label(segments[p])}"
            try:
                factor = float(pq.Quantity(1.0, sig.units).rescale(reference).magnitude)
            except ValueError:
                raise InteropError(f"segments: {where_text} has units {sig.units.dimensionality.string}, which do not "
                                   f"convert to {unit} (the units of the first analog signal)") from None
            t0 = _ms(pq, sig.t_start)
            period = _ms(pq, sig.sampling_period)
            n_samples = sig.shape[0]
            # index of the first sample at or after each edge; a sample within eps of an edge is on it
            first = np.ceil((edges - eps - t0) / period).astype(np.int64)
            if first[0] < 0 or first[-1] > n_samples:
                raise InteropError(
                    f"t_start, t_stop: the span [{edges[0]:g}, {edges[-1]:g}) ms reaches beyond {where_text}, which "
                    f"covers [{t0:g}, {t0 + n_samples * period:g}) ms; pass t_start/t_stop inside it"
                )
            n_per_bin = np.diff(first)
            if np.any(n_per_bin == 0):
                raise InteropError(f"bin_size: {width:g} ms bins are shorter than the sampling period ({period:g} ms) of "
                                   f"{where_text}: some bins hold no sample; choose bins of at least {period:g} ms")
            samples = np.asarray(sig.magnitude, dtype=np.float64)[first[0]:first[-1]]
            sums = np.add.reduceat(samples, first[:-1] - first[0], axis=0)
            block = (sums / n_per_bin[:, None]).T * factor
            for c in range(sig.shape[1]):
                means[p, where[p][column + c]] = block[c]
            column += sig.shape[1]
    return means, unit


def _ms(pq: Any, value: Any) -> float:
    return float(value.rescale(pq.ms).magnitude)


def _to_ms(pq: Any, name: str, value: Any) -> float:
    """A time quantity as a float in ms (units converted once, at this edge)."""
    if not isinstance(value, pq.Quantity) or value.size != 1:
        raise InteropError(f"{name}: expected a time quantity such as 10 * pq.ms, found {value!r}")
    try:
        return float(value.rescale(pq.ms).magnitude)
    except ValueError:
        raise InteropError(f"{name}: expected a time quantity such as 10 * pq.ms, found units {value.dimensionality}") from None


def _common(name: str, values: list[float], width: float, noun: str) -> float:
    """The one value of ``values`` (ms), to ``TOLERANCE`` of a bin; the most simply written one
    (``0.0`` rather than ``8.9e-13``) when float noise separates them."""
    if not values:
        raise InteropError(f"{name}: no {noun} to take it from; pass {name} explicitly")
    if max(values) - min(values) > TOLERANCE * width:
        shown = ", ".join(dict.fromkeys(f"{v:.6g}" for v in sorted(values)))
        raise InteropError(f"{name}: the {noun} disagree ({shown} ms) by more than {TOLERANCE:g} of a bin; "
                           f"pass {name} explicitly")
    return min(values, key=lambda v: (len(repr(v)), v))
