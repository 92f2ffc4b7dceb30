"""Recording to Neo: a model recording as a ``neo.Block`` of trials, with analog signals or
Poisson spike trains.

One ``neo.Segment`` per presentation (trial), annotated with its stimulus; activity as one
``AnalogSignal`` per region (a channel per neuroid) or one ``SpikeTrain`` per neuroid drawn by an
inhomogeneous Poisson process whose rate follows the activity. Times are in ms relative to
stimulus onset, as :func:`neurorecord.interop.from_neo` reads them, so
``from_neo(to_neo(x))`` is the recording again (exactly for signals, within Poisson error for
spikes). The selection and the spike generator are shared with :mod:`neurorecord.interop.nwb`.

Timing convention. A time-resolved region (``time_bin`` dim) gives one sample per time bin,
starting at its first ``time_bin_start``. A static region (``presentation x neuroid``) is one
bin: the activity is held for ``time_bin`` ms (default :data:`STATIC_TIME_BIN_MS`) from
stimulus onset: a single-sample signal, or spikes at a constant rate over that span.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_choice, check_scalar, check_seed
from ..errors import did_you_mean
from . import InteropError, _provenance

__all__ = ["to_neo", "DEFAULT_GAIN", "STATIC_TIME_BIN_MS", "WARN_OBJECTS"]

#: Spikes/s per unit of activation: the Poisson rate is ``gain * max(activity, 0)``.
DEFAULT_GAIN = 20.0
#: How long (ms) a static region's activity is held after onset: its one time bin.
STATIC_TIME_BIN_MS = 100.0
#: Above this many Neo data objects (spike trains, or signals) the conversion warns that it is slow.
WARN_OBJECTS = 10_000
_AS = ("analog", "spikes")
_TIME_COORDS = ("time_bin", "time_bin_start", "time_bin_end")


@dataclass
class Selection:
    """The part of a recording to convert, as numpy: what ``to_neo`` and ``to_nwb`` share."""

    regions: list[str]
    activity: dict[str, np.ndarray]  # region -> (presentation, neuroid, time_bin) float64
    neuroid_coords: dict[str, dict[str, np.ndarray]]  # region -> name -> values (neuroid_id, region, channel first)
    presentation_coords: dict[str, tuple[np.ndarray, dict]]  # name -> (values, attrs)
    positions: np.ndarray  # index of each kept presentation in the recording
    t_start_ms: float
    bin_ms: float
    n_bins: int
    time_resolved: bool
    activity_units: str
    attrs: dict[str, Any] = field(default_factory=dict)  # the recording's provenance

    @property
    def n_presentations(self) -> int:
        return len(self.positions)

    @property
    def n_neuroids(self) -> int:
        return sum(len(c["neuroid_id"]) for c in self.neuroid_coords.values())


def select(recording: Any, regions: Sequence[str] | None, units: Sequence[str] | None, presentations: Any,
           time_bin: float | None) -> Selection:
    """Check the arguments and load the chosen regions, neuroids and presentations."""
    named = _regions(recording)
    if regions is not None:
        if isinstance(regions, str):
            regions = [regions]
        for r in regions:
            if r not in named:
                raise InteropError(f"regions: no region {r!r} in the recording; regions: "
                                   f"{', '.join(map(repr, named))}{did_you_mean(str(r), list(named))}")
        named = {r: named[r] for r in dict.fromkeys(regions)}
    first = next(iter(named.values()))
    for r, da in named.items():
        if not np.array_equal(da["stimulus_id"].values, first["stimulus_id"].values):
            raise InteropError(f"recording: region {r!r} has other presentations than {next(iter(named))!r}")
    positions = _positions(presentations, first["stimulus_id"].values)
    if units is not None:
        units = [units] if isinstance(units, str) else list(units)
        known = {str(i): r for r, da in named.items() for i in da["neuroid_id"].values}
        for u in units:
            if str(u) not in known:
                raise InteropError(f"units: no neuroid {u!r} in the chosen regions ({', '.join(map(repr, named))}); "
                                   f"neuroid_ids look like {', '.join(map(repr, list(known)[:3]))}{did_you_mean(str(u), list(known))}")
        wanted = set(map(str, units))
        named = {r: da for r, da in named.items() if any(str(i) in wanted for i in da["neuroid_id"].values)}
    time_bin = check_scalar("time_bin", time_bin, float, low=0, closed="neither", none_ok=True, error=InteropError)
    t0, width, n_bins, resolved = _timing(first, time_bin)
    activity, neuroid_coords, unit_names = {}, {}, set()
    for r, da in named.items():
        if ("time_bin" in da.dims) != resolved or (resolved and da.sizes["time_bin"] != n_bins):
            raise InteropError(f"regions: region {r!r} has other time bins than {next(iter(named))!r}; convert them separately")
        keep = np.arange(da.sizes["neuroid"]) if units is None else \
            np.flatnonzero([str(i) in wanted for i in da["neuroid_id"].values])
        sub = da.isel(presentation=positions, neuroid=keep)
        values = np.asarray(sub.transpose("presentation", "neuroid", *(("time_bin",) if resolved else ())).values,
                            dtype=np.float64)
        activity[r] = values if resolved else values[:, :, None]
        neuroid_coords[r] = _neuroid_coords(sub, r)
        unit_names.add(str(da.attrs.get("units", "a.u.")))
    presentation_coords = {
        name: (_plain(c.values[positions]), dict(c.attrs)) for name, c in first.coords.items()
        if c.dims == ("presentation",) and name != "presentation"
    }
    if "repetition" not in presentation_coords:  # counted as from_neo counts it: earlier showings of the stimulus
        seen: dict[str, int] = {}
        repetition = np.empty(first.sizes["presentation"], dtype=np.int64)
        for p, sid in enumerate(np.asarray(first["stimulus_id"].values).astype(str).tolist()):
            repetition[p] = seen.get(sid, 0)
            seen[sid] = repetition[p] + 1
        presentation_coords["repetition"] = (repetition[positions], {})
    return Selection(list(named), activity, neuroid_coords, presentation_coords, positions, t0, width, n_bins, resolved,
                     unit_names.pop() if len(unit_names) == 1 else "a.u.", _recording_attrs(recording))


def poisson_spikes(rates_hz: np.ndarray, t_start_ms: float, bin_ms: float, refractory_ms: float | None,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Spike times (ms) of an inhomogeneous Poisson process with a piecewise-constant rate.

    ``rates_hz`` is ``(n_trains, n_bins)``, non-negative; bin ``k`` covers
    ``[t_start_ms + k * bin_ms, t_start_ms + (k + 1) * bin_ms)``. The semantics are those of
    elephant's ``NonStationaryPoissonProcess`` (and ``inhomogeneous_poisson_process``): with a
    refractory period ``r`` the rate is raised to ``rate / (1 - rate * r)`` and every spike within
    ``r`` of the last kept one is dropped, so the mean rate stays near ``rate``. Drawn with numpy,
    all trains at once: a Poisson count per bin, then uniform times inside it.
    """
    rates = np.asarray(rates_hz, dtype=np.float64)
    n_trains, n_bins = rates.shape
    if refractory_ms:
        load = rates * refractory_ms / 1000.0
        if np.any(load >= 1):
            raise InteropError(f"refractory: a refractory period of {refractory_ms:g} ms allows at most "
                               f"{1000.0 / refractory_ms:g} spikes/s, but a rate reaches {rates.max():g} spikes/s; "
                               "lower gain or refractory")
        rates = rates / (1.0 - load)
    counts = rng.poisson(rates * (bin_ms / 1000.0))
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    times = t_start_ms + (cell % n_bins + rng.random(cell.size)) * bin_ms
    order = np.lexsort((times, cell))
    times, train = times[order], cell[order] // n_bins
    if refractory_ms:
        keep = np.ones(times.size, dtype=bool)
        while True:  # a spike too close to a kept one goes; a spike far from its predecessor is kept for good
            idx = np.flatnonzero(keep)
            t, tr = times[idx], train[idx]
            close = np.zeros(idx.size, dtype=bool)
            close[1:] = (tr[1:] == tr[:-1]) & (t[1:] - t[:-1] <= refractory_ms)
            drop = close.copy()
            drop[1:] &= ~close[:-1]
            if not drop.any():
                break
            keep[idx[drop]] = False
        times, train = times[keep], train[keep]
    bounds = np.searchsorted(train, np.arange(n_trains + 1))
    return [times[bounds[i]:bounds[i + 1]] for i in range(n_trains)]


def rates_of(activity: np.ndarray, gain: float) -> np.ndarray:
    """Poisson rates (spikes/s): ``gain * max(activity, 0)``; NaN activity is an error."""
    if np.isnan(activity).any():
        raise InteropError("recording: the activity holds NaN (an incomplete recording?); it has no spike rate")
    return gain * np.clip(activity, 0.0, None)


def to_neo(recording: Any, regions: Sequence[str] | None = None, units: Sequence[str] | None = None,
           presentations: Any = None, *, as_: str = "analog", gain: float = DEFAULT_GAIN,
           refractory: float | None = None, seed: int = 0, time_bin: float | None = None) -> Any:
    """Convert a recording to a ``neo.Block``: one Segment per presentation, signals or spike trains.

    Parameters
    ----------
    recording : xarray.DataTree, xarray.Dataset or xarray.DataArray
        A recording as :func:`neurorecord.open_recording` returns it (one node per region with
        ``activity`` of dims ``presentation x neuroid [x time_bin]``), one region's Dataset, or
        an ``activity`` DataArray (its neuroids grouped by their ``region`` coordinate).
        Dask-backed input: only the chosen part is loaded.
    regions : sequence of str, optional
        Regions to convert (default: all).
    units : sequence of str, optional
        ``neuroid_id`` values to convert (default: every neuroid of the chosen regions).
    presentations : slice, sequence of int or sequence of str, optional
        Presentations to convert: positions, or ``stimulus_id`` values (every repetition of
        them). Default: all.
    as_ : {"analog", "spikes"}, default "analog"
        ``"analog"``: the activity itself, one ``AnalogSignal`` per region and segment (samples
        x neuroids). ``"spikes"``: one ``SpikeTrain`` per neuroid and segment.
    gain : float, default 20.0
        Spikes/s per unit of activation: the Poisson rate is ``gain * max(activity, 0)``
        (negative activity fires at rate 0). ``"spikes"`` only.
    refractory : float, optional
        Absolute refractory period (ms) of the spike trains, with elephant's semantics (the
        rate is raised to ``rate / (1 - rate * refractory)``, then spikes within ``refractory``
        of the last kept one are dropped). Default: none.
    seed : int, default 0
        Seed of the spike generator (``numpy.random.default_rng(seed)``); the same seed and
        selection give the same spikes, and :func:`neurorecord.interop.to_nwb` the same ones.
    time_bin : float, optional
        Duration (ms) of one time bin: the sampling period of the signals and the span of
        constant rate of the spike trains. Default: the width of the recording's time bins
        (``time_bin_end - time_bin_start``) for a time-resolved region, which a different value
        contradicts; 100 ms for a static region, whose activity is held that long after onset.

    Returns
    -------
    neo.Block
        ``segments``: one per presentation, in order, named ``"<stimulus_id> #<repetition>"``,
        with ``index`` the presentation's position in the recording and an annotation for each
        presentation coordinate (``stimulus_id``, ``repetition``, ``label``, ...; a coordinate
        with ``attrs["units"]`` as a quantity). Times are ms from stimulus onset: signals and
        trains span ``[t_start, t_start + n_bins * time_bin)`` with ``t_start`` the first
        ``time_bin_start`` (0 for static regions).

        - ``"analog"``: per segment and region an ``AnalogSignal`` (name and annotation
          ``region``), in the activity's units if quantities knows them, else dimensionless
          (the Block's ``annotations["activity_units"]`` keeps ``"a.u."``); array annotations
          ``neuroid_id``, ``region``, ``channel`` and the other neuroid coordinates.
        - ``"spikes"``: per segment one ``SpikeTrain`` per neuroid (ms; name ``neuroid_id``;
          annotations ``neuroid_id``, ``region``, ``channel``, ...).

        ``groups``: one ``neo.Group`` per region, holding its signals, or one ``Group`` per
        neuroid with that unit's trains across segments. ``annotations``: the recording's
        provenance (protocol name and hash, subject, seed), and ``converter``, ``as_``,
        ``time_bin_ms``, ``gain``, ``refractory_ms``, ``spike_seed``, ``activity_units``.

    Raises
    ------
    InteropError
        The recording has no region with ``activity``; an unknown region, neuroid_id or
        stimulus_id (valid ones named); ``gain``, ``refractory``, ``seed`` or ``time_bin`` out of
        range; ``time_bin`` contradicts the recording's bins, or these are not of equal width;
        a rate above what the refractory period allows; NaN activity with ``as_="spikes"``.

    Warns
    -----
    UserWarning
        More than :data:`WARN_OBJECTS` Neo objects would be made (a spike train per neuroid and
        presentation): it is slow; the message says how many and how to convert a subset.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = xr.DataArray(np.array([[0.5, 2.0], [1.0, -1.0], [3.0, 0.0]], dtype=np.float32),
    ...     dims=("presentation", "neuroid"), attrs={"units": "a.u."},
    ...     coords={"stimulus_id": ("presentation", ["a", "b", "a"]), "label": ("presentation", [0, 1, 0]),
    ...             "neuroid_id": ("neuroid", ["fc1.0", "fc1.1"]), "region": ("neuroid", ["fc1", "fc1"])})
    >>> block = to_neo(x)
    >>> len(block.segments), block.segments[1].annotations["stimulus_id"], block.segments[2].annotations["repetition"]
    (3, 'b', 1)
    >>> sig = block.segments[0].analogsignals[0]
    >>> sig.shape, float(sig.sampling_period), sig.array_annotations["neuroid_id"].tolist()
    ((1, 2), 100.0, ['fc1.0', 'fc1.1'])
    >>> block = to_neo(x, as_="spikes", gain=50.0, seed=1)
    >>> train = block.segments[2].spiketrains[0]
    >>> train.name, str(train.units.dimensionality), float(train.t_stop)
    ('fc1.0', 'ms', 100.0)
    """
    import neo
    import quantities as pq

    check_choice("as_", as_, _AS, error=InteropError)
    gain = check_scalar("gain", gain, float, low=0, error=InteropError)
    refractory = check_scalar("refractory", refractory, float, low=0, closed="neither", none_ok=True, error=InteropError)
    seed = check_seed("seed", seed, error=InteropError)
    sel = select(recording, regions, units, presentations, time_bin)
    n_objects = sel.n_presentations * (sel.n_neuroids if as_ == "spikes" else len(sel.regions))
    if n_objects > WARN_OBJECTS:
        what = (f"{n_objects} SpikeTrain objects ({sel.n_presentations} presentations x {sel.n_neuroids} neuroids)"
                if as_ == "spikes" else f"{n_objects} AnalogSignal objects ({sel.n_presentations} presentations x "
                f"{len(sel.regions)} regions)")
        warnings.warn(f"to_neo: making {what}, more than {WARN_OBJECTS}, is slow; pass regions=, units= or presentations= "
                      "to convert a subset", UserWarning, stacklevel=2)

    block = neo.Block(name=str(sel.attrs.get("protocol_name", "neurorecord recording")), **_block_annotations(sel, as_, gain, refractory, seed))
    segments = [_segment(neo, pq, sel, p) for p in range(sel.n_presentations)]
    block.segments.extend(segments)
    t_start, t_stop = sel.t_start_ms * pq.ms, (sel.t_start_ms + sel.n_bins * sel.bin_ms) * pq.ms
    spikes = _spikes_by_region(sel, gain, refractory, seed) if as_ == "spikes" else {}
    for r in sel.regions:
        coords = sel.neuroid_coords[r]
        group = neo.Group(name=r, region=r)
        block.groups.append(group)
        if as_ == "analog":
            unit = _units(pq, sel.activity_units)
            array_annotations = {k: np.asarray(v) for k, v in coords.items()}
            signals = []
            for p, seg in enumerate(segments):
                sig = neo.AnalogSignal(sel.activity[r][p].T, units=unit, sampling_period=sel.bin_ms * pq.ms,
                                       t_start=t_start, name=r, region=r, array_annotations=array_annotations)
                seg.analogsignals.append(sig)
                signals.append(sig)
            group.analogsignals.extend(signals)
            continue
        n_units = len(coords["neuroid_id"])
        unit_groups = []
        for u in range(n_units):
            annotations = {k: _scalar(v[u]) for k, v in coords.items()}
            trains = []
            for p, seg in enumerate(segments):
                st = neo.SpikeTrain(spikes[r][p * n_units + u], units="ms", t_start=t_start, t_stop=t_stop,
                                    name=annotations["neuroid_id"], **annotations)
                seg.spiketrains.append(st)
                trains.append(st)
            unit_group = neo.Group(name=annotations["neuroid_id"], **annotations)
            unit_group.spiketrains.extend(trains)  # extend: the Group constructor is quadratic in the objects
            unit_groups.append(unit_group)
        group.groups.extend(unit_groups)
    return block


def _spikes_by_region(sel: Selection, gain: float, refractory: float | None, seed: int) -> dict[str, list[np.ndarray]]:
    """One generator, regions in order, trains in (presentation, neuroid) order: shared with to_nwb."""
    rng = np.random.default_rng(seed)
    out = {}
    for r in sel.regions:
        a = sel.activity[r]
        out[r] = poisson_spikes(rates_of(a, gain).reshape(-1, sel.n_bins), sel.t_start_ms, sel.bin_ms, refractory, rng)
    return out


def _segment(neo: Any, pq: Any, sel: Selection, p: int) -> Any:
    annotations = {}
    for name, (values, attrs) in sel.presentation_coords.items():
        value = _scalar(values[p])
        unit = attrs.get("units")
        if unit and isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = pq.Quantity(value, unit)
            except (LookupError, ValueError):
                pass
        annotations[name] = value
    stim = annotations.get("stimulus_id", "")
    rep = annotations.get("repetition")
    return neo.Segment(name=f"{stim} #{rep}" if rep is not None else str(stim), index=int(sel.positions[p]), **annotations)


def _block_annotations(sel: Selection, as_: str, gain: float, refractory: float | None, seed: int) -> dict[str, Any]:
    notes = {k: sel.attrs[k] for k in ("protocol_name", "protocol_sha256", "subject_weight_sha256", "seed") if k in sel.attrs}
    subject = sel.attrs.get("subject")
    if isinstance(subject, dict) and "name" in subject:
        notes["subject"] = str(subject["name"])
    converted = _provenance("neurorecord.interop.to_neo", ("neo", "quantities", "numpy", "xarray"))
    notes.update(converter=converted["converter"], converted=converted["created"], as_=as_, time_bin_ms=sel.bin_ms,
                 activity_units=sel.activity_units, time_resolved=sel.time_resolved)
    if as_ == "spikes":
        notes.update(gain=gain, gain_units="spikes/s per unit of activation", spike_seed=seed,
                     refractory_ms=refractory if refractory is not None else 0.0)
    return notes


def _units(pq: Any, text: str) -> Any:
    """The activity's units as a quantity, or dimensionless (the text is in the Block's annotations)."""
    try:
        return pq.Quantity(1.0, text).units
    except (LookupError, ValueError, SyntaxError, TypeError):
        return pq.dimensionless


def _regions(recording: Any) -> dict[str, xr.DataArray]:
    """region name -> activity DataArray (presentation x neuroid [x time_bin])."""
    if isinstance(recording, xr.DataTree):
        listed = recording.attrs.get("regions")
        names = list(listed) if listed else [k for k, node in recording.children.items() if "activity" in node.data_vars]
        found = {r: recording[r]["activity"] for r in names if r in recording.children and "activity" in recording[r].data_vars}
    elif isinstance(recording, xr.Dataset) and "activity" in recording.data_vars:
        found = _split(recording["activity"])
    elif isinstance(recording, xr.DataArray):
        found = _split(recording)
    else:
        raise InteropError("recording: expected an xarray.DataTree (as open_recording returns), a region's Dataset with "
                           f"'activity', or an activity DataArray; found {type(recording).__name__}")
    if not found:
        raise InteropError("recording: no region with an 'activity' variable")
    for r, da in found.items():
        extra = set(da.dims) - {"presentation", "neuroid", "time_bin"}
        if not {"presentation", "neuroid"} <= set(da.dims) or extra:
            raise InteropError(f"recording: region {r!r} has dims {da.dims}; expected presentation x neuroid [x time_bin]")
        for name, dim in (("stimulus_id", "presentation"), ("neuroid_id", "neuroid")):
            if name not in da.coords or da[name].dims != (dim,):
                raise InteropError(f"recording: region {r!r} has no {name!r} coordinate on {dim!r}")
    return found


def _split(da: xr.DataArray) -> dict[str, xr.DataArray]:
    if "region" not in da.coords:
        return {str(da.attrs.get("region", "unknown")): da}
    values = np.asarray(da["region"].values).astype(str)
    return {r: da.isel(neuroid=np.flatnonzero(values == r)) for r in dict.fromkeys(values.tolist())}


def _positions(presentations: Any, stimulus_ids: np.ndarray) -> np.ndarray:
    n = len(stimulus_ids)
    if presentations is None:
        return np.arange(n)
    if isinstance(presentations, slice):
        return np.arange(n)[presentations]
    items = [presentations] if isinstance(presentations, (str, int, np.integer)) else list(presentations)
    if all(isinstance(i, str) for i in items):
        ids = np.asarray(stimulus_ids).astype(str)
        for i in items:
            if i not in set(ids.tolist()):
                raise InteropError(f"presentations: no stimulus_id {i!r} in the recording{did_you_mean(i, ids.tolist())}")
        return np.flatnonzero(np.isin(ids, items))
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items):
        bad = [i for i in items if not -n <= i < n]
        if bad:
            raise InteropError(f"presentations: position {bad[0]} is out of range for {n} presentations")
        return np.asarray(items, dtype=np.int64) % n
    raise InteropError(f"presentations: expected a slice, positions (int) or stimulus_id values (str), found {presentations!r}")


def _timing(da: xr.DataArray, time_bin: float | None) -> tuple[float, float, int, bool]:
    """(t_start_ms, bin_ms, n_bins, time_resolved) of a region."""
    if "time_bin" not in da.dims:
        return 0.0, time_bin if time_bin is not None else STATIC_TIME_BIN_MS, 1, False
    n_bins = da.sizes["time_bin"]
    if "time_bin_start" not in da.coords or "time_bin_end" not in da.coords:
        return 0.0, time_bin if time_bin is not None else STATIC_TIME_BIN_MS, n_bins, True
    for name in ("time_bin_start", "time_bin_end"):
        unit = da[name].attrs.get("units", "ms")
        if unit != "ms":
            raise InteropError(f"recording: coordinate {name!r} is in {unit!r}; expected 'ms'")
    starts = np.asarray(da["time_bin_start"].values, dtype=np.float64)
    ends = np.asarray(da["time_bin_end"].values, dtype=np.float64)
    widths = ends - starts
    width = float(widths[0])
    if not (np.allclose(widths, width, rtol=1e-9, atol=0) and np.allclose(starts[1:], ends[:-1], rtol=1e-9, atol=1e-9)):
        raise InteropError("recording: the time bins are not contiguous bins of one width; a Neo signal needs a fixed sampling period")
    if time_bin is not None and not np.isclose(time_bin, width, rtol=1e-9, atol=0):
        raise InteropError(f"time_bin: {time_bin:g} ms contradicts the recording's time bins of {width:g} ms; leave it out")
    return float(starts[0]), width, n_bins, True


def _neuroid_coords(da: xr.DataArray, region: str) -> dict[str, np.ndarray]:
    coords = {"neuroid_id": np.asarray(da["neuroid_id"].values).astype(str)}
    n = len(coords["neuroid_id"])
    coords["region"] = np.asarray(da["region"].values).astype(str) if "region" in da.coords else np.full(n, region)
    coords["channel"] = _plain(da["channel"].values) if "channel" in da.coords else np.arange(n)
    for name, c in da.coords.items():
        if c.dims == ("neuroid",) and name not in coords and name != "neuroid":
            coords[name] = _plain(c.values)
    return coords


def _plain(values: np.ndarray) -> np.ndarray:
    """Object arrays of text as fixed-width str (what Neo array annotations and HDF5 take)."""
    values = np.asarray(values)
    return values.astype(str) if values.dtype == object else values


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _recording_attrs(recording: Any) -> dict[str, Any]:
    return dict(recording.attrs) if isinstance(recording, xr.DataTree) else {}
