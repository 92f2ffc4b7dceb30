"""Neo to recording: trial-aligned ``neo.Segment`` objects to binned spike counts.

One ``neo.Segment`` is one trial (a presentation): its spike times are relative to stimulus
onset, as ``neo.utils.cut_segment_by_epoch(..., reset_time=True)`` gives, and its annotations
hold the stimulus (``stimulus_id`` and parameters). Each ``neo.SpikeTrain`` in it is one unit
(a neuroid), recognised across segments by its ``neuroid_id`` annotation or its name. Times are
converted to ms once, here; the result has the recording layout (presentation x neuroid x
time_bin) of :func:`neurorecord.interop.read_ecker2010`, so every analysis runs on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..record.store import index_labels
from . import InteropError, _provenance

__all__ = ["from_neo"]

#: Spike-train annotations with a fixed meaning; every other scalar one becomes a neuroid coordinate.
_NEUROID_KEYS = ("neuroid_id", "region", "channel")
_RESERVED = {"activity", "time_bin", "time_bin_start", "time_bin_end", "presentation", "neuroid"}
_SCALARS = (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)


def from_neo(segments: Any, bin_size: Any, t_start: Any = None, t_stop: Any = None, *, region: str = "unknown",
             stimulus_key: str = "stimulus_id", parameters: Sequence[str] | None = None,
             neuroid_annotations: Sequence[str] | None = None) -> xr.Dataset:
    """Bin the spike trains of trial-aligned Neo segments into a recording Dataset.

    Parameters
    ----------
    segments : neo.Block, neo.Segment or sequence of neo.Segment
        One segment per presentation (trial), in the order they become ``presentation``; a Block
        gives its ``segments``. Spike times are relative to stimulus onset.
    bin_size : quantities.Quantity
        Width of a time bin, a time quantity (``10 * pq.ms``).
    t_start, t_stop : quantities.Quantity, optional
        The binned span ``[t_start, t_stop)``, relative to onset; it must be a whole number of
        bins. Spikes outside it are not counted. Default: the spike trains' own ``t_start`` /
        ``t_stop``, which must then be the same for every spike train.
    region : str, default "unknown"
        Region of a spike train without a ``region`` annotation.
    stimulus_key : str, default "stimulus_id"
        The segment annotation naming the stimulus (required on every segment).
    parameters : sequence of str, optional
        Segment annotations to keep as ``presentation`` coordinates. Default: every annotation
        with a scalar value (str, number, bool). A segment without one gets NaN (or ``""`` for
        text).
    neuroid_annotations : sequence of str, optional
        Spike-train annotations to keep as ``neuroid`` coordinates, besides ``region`` and
        ``channel``. Default: every scalar one. A neuroid must have the same value in every
        segment.

    Returns
    -------
    xarray.Dataset
        ``activity`` (presentation x neuroid x time_bin, float32 spike counts,
        ``attrs["units"] == "spikes per bin"``, ``attrs["bin_width_ms"]``) with coordinates

        - ``presentation``: ``stimulus_id``, ``repetition`` (the ``repetition`` annotation, or
          the count of earlier segments with the same ``stimulus_id``), the kept parameters;
        - ``neuroid``: ``neuroid_id`` (the ``neuroid_id`` annotation, else the spike train's
          name, else ``region.channel``), ``region``, ``channel`` (the ``channel`` annotation,
          else the spike train's position in its segment), the kept annotations. Neuroids are
          in the order of the first segment;
        - ``time_bin``: index ``time_bin``, ``time_bin_start`` and ``time_bin_end`` (ms).

        ``attrs``: provenance (converter, package versions, creation time), ``bin_width_ms``,
        ``t_start_ms``, ``t_stop_ms`` and, for a Block, its ``name`` and ``file_origin``.

    Raises
    ------
    InteropError
        ``segments`` holds something that is not a Segment, or nothing; ``bin_size``,
        ``t_start`` or ``t_stop`` is not a time quantity, or the span is not a whole number of
        bins; a segment lacks ``stimulus_key``; a neuroid is missing from a segment, appears
        twice in one, or changes an annotation between segments; annotations mix text and
        numbers.
    ImportError
        neo or quantities is not installed.

    Notes
    -----
    A bin counts the spikes at times ``t`` with ``start <= t < end`` (the last bin too, unlike
    ``numpy.histogram``, whose last bin also counts a spike at ``t_stop``).

    Examples
    --------
    >>> import neo, quantities as pq
    >>> trials = []
    >>> for stim, times in [("grating-0", [1, 12, 15]), ("grating-90", [25]), ("grating-0", [0, 29.9])]:
    ...     seg = neo.Segment(stimulus_id=stim, orientation=float(stim.split("-")[1]))
    ...     seg.spiketrains.append(neo.SpikeTrain(times, units="ms", t_start=0, t_stop=30,
    ...                                           name="V1.u0", region="V1"))
    ...     trials.append(seg)
    >>> ds = from_neo(trials, bin_size=10 * pq.ms)
    >>> ds["activity"].dims, ds["activity"].shape, ds["activity"].attrs["units"]
    (('presentation', 'neuroid', 'time_bin'), (3, 1, 3), 'spikes per bin')
    >>> ds["activity"].values[:, 0].tolist()
    [[1.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    >>> ds["repetition"].values.tolist(), ds["orientation"].values.tolist()
    ([0, 0, 1], [0.0, 90.0, 0.0])
    >>> ds["neuroid_id"].values.tolist(), ds["region"].values.tolist()
    (['V1.u0'], ['V1'])
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

    ms = pq.ms
    width = _to_ms(pq, "bin_size", bin_size)
    if not width > 0:
        raise InteropError(f"bin_size: must be positive, found {bin_size}")
    trains = [list(seg.spiketrains) for seg in segments]
    if t_start is None or t_stop is None:
        starts = {float(st.t_start.rescale(ms).magnitude) for seg in trains for st in seg}
        stops = {float(st.t_stop.rescale(ms).magnitude) for seg in trains for st in seg}
    start = _to_ms(pq, "t_start", t_start) if t_start is not None else _common("t_start", starts)
    stop = _to_ms(pq, "t_stop", t_stop) if t_stop is not None else _common("t_stop", stops)
    n_bins = int(round((stop - start) / width))
    if n_bins < 1 or not np.isclose(n_bins * width, stop - start, rtol=0, atol=1e-9 * max(1.0, abs(stop - start))):
        raise InteropError(
            f"t_start, t_stop: the span [{start:g}, {stop:g}) ms is not a whole, positive number of "
            f"{width:g} ms bins; choose t_start/t_stop/bin_size so that it is"
        )
    edges = start + width * np.arange(n_bins + 1, dtype=np.float64)

    ids, neuroid_coords, where = _neuroids(segments, trains, region, neuroid_annotations)
    presentation_coords = _presentations(segments, stimulus_key, parameters)

    clash = sorted((set(presentation_coords) & set(neuroid_coords)) | ((set(presentation_coords) | set(neuroid_coords)) & _RESERVED))
    if clash:
        raise InteropError(
            f"segments: annotation(s) {', '.join(map(repr, clash))} would name two coordinates (segment and spike-train "
            "annotations, or a name the layout reserves); drop one with parameters=/neuroid_annotations="
        )

    counts = np.zeros((len(segments), len(ids), n_bins), dtype=np.float32)
    factors: dict[str, float] = {}
    for p, seg_trains in enumerate(trains):
        for j, st in enumerate(seg_trains):
            key = st.units.dimensionality.string
            if key not in factors:
                factors[key] = float(pq.Quantity(1.0, st.units).rescale(ms).magnitude)
            t = np.asarray(st.magnitude, dtype=np.float64).ravel() * factors[key]
            b = np.searchsorted(edges, t, side="right") - 1
            b = b[(b >= 0) & (b < n_bins)]
            counts[p, where[p][j]] = np.bincount(b, minlength=n_bins)

    coords: dict[str, Any] = {name: ("presentation", values) for name, values in presentation_coords.items()}
    coords.update({name: ("neuroid", values) for name, values in neuroid_coords.items()})
    coords.update({
        "time_bin": ("time_bin", np.arange(n_bins, dtype=np.int64)),
        "time_bin_start": ("time_bin", edges[:-1], {"units": "ms", "long_name": "bin start after stimulus onset"}),
        "time_bin_end": ("time_bin", edges[1:], {"units": "ms", "long_name": "bin end after stimulus onset"}),
    })
    activity = xr.Variable(("presentation", "neuroid", "time_bin"), counts, attrs={
        "units": "spikes per bin",
        "long_name": "spike count",
        "bin_width_ms": width,
        "description": f"spikes of each unit in {width:g} ms bins [start, end); times relative to stimulus onset",
    })
    attrs = {
        **_provenance("neurorecord.interop.from_neo", ("neo", "quantities", "numpy", "xarray")),
        **origin,
        "bin_width_ms": width,
        "t_start_ms": start,
        "t_stop_ms": stop,
        "n_segments": len(segments),
    }
    return index_labels(xr.Dataset({"activity": activity}, coords=coords, attrs=attrs))


def _to_ms(pq: Any, name: str, value: Any) -> float:
    """A time quantity as a float in ms (units converted once, at this edge)."""
    if not isinstance(value, pq.Quantity) or value.size != 1:
        raise InteropError(f"{name}: expected a time quantity such as 10 * pq.ms, found {value!r}")
    try:
        return float(value.rescale(pq.ms).magnitude)
    except ValueError:
        raise InteropError(f"{name}: expected a time quantity such as 10 * pq.ms, found units {value.dimensionality}") from None


def _common(name: str, values: set[float]) -> float:
    if not values:
        raise InteropError(f"{name}: no spike trains to take it from; pass {name} explicitly")
    if len(values) > 1:
        shown = ", ".join(f"{v:g}" for v in sorted(values)[:5])
        raise InteropError(f"{name}: the spike trains disagree ({shown} ms); pass {name} explicitly")
    return values.pop()


def _neuroids(segments: list, trains: list[list], region: str, keep: Sequence[str] | None
              ) -> tuple[list[str], dict[str, np.ndarray], list[list[int]]]:
    """Match spike trains across segments; return ids, neuroid coords and, per segment, the
    neuroid index of each spike train."""
    by_id = all(st.annotations.get("neuroid_id") is not None for seg in trains for st in seg)
    by_name = not by_id and all(st.name for seg in trains for st in seg)
    if not (by_id or by_name):
        counts = {len(seg) for seg in trains}
        if len(counts) > 1:
            raise InteropError(
                "segments: spike trains have no neuroid_id annotation or name to match them across segments, "
                f"and segments hold different numbers of them ({sorted(counts)}); annotate each with neuroid_id"
            )

    def region_of(st: Any) -> str:
        return str(st.annotations.get("region", region))

    def channel_of(st: Any, j: int) -> Any:
        return st.annotations.get("channel", j)

    def key_of(st: Any, j: int) -> str:
        if by_id:
            return str(st.annotations["neuroid_id"])
        if by_name:
            return str(st.name)
        return f"{region_of(st)}.{channel_of(st, j)}"

    ids: list[str] = []
    index: dict[str, int] = {}
    where: list[list[int]] = []
    for p, seg_trains in enumerate(trains):
        row: list[int] = []
        seen: set[str] = set()
        for j, st in enumerate(seg_trains):
            key = key_of(st, j)
            if key in seen:
                raise InteropError(f"segments: segment {p}{_label(segments[p])} holds neuroid {key!r} twice")
            seen.add(key)
            if key not in index:
                index[key] = len(ids)
                ids.append(key)
            row.append(index[key])
        where.append(row)
    for p, row in enumerate(where):
        if len(row) != len(ids):
            missing = [ids[n] for n in sorted(set(range(len(ids))) - set(row))]
            raise InteropError(
                f"segments: segment {p}{_label(segments[p])} has no spike train for neuroid(s) "
                f"{', '.join(map(repr, missing[:5]))}{' ...' if len(missing) > 5 else ''}; every trial must hold every neuroid"
            )

    # the annotations of each neuroid, checked to be the same in every segment
    found: list[dict[str, Any]] = [dict() for _ in ids]
    names: list[str] = []
    for p, seg_trains in enumerate(trains):
        for j, st in enumerate(seg_trains):
            n = where[p][j]
            values = {"region": region_of(st), "channel": channel_of(st, j)}
            for k, v in st.annotations.items():
                if k in _NEUROID_KEYS or (keep is None and not isinstance(v, _SCALARS)):
                    continue
                if keep is not None and k not in keep:
                    continue
                values[k] = v
            for k, v in values.items():
                if k not in names:
                    names.append(k)
                if k in found[n] and not _same(found[n][k], v):
                    raise InteropError(
                        f"segments: neuroid {ids[n]!r} has annotation {k!r} = {found[n][k]!r} in one segment and {v!r} "
                        f"in segment {p}{_label(segments[p])}; a neuroid annotation must not change between trials "
                        "(choose the ones to keep with neuroid_annotations=...)"
                    )
                found[n].setdefault(k, v)
    for k in keep or ():
        if k not in names and k not in _NEUROID_KEYS:
            raise InteropError(f"neuroid_annotations: no spike train has the annotation {k!r}")
    coords = {"neuroid_id": np.array(ids, dtype=object)}
    for k in names:
        coords[k] = _column(f"spike-train annotation {k!r}", [f.get(k) for f in found])
    return ids, coords, where


def _presentations(segments: list, stimulus_key: str, keep: Sequence[str] | None) -> dict[str, np.ndarray]:
    stimulus_ids = []
    for p, seg in enumerate(segments):
        if seg.annotations.get(stimulus_key) is None:
            found = ", ".join(sorted(map(str, seg.annotations))) or "none"
            raise InteropError(
                f"segments: segment {p}{_label(seg)} has no {stimulus_key!r} annotation naming its stimulus "
                f"(annotations found: {found}); annotate it, or pass stimulus_key="
            )
        stimulus_ids.append(str(seg.annotations[stimulus_key]))
    names: list[str] = []
    for seg in segments:
        for k, v in seg.annotations.items():
            if k in (stimulus_key, "stimulus_id") or k in names:
                continue
            if keep is None and not isinstance(v, _SCALARS):
                continue
            if keep is not None and k not in keep:
                continue
            names.append(k)
    for k in keep or ():
        if k not in names and k not in (stimulus_key, "stimulus_id", "repetition"):
            raise InteropError(f"parameters: no segment has the annotation {k!r}")
    coords = {"stimulus_id": np.array(stimulus_ids, dtype=object)}
    if "repetition" not in names:
        seen: dict[str, int] = {}
        repetition = np.empty(len(segments), dtype=np.int64)
        for p, sid in enumerate(stimulus_ids):
            repetition[p] = seen.get(sid, 0)
            seen[sid] = repetition[p] + 1
        coords["repetition"] = repetition
    for k in names:
        coords[k] = _column(f"segment annotation {k!r}", [seg.annotations.get(k) for seg in segments])
    return coords


def _column(what: str, values: list[Any]) -> np.ndarray:
    """Annotation values as one coordinate: int64, float64, bool or str (object); missing values
    become NaN (numbers) or ``""`` (text)."""
    present = [v for v in values if v is not None]
    if any(not isinstance(v, _SCALARS) for v in present):
        bad = next(v for v in present if not isinstance(v, _SCALARS))
        raise InteropError(f"{what}: expected scalar values (str, number, bool), found {type(bad).__name__} {bad!r}")
    text = [isinstance(v, (str, np.str_)) for v in present]
    if any(text) and not all(text):
        raise InteropError(f"{what}: mixes text and numbers ({present[text.index(True)]!r}, {present[text.index(False)]!r})")
    if any(text):
        return np.array(["" if v is None else str(v) for v in values], dtype=object)
    missing = len(present) < len(values)
    if present and all(isinstance(v, (bool, np.bool_)) for v in present) and not missing:
        return np.array(values, dtype=bool)
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present) and not missing:
        return np.array(values, dtype=np.int64)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return isinstance(a, str) == isinstance(b, str) and bool(a == b)


def _label(seg: Any) -> str:
    return f" ({seg.name!r})" if getattr(seg, "name", None) else ""
