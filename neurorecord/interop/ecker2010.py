"""Reader for the macaque V1 drifting-grating recording of Ecker et al. (2010).

The data file ``data_v1_binned_moving.mat`` (A. S. Tolias, A. S. Ecker, P. Berens, M. Bethge;
Ecker et al., Science 327:584, 2010) holds 27 sessions of single units recorded with tetrodes in
V1 of two macaques (``H`` and ``D``) while full-contrast gratings drifted in 16 directions.
Spike counts are binned at 10 ms from 200 ms before to 700 ms after stimulus onset.

The file is licensed CC BY-NC-ND 3.0 (attribution, non-commercial, no derivatives): it is read
where it lies and never copied; :func:`read_ecker2010` keeps its name and SHA-256 in ``attrs``.

Layout
------
Units of different sessions were not recorded together and saw different numbers of
repetitions, so each session is its own node (``session00`` .. ``session26``), as each region is
in a model recording. In each node ``activity`` is (presentation, neuroid, time_bin), float32
spike counts per 10 ms bin:

- ``presentation``: one per trial, condition-major (every repetition of condition 0, then of
  condition 1, ...), because the file does not keep the order trials were shown in. Coordinates
  ``stimulus_id`` (``"grating-dir157.5-c100"``), ``direction`` (deg), ``contrast`` (%),
  ``condition`` (index in the session's condition list) and ``repetition``;
- ``neuroid``: one per single unit. ``neuroid_id`` (``"V1.s03.u12"``: session 3, unit 12, unique
  across sessions), ``region`` (``"V1"``), ``channel`` (unit index in the session), ``session``,
  ``subject``, ``tetrode``, ``contamination``;
- ``time_bin``: index ``time_bin`` (0..89), ``time_bin_start`` and ``time_bin_end`` (ms after
  stimulus onset).

Two facts of the file that matter for analyses:

- the 13 sessions of monkey ``D`` (``session14`` .. ``session26``) store directions as whole
  degrees (0, 22, 45, 67, 90, 112, 135, 158, 180, 202, 225, 247, 270, 292, 314, 336), monkey ``H``
  as multiples of 22.5. ``direction`` keeps the file's value; ``condition`` is the same direction
  order in every session. Orientation as ``direction % 180`` does not pair 135/314 or 158/336 in
  the ``D`` sessions; ``condition % 8`` does;
- ``session25`` has 9 trial slots (repetition 0 of 9 conditions) in which no unit fired a single
  spike in 900 ms, while its other trials hold 45 to 117 spikes: missing trials stored as zeros,
  not silence. They are dropped by default (see ``empty_trials``);
- 8 units never fire in the whole file (``V1.s07.u12``, ``V1.s09.u10``, ``V1.s13.u05``,
  ``V1.s15.u12``, ``V1.s23.u12``, ``V1.s24.u01``, ``V1.s24.u08``, ``V1.s24.u15``); they are kept,
  as recorded, and a tuning test on them has nothing to test.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..record.store import index_labels
from . import InteropError, _provenance

__all__ = ["ENV_VAR", "CITATION", "LICENCE", "ecker2010_path", "read_ecker2010", "response_window"]

#: Environment variable naming the data file; :func:`ecker2010_path` reads it.
ENV_VAR = "NEURORECORD_ECKER2010"

CITATION = (
    "Ecker AS, Berens P, Keliris GA, Bethge M, Logothetis NK, Tolias AS (2010). Decorrelated neuronal "
    "firing in cortical microcircuits. Science 327:584-587"
)
LICENCE = "CC BY-NC-ND 3.0"
LICENCE_URL = "https://creativecommons.org/licenses/by-nc-nd/3.0/"

_SESSION_FIELDS = ("date", "subject", "conditions", "contamination", "tetrode", "spikes", "times")
_CONDITION_FIELDS = ("direction", "contrast")
_EMPTY_TRIALS = ("drop", "keep")


def ecker2010_path() -> Path | None:
    """Where the data file is, from the environment variable ``NEURORECORD_ECKER2010``.

    Returns
    -------
    pathlib.Path or None
        The path the variable names (whether or not a file is there; :func:`read_ecker2010`
        says so clearly), or None when the variable is unset or empty.

    Examples
    --------
    >>> import os
    >>> os.environ["NEURORECORD_ECKER2010"] = "/data/data_v1_binned_moving.mat"
    >>> ecker2010_path()
    PosixPath('/data/data_v1_binned_moving.mat')
    >>> del os.environ["NEURORECORD_ECKER2010"]
    >>> ecker2010_path() is None
    True
    """
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def read_ecker2010(path: str | os.PathLike[str] | None = None, sessions: Sequence[int] | None = None,
                   empty_trials: str = "drop") -> xr.DataTree:
    """Read the Ecker et al. (2010) V1 drifting-grating recording as an ``xarray.DataTree``.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The file ``data_v1_binned_moving.mat`` (MATLAB v5). Default: :func:`ecker2010_path`,
        the environment variable ``NEURORECORD_ECKER2010``.
    sessions : sequence of int, optional
        Indices (0-based, file order) of the sessions to convert. Default: all.
    empty_trials : {"drop", "keep"}, default "drop"
        A trial slot in which no unit of the session fired a single spike in the whole 900 ms is
        a missing trial stored as zeros (only ``session25`` has them; see the module notes).
        ``"drop"`` leaves it out of ``presentation`` (its ``(condition, repetition)`` pair is
        listed in the node's ``attrs["empty_trials_dropped"]``); ``"keep"`` keeps every slot.

    Returns
    -------
    xarray.DataTree
        One child per session, ``session00`` .. ``session26`` (names keep the file's index when
        ``sessions`` selects some). Each holds ``activity`` (presentation x neuroid x time_bin,
        float32 spike counts, ``attrs["units"] == "spikes per bin"``, 10 ms bins) with the
        coordinates described in :mod:`neurorecord.interop.ecker2010`, and ``attrs`` ``session``,
        ``subject`` (monkey ``"H"`` or ``"D"``), ``date``, ``bin_width_ms``, ``n_repetitions``,
        ``empty_trials_dropped``, ``source_file``, ``source_sha256``, ``citation``, ``licence``.
        The root's ``attrs`` hold the conversion's provenance (converter, package versions,
        source path and SHA-256, creation time) and ``sessions``, the child names in order.
        ``stimulus_id`` and ``neuroid_id`` are indexed, as in :func:`neurorecord.open_recording`.

    Raises
    ------
    InteropError
        No path given and ``NEURORECORD_ECKER2010`` unset; the file does not exist or is not a
        MATLAB file; it has no ``data`` variable, a session lacks a field, or a field's shape
        disagrees with ``spikes`` (the message names the file, session and field); ``sessions``
        or ``empty_trials`` is not valid.

    Examples
    --------
    A tiny file with the same structure (two sessions, two directions):

    >>> import numpy as np, scipy.io, tempfile
    >>> def session(n_units, n_reps):
    ...     return {"date": "2008-08-09", "subject": "H", "times": np.arange(-195, 700, 10),
    ...             "conditions": np.array([{"direction": 0, "contrast": 100},
    ...                                     {"direction": 22.5, "contrast": 100}]),
    ...             "spikes": np.ones((n_units, 2, 90, n_reps), np.uint8),
    ...             "tetrode": np.arange(n_units) + 1, "contamination": np.zeros(n_units)}
    >>> path = tempfile.mkdtemp() + "/tiny.mat"
    >>> scipy.io.savemat(path, {"data": np.array([session(3, 4), session(2, 5)], dtype=object)})
    >>> tree = read_ecker2010(path)
    >>> sorted(tree.children)
    ['session00', 'session01']
    >>> act = tree["session01"]["activity"]
    >>> act.dims, act.shape, act.attrs["units"]
    (('presentation', 'neuroid', 'time_bin'), (10, 2, 90), 'spikes per bin')
    >>> list(act["stimulus_id"].values[4:6]), list(act["neuroid_id"].values)
    (['grating-dir0-c100', 'grating-dir22.5-c100'], ['V1.s01.u00', 'V1.s01.u01'])
    >>> float(act["time_bin_start"][0]), float(act["time_bin_end"][-1])
    (-200.0, 700.0)
    """
    if empty_trials not in _EMPTY_TRIALS:
        raise InteropError(f"empty_trials: expected one of {', '.join(map(repr, _EMPTY_TRIALS))}, found {empty_trials!r}")
    if path is None:
        path = ecker2010_path()
        if path is None:
            raise InteropError(
                f"no path given and {ENV_VAR} is not set; pass the path of data_v1_binned_moving.mat "
                f"or set {ENV_VAR} to it"
            )
    path = Path(path)
    raw = _load(path)
    chosen = _choose_sessions(path, len(raw), sessions)
    digest = _sha256(path)
    source = {
        "source_file": path.name,
        "source_sha256": digest,
        "citation": CITATION,
        "licence": LICENCE,
        "licence_url": LICENCE_URL,
    }
    nodes = {}
    for index in chosen:
        nodes[f"session{index:02d}"] = _session_dataset(path, index, raw[index], source, empty_trials)
    root = xr.Dataset(attrs={
        **_provenance("neurorecord.interop.read_ecker2010", ("numpy", "scipy", "xarray")),
        "source": "Ecker et al. (2010) macaque V1 drifting gratings, binned spike counts",
        "source_path": str(path.resolve()),
        **source,
        "empty_trials": empty_trials,
        "sessions": list(nodes),
    })
    return xr.DataTree.from_dict({"/": root, **nodes})


def response_window(activity: xr.DataArray, start_ms: float = 50.0, stop_ms: float = 550.0,
                    rate: bool = False) -> xr.DataArray:
    """Spike count (or mean rate) of each presentation and neuroid in a window after onset.

    Parameters
    ----------
    activity : xarray.DataArray
        Binned spike counts with dims ``presentation``, ``neuroid`` and ``time_bin`` and the
        coordinates ``time_bin_start`` and ``time_bin_end`` (ms relative to stimulus onset), as
        :func:`read_ecker2010` and :func:`neurorecord.interop.from_neo` give. Dask-backed input
        stays lazy.
    start_ms, stop_ms : float, default 50.0 and 550.0
        The window ``[start_ms, stop_ms)`` in ms after stimulus onset. Both must be bin edges, so
        the window is a whole number of bins and the result is exact; the default is the
        500 ms stimulus shifted by the ~50 ms response latency of V1.
    rate : bool, default False
        False: the spike count in the window (sum over its bins, unit ``"spikes"``). True: that
        count divided by the window's duration in seconds (unit ``"spikes/s"``).

    Returns
    -------
    xarray.DataArray
        float64, dims (presentation, neuroid), every presentation and neuroid coordinate kept;
        ``attrs``: ``units``, ``long_name``, ``window_start_ms``, ``window_stop_ms``,
        ``n_time_bins``.

    Raises
    ------
    InteropError
        ``activity`` is not a DataArray with those dims and coordinates, its time-bin unit is
        not ms, the window is empty, or a window end is not a bin edge (the nearest edges are
        named).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> edges = np.arange(-20.0, 40.0, 10.0)
    >>> counts = xr.DataArray(np.array([[[1, 0, 2, 1, 3]], [[0, 0, 1, 1, 0]]], dtype=np.float32),
    ...     dims=("presentation", "neuroid", "time_bin"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b"]), "neuroid_id": ("neuroid", ["V1.0"]),
    ...             "time_bin_start": ("time_bin", edges[:-1]), "time_bin_end": ("time_bin", edges[1:])})
    >>> response_window(counts, 0, 30).values.ravel().tolist()
    [6.0, 2.0]
    >>> r = response_window(counts, 0, 20, rate=True)
    >>> r.values.ravel().tolist(), r.attrs["units"]
    ([150.0, 100.0], 'spikes/s')
    """
    if not isinstance(activity, xr.DataArray):
        raise InteropError(f"activity: expected an xarray.DataArray (presentation x neuroid x time_bin), found {type(activity).__name__}")
    if set(activity.dims) != {"presentation", "neuroid", "time_bin"}:
        raise InteropError(f"activity: expected dims ('presentation', 'neuroid', 'time_bin'), found {activity.dims}")
    for name in ("time_bin_start", "time_bin_end"):
        coord = activity.coords.get(name)
        if coord is None or coord.dims != ("time_bin",):
            raise InteropError(f"activity: needs the coordinate {name!r} on 'time_bin' (ms after stimulus onset); it has none")
        unit = coord.attrs.get("units", "ms")
        if unit != "ms":
            raise InteropError(f"activity: coordinate {name!r} is in {unit!r}; response_window expects 'ms'")
    starts = np.asarray(activity["time_bin_start"].values, dtype=np.float64)
    ends = np.asarray(activity["time_bin_end"].values, dtype=np.float64)
    if not stop_ms > start_ms:
        raise InteropError(f"stop_ms: must be greater than start_ms={start_ms}, found {stop_ms}")
    edges = np.union1d(starts, ends)
    for name, value in (("start_ms", start_ms), ("stop_ms", stop_ms)):
        if not np.any(edges == value):
            below, above = edges[edges < value], edges[edges > value]
            near = ", ".join(f"{e:g}" for e in (below[-1:].tolist() + above[:1].tolist()))
            raise InteropError(
                f"{name}: {value:g} ms is not a time-bin edge (nearest: {near or 'none'}); "
                f"the bins span {edges[0]:g} to {edges[-1]:g} ms"
            )
    inside = np.flatnonzero((starts >= start_ms) & (ends <= stop_ms))
    covered = float(np.sum(ends[inside] - starts[inside]))
    if not np.isclose(covered, stop_ms - start_ms, rtol=0, atol=1e-9):
        raise InteropError(f"start_ms, stop_ms: the bins in [{start_ms:g}, {stop_ms:g}) ms cover {covered:g} ms, not the whole window")
    window = activity.isel(time_bin=inside).astype(np.float64).sum("time_bin")
    unit = "spikes"
    if rate:
        window = window / ((stop_ms - start_ms) / 1000.0)
        unit = "spikes/s"
    window = window.transpose("presentation", "neuroid")
    window.attrs = {
        "units": unit,
        "long_name": ("mean firing rate" if rate else "spike count") + f" in [{start_ms:g}, {stop_ms:g}) ms after onset",
        "window_start_ms": float(start_ms),
        "window_stop_ms": float(stop_ms),
        "n_time_bins": int(len(inside)),
    }
    window.name = "rate" if rate else "spike_count"
    return window


# --------------------------------------------------------------------------------------------
# reading the file


def _load(path: Path) -> np.ndarray:
    """The sessions of the file as a flat object array of ``mat_struct``.

    Read without ``squeeze_me`` so a session with one unit or one repetition keeps its axes;
    sessions are in MATLAB (column-major) order.
    """
    import scipy.io

    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise InteropError(
            f"{path}: {what}; expected the Ecker et al. (2010) file data_v1_binned_moving.mat "
            f"(give its path, or set {ENV_VAR})"
        )
    try:
        mat = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
    except Exception as exc:  # scipy raises ValueError, MatReadError, TypeError, ... for non-MAT input
        raise InteropError(f"{path}: not a readable MATLAB v5 file ({type(exc).__name__}: {exc})") from None
    if "data" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise InteropError(f"{path}: no variable 'data' (the array of session structs); variables found: {', '.join(found) or 'none'}")
    return _structs(mat["data"], f"{path}: variable 'data'")


def _structs(value: object, where: str) -> np.ndarray:
    """A struct array or cell array of structs, flattened to a 1-D object array of structs."""
    items = np.asarray(value, dtype=object).ravel(order="F") if isinstance(value, np.ndarray) else np.array([value], dtype=object)
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:  # a cell holding a struct
            item = item.ravel()[0]
        if not hasattr(item, "_fieldnames"):
            raise InteropError(f"{where}: element {i} is not a MATLAB struct (found {type(item).__name__})")
        out[i] = item
    return out


def _choose_sessions(path: Path, n_sessions: int, sessions: Sequence[int] | None) -> list[int]:
    if sessions is None:
        return list(range(n_sessions))
    chosen = []
    for s in sessions:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < n_sessions:
            raise InteropError(f"sessions: expected indices 0..{n_sessions - 1} (the sessions of {path.name}), found {s!r}")
        chosen.append(int(s))
    if len(set(chosen)) != len(chosen):
        raise InteropError(f"sessions: each session may be given once, found {list(sessions)}")
    return chosen


def _field(path: Path, struct: object, name: str, fields: tuple[str, ...], what: str) -> object:
    if name not in struct._fieldnames:
        raise InteropError(
            f"{path}: {what} has no field {name!r}; expected fields {', '.join(fields)}; "
            f"found {', '.join(struct._fieldnames) or 'none'}"
        )
    return getattr(struct, name)


def _text(value: object) -> str:
    array = np.asarray(value)
    return "".join(str(v) for v in array.ravel()) if array.size else ""


def _number(path: Path, value: object, where: str) -> float:
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise InteropError(f"{path}: {where}: expected one number, found {array.dtype} of shape {array.shape}")
    return float(array.ravel()[0])


def _session_dataset(path: Path, index: int, struct: object, source: dict[str, str], empty_trials: str) -> xr.Dataset:
    """One session's node: checks every field against ``spikes``, then builds the Dataset."""
    where = f"session {index} (data[{index}])"
    get = {name: _field(path, struct, name, _SESSION_FIELDS, where) for name in _SESSION_FIELDS}

    spikes = np.asarray(get["spikes"])
    if spikes.dtype.kind not in "biuf" or not 2 <= spikes.ndim <= 4:
        raise InteropError(
            f"{path}: {where} field 'spikes': expected counts of shape units x conditions x time bins x repetitions, "
            f"found {spikes.dtype} of shape {spikes.shape}"
        )
    spikes = spikes.reshape(spikes.shape + (1,) * (4 - spikes.ndim))  # MATLAB drops trailing singleton axes
    n_units, n_cond, n_bins, n_reps = spikes.shape
    if spikes.dtype.kind == "f" and not (np.all(np.isfinite(spikes)) and np.all(spikes == np.round(spikes))):
        raise InteropError(f"{path}: {where} field 'spikes': expected whole spike counts, found non-integer values")

    conditions = _structs(get["conditions"], f"{path}: {where} field 'conditions'")
    if len(conditions) != n_cond:
        raise InteropError(f"{path}: {where} field 'conditions': {len(conditions)} conditions, but 'spikes' has {n_cond} (axis 2)")
    direction = np.empty(n_cond)
    contrast = np.empty(n_cond)
    for c, cond in enumerate(conditions):
        what = f"{where} conditions[{c}]"
        direction[c] = _number(path, _field(path, cond, "direction", _CONDITION_FIELDS, what), f"{what}.direction")
        contrast[c] = _number(path, _field(path, cond, "contrast", _CONDITION_FIELDS, what), f"{what}.contrast")

    times = np.asarray(get["times"], dtype=np.float64).ravel()
    if len(times) != n_bins:
        raise InteropError(f"{path}: {where} field 'times': {len(times)} bin centres, but 'spikes' has {n_bins} time bins (axis 3)")
    steps = np.diff(times)
    if n_bins < 2 or not np.all(steps == steps[0]) or steps[0] <= 0:
        raise InteropError(f"{path}: {where} field 'times': expected evenly spaced, increasing bin centres (ms), found {times[:4]}...")
    width = float(steps[0])

    per_unit = {}
    for name in ("tetrode", "contamination"):
        values = np.asarray(get[name]).ravel()
        if len(values) != n_units or values.dtype.kind not in "biuf":
            raise InteropError(
                f"{path}: {where} field {name!r}: expected one number per unit ({n_units}), "
                f"found {values.dtype} of shape {np.shape(get[name])}"
            )
        per_unit[name] = values
    subject, date = _text(get["subject"]), _text(get["date"])

    # presentation = (condition, repetition), condition-major; activity (presentation, neuroid, time_bin)
    counts = spikes.transpose(1, 3, 0, 2).reshape(n_cond * n_reps, n_units, n_bins)
    cond_of = np.repeat(np.arange(n_cond, dtype=np.int64), n_reps)
    rep_of = np.tile(np.arange(n_reps, dtype=np.int64), n_cond)
    empty = counts.reshape(len(counts), -1).max(axis=1) == 0 if counts.size else np.zeros(len(counts), bool)
    keep = ~empty if empty_trials == "drop" else np.ones(len(counts), bool)
    dropped = [[int(c), int(r)] for c, r in zip(cond_of[~keep], rep_of[~keep])]
    counts, cond_of, rep_of = counts[keep], cond_of[keep], rep_of[keep]

    stimulus_ids = np.array([f"grating-dir{d:g}-c{k:g}" for d, k in zip(direction, contrast)], dtype=object)
    channel = np.arange(n_units, dtype=np.int64)
    coords = {
        "stimulus_id": ("presentation", stimulus_ids[cond_of]),
        "direction": ("presentation", direction[cond_of], {"units": "deg", "long_name": "drift direction"}),
        "contrast": ("presentation", contrast[cond_of], {"units": "%", "long_name": "grating contrast"}),
        "condition": ("presentation", cond_of, {"long_name": "index of the condition in the session's list"}),
        "repetition": ("presentation", rep_of),
        "neuroid_id": ("neuroid", np.array([f"V1.s{index:02d}.u{u:02d}" for u in channel], dtype=object)),
        "region": ("neuroid", np.full(n_units, "V1", dtype=object)),
        "channel": ("neuroid", channel, {"long_name": "unit index in the session"}),
        "session": ("neuroid", np.full(n_units, index, dtype=np.int64)),
        "subject": ("neuroid", np.full(n_units, subject, dtype=object)),
        "tetrode": ("neuroid", per_unit["tetrode"].astype(np.int64)),
        "contamination": ("neuroid", per_unit["contamination"].astype(np.float64),
                          {"long_name": "spike-sorting contamination estimate of the unit (the file's 'contamination')"}),
        "time_bin": ("time_bin", np.arange(n_bins, dtype=np.int64)),
        "time_bin_start": ("time_bin", times - width / 2, {"units": "ms", "long_name": "bin start after stimulus onset"}),
        "time_bin_end": ("time_bin", times + width / 2, {"units": "ms", "long_name": "bin end after stimulus onset"}),
    }
    activity = xr.Variable(
        ("presentation", "neuroid", "time_bin"),
        counts.astype(np.float32),
        attrs={
            "units": "spikes per bin",
            "long_name": "spike count",
            "bin_width_ms": width,
            "description": f"spikes of each single unit in {width:g} ms bins; stimulus onset at 0 ms",
        },
    )
    ds = xr.Dataset({"activity": activity}, coords=coords, attrs={
        "session": index,
        "region": "V1",
        "subject": subject,
        "species": "macaque",
        "date": date,
        "bin_width_ms": width,
        "stimulus_onset_ms": 0.0,
        "stimulus": "drifting gratings shown for about 500 ms from onset",
        "n_units": n_units,
        "n_conditions": n_cond,
        "n_repetitions": n_reps,
        "n_presentations": int(len(counts)),
        "empty_trials_dropped": dropped,
        **source,
    })
    return index_labels(ds)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
