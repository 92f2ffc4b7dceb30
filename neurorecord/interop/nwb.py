"""NWB both ways: a recording to an NWB file (trials and units tables), and an NWB file's units
and trials back to the recording layout.

:func:`to_nwb` lays the presentations out on a session clock (one trial after another, with an
inter-trial interval) and writes a ``trials`` table (a column per stimulus parameter) and a
``units`` table (a row per neuroid: spike times drawn by the same seeded Poisson generator as
:func:`neurorecord.interop.to_neo`, or the activity itself in a column). :func:`from_nwb` bins the
spike times of any NWB file with those two tables per trial, so an NWB dataset goes through the
same analyses as a model recording. pynwb is an optional dependency (``pip install
neurorecord[nwb]``), imported inside the functions.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_scalar, check_seed
from . import InteropError, _provenance
from .neo_export import DEFAULT_GAIN, _spikes_by_region, select

__all__ = ["to_nwb", "from_nwb"]

#: Trials-table columns the NWB schema or this module defines; a stimulus parameter may not take them.
_TRIAL_COLUMNS = ("id", "start_time", "stop_time", "tags", "timeseries", "stimulus_onset")
#: Units-table columns that are not one value per unit, or are read separately.
_UNIT_SKIP = ("spike_times", "obs_intervals", "electrodes", "electrode_group", "waveform_mean", "waveform_sd",
              "waveforms", "activity", "activity_units")


def _pynwb(function: str) -> Any:
    try:
        import pynwb
    except ImportError as exc:
        raise ImportError(f"{function} needs pynwb ({exc}); install it with `pip install neurorecord[nwb]`") from exc
    return pynwb


def to_nwb(recording: Any, path: str | os.PathLike[str], regions: Sequence[str] | None = None,
           units: Sequence[str] | None = None, presentations: Any = None, *, spikes: bool = True,
           gain: float = DEFAULT_GAIN, refractory: float | None = None, seed: int = 0, time_bin: float | None = None,
           inter_trial_interval: float = 0.5, identifier: str | None = None, overwrite: bool = False) -> Path:
    """Write a recording to an NWB file with a trials table and a units table.

    Parameters
    ----------
    recording : xarray.DataTree, xarray.Dataset or xarray.DataArray
        As for :func:`neurorecord.interop.to_neo`; a DataTree's provenance goes into the file.
    path : str or path-like
        The ``.nwb`` file to write (HDF5).
    regions, units, presentations
        The part to write, as for :func:`~neurorecord.interop.to_neo` (default: everything).
    spikes : bool, default True
        True: each unit's ``spike_times`` (s, on the session clock), drawn as in
        :func:`~neurorecord.interop.to_neo` with ``as_="spikes"``: the same ``gain``,
        ``refractory``, ``seed`` and selection give the same spikes, shifted to each trial's
        onset. False: no spikes; the column ``activity`` holds each unit's activity, of shape
        (n_trials, n_bins), bin ``k`` of trial ``i`` covering the ``k``-th of ``n_bins`` equal
        parts of ``[start_time, stop_time)``, and ``activity_units`` its units.
    gain : float, default 20.0
        Spikes/s per unit of activation (rate ``gain * max(activity, 0)``).
    refractory : float, optional
        Refractory period (ms), as in :func:`~neurorecord.interop.to_neo`.
    seed : int, default 0
        Seed of the spike generator.
    time_bin : float, optional
        Duration (ms) of a time bin; for a static recording, how long each stimulus is shown
        (default 100 ms). Time-resolved recordings use their own bins.
    inter_trial_interval : float, default 0.5
        Seconds between the end of one trial and the start of the next.
    identifier : str, optional
        The file's ``identifier`` (default: a new UUID).
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Notes
    -----
    The schedule: trial ``i`` (the ``i``-th presentation written) lasts
    ``T = n_bins * time_bin`` ms and starts at ``start_time = i * (T / 1000 +
    inter_trial_interval)`` s; the stimulus comes on at ``stimulus_onset = start_time -
    t_start / 1000`` with ``t_start`` the first ``time_bin_start`` (0 for static recordings).
    The trials table has ``start_time``, ``stop_time``, ``stimulus_onset`` and a column per
    presentation coordinate (``stimulus_id``, ``repetition``, ``label``, ...; units named in the
    description). The units table has ``neuroid_id``, ``region``, ``channel`` (and any other
    neuroid coordinate), ``electrode_group`` (one ``ElectrodeGroup`` per region, ``location``
    the region, on a ``Device`` named ``neurorecord``) and ``obs_intervals`` (the trials).
    Provenance: ``session_description`` names the protocol and subject; ``notes`` is JSON with
    the protocol hash, subject, weight hash, seeds, package versions and these conversion
    settings; ``source_script`` is the protocol's YAML text; ``session_start_time`` is the
    recording's ``created`` time (else now).

    Raises
    ------
    InteropError
        As :func:`~neurorecord.interop.to_neo`; ``path`` exists and ``overwrite`` is False; a
        presentation coordinate takes a trials-table name (``start_time``, ``stop_time``, ...).
    ImportError
        pynwb is not installed.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> x = xr.DataArray(np.array([[0.5, 2.0], [1.0, 0.0], [3.0, 0.0]], dtype=np.float32),
    ...     dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b", "a"]), "label": ("presentation", [0, 1, 0]),
    ...             "neuroid_id": ("neuroid", ["fc1.0", "fc1.1"]), "region": ("neuroid", ["fc1", "fc1"])})
    >>> path = to_nwb(x, tempfile.mkdtemp() + "/rec.nwb", gain=50.0)
    >>> back = from_nwb(path)
    >>> back["activity"].dims, back["stimulus_id"].values.tolist(), back["label"].values.tolist()
    (('presentation', 'neuroid'), ['a', 'b', 'a'], [0, 1, 0])
    >>> back["start_time"].values.tolist(), back["neuroid_id"].values.tolist()
    ([0.0, 0.6, 1.2], ['fc1.0', 'fc1.1'])
    """
    pynwb = _pynwb("to_nwb")
    from pynwb.file import Subject
    from hdmf.common import VectorData
    from pynwb.misc import Units

    path = Path(path)
    if path.exists() and not overwrite:
        raise InteropError(f"path: {path} exists; pass overwrite=True to replace it")
    if not isinstance(spikes, bool):
        raise InteropError(f"spikes: expected True or False, found {spikes!r}")
    gain = check_scalar("gain", gain, float, low=0, error=InteropError)
    refractory = check_scalar("refractory", refractory, float, low=0, closed="neither", none_ok=True, error=InteropError)
    seed = check_seed("seed", seed, error=InteropError)
    iti = check_scalar("inter_trial_interval", inter_trial_interval, float, low=0, error=InteropError)
    sel = select(recording, regions, units, presentations, time_bin)
    clash = sorted(set(sel.presentation_coords) & set(_TRIAL_COLUMNS))
    if clash:
        raise InteropError(f"recording: presentation coordinate(s) {', '.join(map(repr, clash))} take a trials-table "
                           "name; rename them (ds.rename(...)) before writing")

    duration = sel.n_bins * sel.bin_ms / 1000.0
    starts = np.arange(sel.n_presentations) * (duration + iti)
    onsets = starts - sel.t_start_ms / 1000.0
    attrs = sel.attrs
    subject = attrs.get("subject", {})
    subject_name = str(subject.get("name", "unknown")) if isinstance(subject, dict) else str(subject)
    settings = {"spikes": spikes, "time_bin_ms": sel.bin_ms, "inter_trial_interval_s": iti, "regions": sel.regions,
                "activity_units": sel.activity_units}
    if spikes:
        settings.update(gain=gain, gain_units="spikes/s per unit of activation", refractory_ms=refractory, spike_seed=seed,
                        generator="inhomogeneous Poisson, piecewise-constant rate per time bin (neurorecord.interop.to_neo)")
    notes = {k: attrs[k] for k in ("protocol_name", "protocol_sha256", "subject_weight_sha256", "seed", "packages",
                                   "created") if k in attrs}
    notes.update(subject=subject_name, conversion=settings,
                 converter=_provenance("neurorecord.interop.to_nwb", ("pynwb", "hdmf", "numpy", "xarray")))
    created = attrs.get("created")
    start_time = _dt.datetime.fromisoformat(created) if isinstance(created, str) else _dt.datetime.now(_dt.timezone.utc)
    if start_time.tzinfo is None:
        start_time = start_time.replace(tzinfo=_dt.timezone.utc)
    protocol = attrs.get("protocol_name")
    extra: dict[str, Any] = {}
    if attrs.get("protocol_text"):
        extra["source_script"] = str(attrs["protocol_text"])
        if attrs.get("protocol_path"):
            extra["source_script_file_name"] = Path(str(attrs["protocol_path"])).name
    nwb = pynwb.NWBFile(
        session_description=f"in-silico recording of the network {subject_name!r} with neurorecord"
                            + (f" (protocol {protocol!r})" if protocol else ""),
        identifier=identifier or str(uuid.uuid4()), session_start_time=start_time,
        experiment_description=f"regions {', '.join(sel.regions)} of {subject_name}; {sel.n_presentations} presentations",
        data_collection=("spike times drawn from the activity by a seeded Poisson process" if spikes else
                         "the activity of each unit, binned per trial (units column 'activity')"),
        notes=json.dumps(notes, default=str), keywords=["neurorecord", "in silico"],
        subject=Subject(subject_id=subject_name, description="an artificial neural network (PyTorch module)"), **extra)

    nwb.add_trial_column("stimulus_onset", "stimulus onset (s, session clock); spike times in a trial are relative to it")
    for name, (values, a) in sel.presentation_coords.items():
        nwb.add_trial_column(name, f"presentation coordinate {name!r}" + (f" in {a['units']}" if a.get("units") else ""))
    for p in range(sel.n_presentations):
        row = {name: _cell(values[p]) for name, (values, _) in sel.presentation_coords.items()}
        nwb.add_trial(start_time=float(starts[p]), stop_time=float(starts[p] + duration), stimulus_onset=float(onsets[p]), **row)

    device = nwb.create_device(name="neurorecord", description="in-silico recording of a network's module outputs")
    first = sel.neuroid_coords[sel.regions[0]]
    columns: dict[str, list] = {name: [] for name in first}
    groups, times, counts, activity = [], [], [], []
    trains = _spikes_by_region(sel, gain, refractory, seed) if spikes else {}
    for r in sel.regions:
        group = nwb.create_electrode_group(name=r, description=f"region {r!r}: the output of module {r!r}",
                                           location=r, device=device)
        coords = sel.neuroid_coords[r]
        if list(coords) != list(first):
            raise InteropError(f"regions: region {r!r} has other neuroid coordinates than {sel.regions[0]!r}; write them separately")
        n_units = len(coords["neuroid_id"])
        for name, values in coords.items():
            columns[name].append(values)
        groups += [group] * n_units
        for u in range(n_units):
            if spikes:
                unit_times = [onsets[p] + trains[r][p * n_units + u] / 1000.0 for p in range(sel.n_presentations)]
                times += unit_times
                counts.append(sum(map(len, unit_times)))
        activity.append(sel.activity[r].transpose(1, 0, 2))
    n = sum(len(v) for v in columns["neuroid_id"])
    # whole columns at once: hdmf converts list rows (add_unit) element by element, which is slow
    intervals = np.stack([starts, starts + duration], axis=1)
    cols = [VectorData(name=name, description=f"neuroid coordinate {name!r}", data=np.concatenate(parts))
            for name, parts in columns.items()]
    cols += _ragged("obs_intervals", "the trials: when each unit was observed (s)", np.tile(intervals, (n, 1)),
                    np.arange(1, n + 1) * sel.n_presentations)
    cols.append(VectorData(name="electrode_group", description="the region's electrode group", data=groups))
    if spikes:
        cols += _ragged("spike_times", "spike times (s, session clock)", np.concatenate(times) if times else np.zeros(0),
                        np.cumsum(counts, dtype=np.int64))
    else:
        cols += [VectorData(name="activity", data=np.concatenate(activity, axis=0),
                            description=f"activity ({sel.activity_units}) per trial and equal time bin of [start_time, stop_time)"),
                 VectorData(name="activity_units", description="units of the activity column", data=np.full(n, sel.activity_units))]
    table = Units(name="units", description="one row per neuroid (unit) of the recording", id=np.arange(n), columns=cols)
    nwb.units = table
    path.parent.mkdir(parents=True, exist_ok=True)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def from_nwb(path: str | os.PathLike[str], bin_size: float | None = None, window: tuple[float, float] | None = None, *,
             align_to: str | None = None, stimulus_key: str = "stimulus_id", region: str = "unknown") -> xr.Dataset:
    """Read the units and trials of an NWB file into the recording layout.

    Parameters
    ----------
    path : str or path-like
        An NWB (HDF5) file with a ``trials`` table and a ``units`` table.
    bin_size : float, optional
        Bin width (ms). Given: spike counts per bin, ``presentation x neuroid x time_bin``.
        Default: the spike count in ``window``, ``presentation x neuroid``.
    window : (float, float), optional
        ``[start, stop)`` in ms relative to each trial's ``align_to`` time; with ``bin_size``
        a whole number of bins. Default: the trials' own span ``[start_time, stop_time)``,
        which must then be the same for all of them (to a microsecond).
    align_to : str, optional
        The trials column (s) that is time 0 of each trial. Default: ``stimulus_onset`` when
        the table has it (files from :func:`to_nwb`), else ``start_time``.
    stimulus_key : str, default "stimulus_id"
        The trials column naming each trial's stimulus (becomes ``stimulus_id``).
    region : str, default "unknown"
        Region of units without a ``region`` column or electrode group.

    Returns
    -------
    xarray.Dataset
        ``activity`` (float32): spike counts (``units`` ``"spikes"`` or ``"spikes per bin"``);
        for a file whose units hold an ``activity`` column instead of spike times (written by
        :func:`to_nwb` with ``spikes=False``), that activity as stored, ``presentation x neuroid
        x time_bin``, bins as the column's description says. Coordinates: on ``presentation``
        every one-value trials column (``stimulus_id``, ``repetition`` counted if absent,
        ``start_time`` / ``stop_time`` in s, ...); on ``neuroid`` ``neuroid_id`` (the column, else
        ``region.<unit id>``), ``region`` (the column, else the electrode group's ``location``, else its name), ``channel``
        (the column, else the unit id) and every other one-value units column; on ``time_bin``
        ``time_bin_start`` / ``time_bin_end`` (ms after ``align_to``). ``attrs``: provenance, the
        file's ``identifier``, ``session_description`` and ``notes``, ``align_to``, the window.

    Raises
    ------
    InteropError
        No trials or units table, no ``stimulus_key`` or ``align_to`` column (the columns are
        named), trials of different spans without ``window``, a window that is not a whole
        number of bins, ``bin_size`` or ``window`` with binned activity.
    ImportError
        pynwb is not installed.

    Examples
    --------
    A static recording written without spikes comes back exactly, as one 100 ms bin per trial:

    >>> import tempfile, numpy as np, xarray as xr
    >>> x = xr.DataArray(np.array([[0.25, 2.0], [1.5, -1.0]], dtype=np.float32), dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b"]), "neuroid_id": ("neuroid", ["V1.0", "V1.1"])})
    >>> back = from_nwb(to_nwb(x, tempfile.mkdtemp() + "/x.nwb", spikes=False))
    >>> back["activity"].dims, back["activity"].values[:, :, 0].tolist(), back["time_bin_end"].values.tolist()
    (('presentation', 'neuroid', 'time_bin'), [[0.25, 2.0], [1.5, -1.0]], [100.0])
    """
    pynwb = _pynwb("from_nwb")
    bin_size = check_scalar("bin_size", bin_size, float, low=0, closed="neither", none_ok=True, error=InteropError)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        for name in ("trials", "units"):
            if getattr(nwb, name) is None:
                raise InteropError(f"path: {path} has no {name} table; from_nwb needs trials and units")
        trials, table = nwb.trials, nwb.units
        columns = {c: _column(trials[c].data[:]) for c in trials.colnames if _plain_column(trials[c])}
        if align_to is None:
            align_to = "stimulus_onset" if "stimulus_onset" in columns else "start_time"
        for arg, name in (("align_to", align_to), ("stimulus_key", stimulus_key)):
            if name not in columns:
                raise InteropError(f"{arg}: the trials table has no column {name!r}; columns: {', '.join(map(repr, columns))}")
        align = np.asarray(columns[align_to], dtype=np.float64)
        span = (np.asarray(columns["start_time"]) - align, np.asarray(columns["stop_time"]) - align)
        ids, neuroid_coords = _unit_coords(table, region)
        binned = "activity" in table.colnames and "spike_times" not in table.colnames
        if binned:
            if bin_size is not None or window is not None:
                raise InteropError("bin_size, window: this file holds binned activity (units column 'activity'), not spike "
                                   "times; it is read as stored, without bin_size or window")
            values = np.asarray(table["activity"].data[:], dtype=np.float32).transpose(1, 0, 2)
            units_text = _column(table["activity_units"].data[:])[0] if "activity_units" in table.colnames else ""
            start, stop = _common_span(span)
            edges = np.linspace(start, stop, values.shape[2] + 1) * 1000.0
            activity_attrs = {"units": str(units_text), "long_name": "activity"}
        else:
            if "spike_times" not in table.colnames:
                raise InteropError(f"path: the units table of {path} has neither spike_times nor an 'activity' column; "
                                   f"columns: {', '.join(map(repr, table.colnames))}")
            if window is None:
                start, stop = _common_span(span)
                window = (start * 1000.0, stop * 1000.0)
            edges = _edges(window, bin_size)
            times, index = table.spike_times.data[:], table.spike_times_index.data[:]
            bounds = np.concatenate([[0], index])
            absolute = align[:, None] + edges[None, :] / 1000.0  # (trial, edge) in s
            values = np.empty((len(align), len(ids), len(edges) - 1), dtype=np.float32)
            for u in range(len(ids)):
                s = np.sort(np.asarray(times[bounds[u]:bounds[u + 1]], dtype=np.float64))
                values[:, u] = np.diff(np.searchsorted(s, absolute, side="left"), axis=1)
            activity_attrs = {"units": "spikes per bin" if bin_size is not None else "spikes",
                              "long_name": "spike count",
                              "description": f"spikes in [start, end) ms after the trial's {align_to}"}
        meta = {"nwb_identifier": str(nwb.identifier), "nwb_session_description": str(nwb.session_description),
                "nwb_notes": str(nwb.notes or "")}
    presentation = _presentation_coords(columns, stimulus_key)
    coords: dict[str, Any] = {k: ("presentation", v, a) for k, (v, a) in presentation.items()}
    coords.update({k: ("neuroid", v) for k, v in neuroid_coords.items()})
    dims: tuple[str, ...] = ("presentation", "neuroid")
    if bin_size is not None or binned:
        dims += ("time_bin",)
        coords.update(time_bin=("time_bin", np.arange(len(edges) - 1)),
                      time_bin_start=("time_bin", edges[:-1], {"units": "ms", "long_name": f"bin start after {align_to}"}),
                      time_bin_end=("time_bin", edges[1:], {"units": "ms", "long_name": f"bin end after {align_to}"}))
    else:
        values = values[:, :, 0]
    attrs = {**_provenance("neurorecord.interop.from_nwb", ("pynwb", "hdmf", "numpy", "xarray")), **meta,
             "source_file": str(path), "align_to": align_to, "window_start_ms": float(edges[0]),
             "window_stop_ms": float(edges[-1])}
    if bin_size is not None:
        attrs["bin_width_ms"] = bin_size
    return xr.Dataset({"activity": (dims, values, activity_attrs)}, coords=coords, attrs=attrs)


def _ragged(name: str, description: str, data: np.ndarray, ends: np.ndarray) -> list:
    """A ragged column (one variable-length run of ``data`` per row, ending at ``ends``) and its index."""
    from hdmf.common import VectorData, VectorIndex

    column = VectorData(name=name, description=description, data=data)
    return [column, VectorIndex(name=f"{name}_index", data=np.asarray(ends, dtype=np.int64), target=column)]


def _edges(window: Any, bin_size: float | None) -> np.ndarray:
    try:
        start, stop = (float(w) for w in window)
    except (TypeError, ValueError):
        raise InteropError(f"window: expected (start_ms, stop_ms), found {window!r}") from None
    if not stop > start:
        raise InteropError(f"window: stop must be greater than start, found {window!r}")
    if bin_size is None:
        return np.array([start, stop])
    n = int(round((stop - start) / bin_size))
    if n < 1 or abs(n * bin_size - (stop - start)) > 1e-6 * bin_size:
        raise InteropError(f"window, bin_size: [{start:g}, {stop:g}) ms is not a whole number of {bin_size:g} ms bins")
    return start + bin_size * np.arange(n + 1)


def _common_span(span: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """The trials' one span (s, relative to alignment), to a microsecond."""
    for what, values in zip(("start", "stop"), span):
        if len(values) and np.ptp(values) > 1e-6:
            raise InteropError(f"window: the trials' {what} times relative to alignment differ (from {values.min():g} to "
                               f"{values.max():g} s); pass window=(start_ms, stop_ms)")
    return float(np.round(span[0][0], 9)), float(np.round(span[1][0], 9))


def _presentation_coords(columns: dict[str, np.ndarray], stimulus_key: str) -> dict[str, tuple[np.ndarray, dict]]:
    out = {"stimulus_id": (np.asarray(columns[stimulus_key]).astype(str).astype(object), {})}
    if "repetition" not in columns:
        seen: dict[str, int] = {}
        rep = np.empty(len(out["stimulus_id"][0]), dtype=np.int64)
        for p, sid in enumerate(out["stimulus_id"][0]):
            rep[p] = seen.get(sid, 0)
            seen[sid] = rep[p] + 1
        out["repetition"] = (rep, {})
    for name, values in columns.items():
        if name in (stimulus_key, "stimulus_id", "id", "tags", "timeseries") or np.asarray(values).ndim != 1:
            continue
        unit = {"units": "s"} if name in ("start_time", "stop_time", "stimulus_onset") else {}
        out[name] = (np.asarray(values), unit)
    return out


def _unit_coords(table: Any, region: str) -> tuple[list[str], dict[str, np.ndarray]]:
    unit_ids = np.asarray(table.id.data[:])
    n = len(unit_ids)
    if "region" in table.colnames:
        regions = _column(table["region"].data[:]).astype(str)
    elif "electrode_group" in table.colnames:
        regions = np.array([g.location or g.name for g in table["electrode_group"].data[:]])
    else:
        regions = np.full(n, region)
    channel = np.asarray(table["channel"].data[:]) if "channel" in table.colnames else unit_ids
    if "neuroid_id" in table.colnames:
        ids = _column(table["neuroid_id"].data[:]).astype(str)
    else:
        ids = np.array([f"{r}.{i}" for r, i in zip(regions, unit_ids)])
    coords = {"neuroid_id": ids.astype(object), "region": regions.astype(object), "channel": channel}
    for name in table.colnames:
        if name in coords or name in _UNIT_SKIP or not _plain_column(table[name]):
            continue
        values = _column(table[name].data[:])
        if values.ndim == 1 and values.dtype.kind in "biufUO":
            coords[name] = values
    return [str(i) for i in ids], coords


def _plain_column(column: Any) -> bool:
    """One value per row: a ``VectorData`` itself, not a ragged (indexed) or reference column."""
    from hdmf.common import VectorData

    return type(column) is VectorData


def _column(values: Any) -> np.ndarray:
    """A table column as numpy: bytes decoded to str (object arrays of text)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S" or (arr.dtype == object and arr.size and isinstance(arr.flat[0], bytes)):
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    return arr


def _cell(value: Any) -> Any:
    """A coordinate value as HDF5 takes it: Python scalars, text as str."""
    if isinstance(value, np.generic):
        value = value.item()
    return str(value) if isinstance(value, (np.str_, bytes)) else value
