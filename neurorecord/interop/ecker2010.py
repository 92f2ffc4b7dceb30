"""Reader for the macaque V1 grating recordings of Ecker et al. (2010), drifting or static.

The data file ``data_v1_binned_moving.mat`` (A. S. Tolias, A. S. Ecker, P. Berens, M. Bethge;
Ecker et al., Science 327:584, 2010) holds 27 sessions of single units recorded with tetrodes in
V1 of two macaques (``H`` and ``D``) while full-contrast gratings drifted in 16 directions.
Spike counts are binned at 10 ms from 200 ms before to 700 ms after stimulus onset. The
static-grating file of the same dataset (``data_v1_binned_static.mat``) has the same layout,
with conditions that give ``orientation`` instead of ``direction``; the reader takes either.

The files are licensed CC BY-NC-ND 3.0 (attribution, non-commercial, no derivatives): they are
read where they lie and never copied; :func:`read_ecker2010` keeps the name and SHA-256 in ``attrs``.

Layout
------
Units of different sessions were not recorded together and saw different numbers of
repetitions, so each session is its own node (``session00`` .. ``session26``), as each region is
in a model recording. In each node ``activity`` is (presentation, neuroid, time_bin), float32
spike counts per bin (10 ms in the moving file):

- ``presentation``: one per trial, condition-major (every repetition of condition 0, then of
  condition 1, ...), because the file does not keep the order trials were shown in. Coordinates
  ``stimulus_id`` (``"grating-dir157.5-c100"``, or ``"grating-ori22.5-c100"`` for static
  gratings), the angle: ``direction`` (deg, period 360) or ``orientation`` (deg, period 180),
  whose coordinate ``attrs`` hold ``units`` and ``period`` and which the node's ``attrs``
  ``angle`` and ``angle_period_deg`` name, ``contrast`` (%), ``condition`` (index in the
  session's condition list) and ``repetition``;
- ``neuroid``: one per single unit. ``neuroid_id`` (``"V1.s03.u12"``: session 3, unit 12, unique
  across sessions), ``region`` (``"V1"``), ``channel`` (unit index in the session), ``session``,
  ``subject``, ``tetrode``, ``contamination``;
- ``time_bin``: index ``time_bin`` (0..89), ``time_bin_start`` and ``time_bin_end`` (ms after
  stimulus onset).

Facts of the moving file that matter for analyses:

- the 13 sessions of monkey ``D`` (``session14`` .. ``session26``) store directions as whole
  degrees (0, 22, 45, 67, 90, 112, 135, 158, 180, 202, 225, 247, 270, 292, 314, 336), monkey ``H``
  as multiples of 22.5. By default ``direction`` keeps the file's value; ``condition`` is the
  same direction order in every session. Orientation as ``direction % 180`` does not pair
  135/314 or 158/336 in the ``D`` sessions; ``condition % 8`` does. ``snap_angles=True`` moves
  each angle to the nearest point of the session's regular grid (period / number of distinct
  angles: 22.5 deg here), so 22 becomes 22.5 and 336 becomes 337.5, and lists the moves in the
  node's ``attrs["angles_snapped"]``; it is never done unless asked;
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

from .._validation import check_choice
from ..store import index_labels
from . import InteropError, _provenance
from .window import response_window  # noqa: F401  (its home until it moved to .window; kept importable here)

__all__ = ["ENV_VAR", "CITATION", "LICENCE", "ecker2010_path", "read_ecker2010"]

#: Environment variable naming the data file; :func:`ecker2010_path` reads it.
ENV_VAR = "NEURORECORD_ECKER2010"

CITATION = (
    "Ecker AS, Berens P, Keliris GA, Bethge M, Logothetis NK, Tolias AS (2010). Decorrelated neuronal "
    "firing in cortical microcircuits. Science 327:584-587"
)
LICENCE = "CC BY-NC-ND 3.0"
LICENCE_URL = "https://creativecommons.org/licenses/by-nc-nd/3.0/"

_SESSION_FIELDS = ("date", "subject", "conditions", "contamination", "tetrode", "spikes", "times")
#: The angle a condition gives: its period (deg), what it is, and the stimulus it implies.
_ANGLES = {
    "direction": (360.0, "drift direction", "drifting gratings shown for about 500 ms from onset"),
    "orientation": (180.0, "grating orientation", "static gratings"),
}
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
                   empty_trials: str = "drop", snap_angles: bool = False) -> xr.DataTree:
    """Read an Ecker et al. (2010) V1 grating recording (drifting or static) as an ``xarray.DataTree``.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The file ``data_v1_binned_moving.mat`` (drifting gratings, conditions with
        ``direction``) or ``data_v1_binned_static.mat`` (static gratings, conditions with
        ``orientation``), MATLAB v5. Default: :func:`ecker2010_path`, the environment
        variable ``NEURORECORD_ECKER2010``.
    sessions : sequence of int, optional
        Indices (0-based, file order) of the sessions to convert. Default: all.
    empty_trials : {"drop", "keep"}, default "drop"
        A trial slot in which no unit of the session fired a single spike in the whole 900 ms is
        a missing trial stored as zeros (only ``session25`` has them; see the module notes).
        ``"drop"`` leaves it out of ``presentation`` (its ``(condition, repetition)`` pair is
        listed in the node's ``attrs["empty_trials_dropped"]``); ``"keep"`` keeps every slot.
    snap_angles : bool, default False
        False: the angles (deg) are the file's values, whole degrees included (22, 67, ..., 336
        in some sessions). True: each angle moves to the nearest point of the session's regular
        grid, ``k * period / n`` for the ``n`` distinct angles of the session (22.5 deg for 16
        directions or 8 orientations), so 22 becomes 22.5 and 336 becomes 337.5; ``stimulus_id``
        follows. The moves are listed as ``[file value, grid value]`` pairs in the node's
        ``attrs["angles_snapped"]``; an angle more than a quarter step from the grid is an error.

    Returns
    -------
    xarray.DataTree
        One child per session, ``session00`` .. ``session26`` (names keep the file's index when
        ``sessions`` selects some). Each holds ``activity`` (presentation x neuroid x time_bin,
        float32 spike counts, ``attrs["units"] == "spikes per bin"``, 10 ms bins) with the
        coordinates described in :mod:`neurorecord.interop.ecker2010`, and ``attrs`` ``session``,
        ``subject`` (monkey ``"H"`` or ``"D"``), ``date``, ``bin_width_ms``, ``n_repetitions``,
        ``empty_trials_dropped``, ``angle`` (``"direction"`` or ``"orientation"``, the name of the
        angle coordinate), ``angle_period_deg`` (360 or 180), ``angles_snapped``,
        ``source_file``, ``source_sha256``, ``citation``, ``licence``. The root's ``attrs`` hold
        the conversion's provenance (converter, package versions, source path and SHA-256,
        creation time), ``angles`` (the angle names found), ``snap_angles`` and ``sessions``,
        the child names in order.
        ``stimulus_id`` and ``neuroid_id`` are indexed, as in :func:`neurorecord.open_recording`.

    Raises
    ------
    InteropError
        No path given and ``NEURORECORD_ECKER2010`` unset; the file does not exist or is not a
        MATLAB file; it has no ``data`` variable, a session lacks a field, or a field's shape
        disagrees with ``spikes`` (the message names the file, session and field); a condition
        gives both ``direction`` and ``orientation``, neither, or not the same one as the other
        conditions; ``sessions``, ``empty_trials`` or ``snap_angles`` is not valid, or an angle
        is too far from the regular grid to snap.

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

    Static gratings, four orientations stored as whole degrees, snapped to the 45 deg grid:

    >>> static = session(2, 3)
    >>> static["conditions"] = np.array([{"orientation": o, "contrast": 100} for o in (0, 45, 90, 134)])
    >>> static["spikes"] = np.ones((2, 4, 90, 3), np.uint8)
    >>> scipy.io.savemat(path, {"data": np.array([static], dtype=object)})
    >>> node = read_ecker2010(path, snap_angles=True)["session00"]
    >>> node.attrs["angle"], node.attrs["angle_period_deg"], node.attrs["angles_snapped"]
    ('orientation', 180.0, [[134.0, 135.0]])
    >>> sorted(set(node["orientation"].values.tolist())), node["stimulus_id"].values[-1]
    ([0.0, 45.0, 90.0, 135.0], 'grating-ori135-c100')
    """
    check_choice("empty_trials", empty_trials, _EMPTY_TRIALS, error=InteropError)
    if not isinstance(snap_angles, (bool, np.bool_)):
        raise InteropError(f"snap_angles: expected True or False, found {snap_angles!r}")
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
        nodes[f"session{index:02d}"] = _session_dataset(path, index, raw[index], source, empty_trials, bool(snap_angles))
    angles = sorted({ds.attrs["angle"] for ds in nodes.values()})
    gratings = " and ".join("drifting" if a == "direction" else "static" for a in angles)
    root = xr.Dataset(attrs={
        **_provenance("neurorecord.interop.read_ecker2010", ("numpy", "scipy", "xarray")),
        "source": f"Ecker et al. (2010) macaque V1 {gratings} gratings, binned spike counts",
        "source_path": str(path.resolve()),
        **source,
        "empty_trials": empty_trials,
        "angles": angles,
        "snap_angles": bool(snap_angles),
        "sessions": list(nodes),
    })
    return xr.DataTree.from_dict({"/": root, **nodes})


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


def _session_dataset(path: Path, index: int, struct: object, source: dict[str, str], empty_trials: str,
                     snap_angles: bool) -> xr.Dataset:
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
    kind, angle, contrast = _conditions(path, where, conditions)
    period, angle_name, stimulus = _ANGLES[kind]
    snapped: list[list[float]] = []
    if snap_angles:
        angle, snapped = _snap(path, index, kind, period, angle)

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

    prefix = "dir" if kind == "direction" else "ori"
    stimulus_ids = np.array([f"grating-{prefix}{a:g}-c{k:g}" for a, k in zip(angle, contrast)], dtype=object)
    channel = np.arange(n_units, dtype=np.int64)
    coords = {
        "stimulus_id": ("presentation", stimulus_ids[cond_of]),
        kind: ("presentation", angle[cond_of], {"units": "deg", "long_name": angle_name, "period": period}),
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
        "stimulus": stimulus,
        "angle": kind,
        "angle_period_deg": period,
        "angles_snapped": snapped,
        "n_units": n_units,
        "n_conditions": n_cond,
        "n_repetitions": n_reps,
        "n_presentations": int(len(counts)),
        "empty_trials_dropped": dropped,
        **source,
    })
    return index_labels(ds)


def _conditions(path: Path, where: str, conditions: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """The session's angle name (``"direction"`` or ``"orientation"``), angles (deg) and contrasts (%)."""
    if not len(conditions):
        raise InteropError(f"{path}: {where} field 'conditions' is empty; expected one struct per condition")
    kind = None
    angle = np.empty(len(conditions))
    contrast = np.empty(len(conditions))
    for c, cond in enumerate(conditions):
        what = f"{where} conditions[{c}]"
        has = [name for name in _ANGLES if name in cond._fieldnames]
        if len(has) > 1:
            raise InteropError(f"{path}: {what} has both 'direction' and 'orientation'; expected one (direction for "
                               "drifting gratings, orientation for static ones)")
        if not has:
            raise InteropError(f"{path}: {what} has no field 'direction' or 'orientation'; expected fields contrast and "
                               f"direction or orientation; found {', '.join(cond._fieldnames) or 'none'}")
        if kind is None:
            kind = has[0]
        elif has[0] != kind:
            raise InteropError(f"{path}: {what} has {has[0]!r}, but conditions[0] has {kind!r}; the conditions of a "
                               "session must all give the same angle")
        angle[c] = _number(path, getattr(cond, kind), f"{what}.{kind}")
        contrast[c] = _number(path, _field(path, cond, "contrast", ("contrast", kind), what), f"{what}.contrast")
    return kind, angle, contrast


def _snap(path: Path, index: int, kind: str, period: float, angle: np.ndarray) -> tuple[np.ndarray, list[list[float]]]:
    """Angles moved to the nearest point of the regular grid ``k * period / n`` (``n`` distinct
    angles), and the ``[file value, grid value]`` pairs that moved."""
    distinct = np.unique(np.mod(angle, period))
    step = period / len(distinct)
    k = np.round(angle / step)
    off = np.abs(angle - k * step)
    for a, g, d in zip(angle, k * step, off):
        if d > step / 4:
            raise InteropError(
                f"snap_angles: {path.name} session {index}: {kind} {a:g} is {d:g} deg from the nearest point ({g:g}) of "
                f"the regular {step:g} deg grid ({period:g} deg / {len(distinct)} distinct angles); only angles within a "
                "quarter step are snapped. Read without snap_angles and set the angles yourself"
            )
    grid = np.mod(k * step, period)
    if len(np.unique(grid)) != len(distinct):
        raise InteropError(f"snap_angles: {path.name} session {index}: two {kind}s would snap to one grid point "
                           f"({', '.join(f'{a:g}' for a in np.unique(angle))}); read without snap_angles")
    moved = sorted({(float(a), float(g)) for a, g in zip(angle, grid) if a != g})
    return grid, [list(pair) for pair in moved]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
