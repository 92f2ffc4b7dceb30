"""The Ecker et al. (2010) reader on the static-grating form of the file (conditions with
``orientation`` instead of ``direction``) and the optional snapping of whole-degree angles.

The static file is not in ``shared/data``: :func:`write_ecker_file` writes small synthetic ones
in the layout of ``data_v1_binned_moving.mat`` (a cell array of session structs, a struct array
of conditions, the same field order and MATLAB classes), and a test checks that layout against
the real moving file where it is present. No real data is copied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from neurorecord.interop import InteropError, ecker2010_path, read_ecker2010
from tests.helpers import ECKER_FILE

ECKER = ecker2010_path() or ECKER_FILE
needs_file = pytest.mark.skipif(not ECKER.is_file(), reason=f"Ecker 2010 data file not found at {ECKER}")

GRID = [0.0, 22.5, 45.0, 67.5, 90.0, 112.5, 135.0, 157.5]
WHOLE = [0, 22, 45, 67, 90, 112, 135, 158]  # how some sessions store the same grid


def _matlab_number(value: float) -> np.ndarray:
    """A scalar as MATLAB saved it in the real file: uint8 when whole and small, else double."""
    if float(value).is_integer() and 0 <= value < 256:
        return np.array([[value]], dtype=np.uint8)
    return np.array([[value]], dtype=np.float64)


def _struct_array(rows: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    """A k x 1 MATLAB struct array (a record array for scipy.io.savemat)."""
    array = np.empty((len(rows), 1), dtype=[(f, object) for f in fields])
    for i, row in enumerate(rows):
        for f in fields:
            array[i, 0][f] = _matlab_number(row[f])
    return array


def session(angles, contrasts, *, angle="orientation", n_units=3, n_reps=4, subject="H", seed=0,
            times=np.arange(-95, 600, 10)):
    """One session: every angle at every contrast (contrast-major), Poisson spike counts."""
    rng = np.random.default_rng(seed)
    conditions = [{"contrast": c, angle: a} for c in contrasts for a in angles]
    spikes = rng.poisson(0.4, (n_units, len(conditions), len(times), n_reps)).astype(np.uint8)
    return {"date": "2008-08-12_10-13-03", "subject": subject, "conditions": conditions, "spikes": spikes,
            "times": np.asarray(times), "tetrode": np.arange(n_units) % 4 + 1, "contamination": rng.uniform(0, 0.05, n_units)}


def write_ecker_file(path: Path, sessions: list[dict]) -> Path:
    """Write sessions in the exact layout of data_v1_binned_moving.mat: ``data`` a n x 1 cell of
    1 x 1 structs with fields date, subject, conditions (k x 1 struct array of contrast and the
    angle), contamination (units x 1 double), tetrode (1 x units uint8), spikes (uint8, units x
    conditions x bins x repetitions), times (1 x bins int16)."""
    cells = np.empty((len(sessions), 1), dtype=object)
    for i, s in enumerate(sessions):
        angle = next(k for k in s["conditions"][0] if k != "contrast")
        cells[i, 0] = {
            "date": s["date"], "subject": s["subject"],
            "conditions": _struct_array(s["conditions"], ("contrast", angle)),
            "contamination": np.asarray(s["contamination"], dtype=np.float64).reshape(-1, 1),
            "tetrode": np.asarray(s["tetrode"], dtype=np.uint8).reshape(1, -1),
            "spikes": np.asarray(s["spikes"], dtype=np.uint8),
            "times": np.asarray(s["times"], dtype=np.int16).reshape(1, -1),
        }
    scipy.io.savemat(path, {"data": cells})
    return path


@pytest.fixture
def static_file(tmp_path):
    """Two sessions of static gratings: 8 orientations at 2 contrasts on the 22.5 deg grid, and 8
    orientations at full contrast stored as whole degrees (as some sessions of the dataset do)."""
    return write_ecker_file(tmp_path / "data_v1_binned_static.mat", [
        session(GRID, [10, 100], seed=1),
        session(WHOLE, [100], subject="D", n_units=2, n_reps=5, seed=2),
    ])


def _layout(path: Path) -> dict:
    """What the reader relies on, per session: field order, each field's class and orientation."""
    mat = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
    cell = mat["data"]
    out = {"data": (cell.dtype, cell.ndim, cell.shape[1]), "sessions": []}
    for item in cell.ravel():
        s = item[0, 0]
        fields = {}
        for f in s._fieldnames:
            v = getattr(s, f)
            orientation = "row" if v.ndim == 2 and v.shape[0] == 1 and v.shape[1] > 1 else \
                "column" if v.ndim == 2 and v.shape[1] == 1 and v.shape[0] > 1 else v.ndim
            fields[f] = (v.dtype.kind if f != "conditions" else "struct", orientation)
        c = s.conditions.ravel()[0]
        out["sessions"].append((item.shape, tuple(s._fieldnames), fields, tuple(c._fieldnames),
                                {f: (getattr(c, f).dtype.kind, getattr(c, f).shape) for f in c._fieldnames}))
    return out


@needs_file
def test_written_file_has_the_layout_of_the_real_one(tmp_path):
    real = _layout(ECKER)
    ours = _layout(write_ecker_file(tmp_path / "moving.mat", [session(GRID * 2, [100], angle="direction")]))
    assert ours["data"] == real["data"] == (np.dtype(object), 2, 1)
    assert ours["sessions"][0] == real["sessions"][0]
    static = _layout(write_ecker_file(tmp_path / "static.mat", [session(GRID, [100])]))["sessions"][0]
    assert static[:3] == real["sessions"][0][:3] and static[3] == ("contrast", "orientation")


def test_orientation_conditions(static_file):
    tree = read_ecker2010(static_file)
    raw = scipy.io.loadmat(static_file, squeeze_me=True, struct_as_record=False)["data"]
    assert list(tree.children) == ["session00", "session01"]
    for name, s in zip(tree.children, raw):
        ds = tree[name].to_dataset()
        assert "direction" not in ds.coords
        orientations = np.array([float(c.orientation) for c in s.conditions])
        contrasts = np.array([float(c.contrast) for c in s.conditions])
        cond, rep = ds["condition"].values, ds["repetition"].values
        assert np.array_equal(ds["orientation"].values, orientations[cond]) and ds["orientation"].dtype == np.float64
        assert np.array_equal(ds["contrast"].values, contrasts[cond])
        assert ds["orientation"].attrs["units"] == "deg" and ds["orientation"].attrs["period"] == 180.0
        assert ds.attrs["angle"] == "orientation" and ds.attrs["angle_period_deg"] == 180.0
        assert np.array_equal(ds["activity"].values, s.spikes[:, cond, :, rep].astype(np.float32))
        assert np.array_equal(ds["time_bin_start"].values, s.times - 5.0)
        assert "static" in ds.attrs["stimulus"]
    s0 = tree["session00"].to_dataset()
    ids = dict(zip(s0["condition"].values.tolist(), s0["stimulus_id"].values.tolist()))
    assert ids[1] == "grating-ori22.5-c10" and ids[15] == "grating-ori157.5-c100" and len(set(ids.values())) == 16
    assert tree.attrs["angles"] == ["orientation"] and "static" in tree.attrs["source"]


def test_direction_conditions_record_their_period(tmp_path):
    path = write_ecker_file(tmp_path / "moving.mat", [session([0, 90, 180, 270], [100], angle="direction")])
    ds = read_ecker2010(path)["session00"].to_dataset()
    assert "orientation" not in ds.coords and ds["direction"].attrs["period"] == 360.0
    assert ds.attrs["angle"] == "direction" and ds.attrs["angle_period_deg"] == 360.0
    assert ds["stimulus_id"].values[-1] == "grating-dir270-c100" and "drifting" in ds.attrs["stimulus"]


def test_whole_degrees_kept_unless_asked(static_file):
    kept = read_ecker2010(static_file, sessions=[1])["session01"].to_dataset()
    assert sorted(set(kept["orientation"].values.tolist())) == WHOLE
    assert kept.attrs["angles_snapped"] == []
    snapped_tree = read_ecker2010(static_file, snap_angles=True)
    snapped = snapped_tree["session01"].to_dataset()
    assert np.array_equal(snapped["orientation"].values, np.array(GRID)[snapped["condition"].values])
    assert snapped.attrs["angles_snapped"] == [[22.0, 22.5], [67.0, 67.5], [112.0, 112.5], [158.0, 157.5]]
    assert snapped["stimulus_id"].values[5] == "grating-ori22.5-c100"  # condition 1, repetition 0
    np.testing.assert_array_equal(snapped["activity"].values, kept["activity"].values)
    on_grid = snapped_tree["session00"].to_dataset()
    assert on_grid.attrs["angles_snapped"] == [] and snapped_tree.attrs["snap_angles"] is True


@needs_file
def test_snap_angles_on_the_moving_file():
    """Monkey D's sessions store 22, 67, ..., 314, 336: snapped, every direction is condition * 22.5."""
    tree = read_ecker2010(ECKER, sessions=[0, 14, 25], snap_angles=True)
    for name in tree.children:
        ds = tree[name].to_dataset()
        assert np.array_equal(ds["direction"].values, ds["condition"].values * 22.5)
    assert tree["session00"].attrs["angles_snapped"] == []
    assert [336.0, 337.5] in tree["session14"].attrs["angles_snapped"]
    assert tree["session14"]["stimulus_id"].values[-1] == "grating-dir337.5-c100"
    plain = read_ecker2010(ECKER, sessions=[14])["session14"]
    assert plain["stimulus_id"].values[-1] == "grating-dir336-c100"  # the default keeps the file's value


def _write_conditions(path: Path, conditions: np.ndarray) -> Path:
    """A one-session file in the real layout, with ``conditions`` as given (struct array or cell)."""
    s = session(GRID, [100])
    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = {"date": s["date"], "subject": s["subject"], "conditions": conditions,
                   "contamination": s["contamination"].reshape(-1, 1), "tetrode": s["tetrode"].astype(np.uint8).reshape(1, -1),
                   "spikes": s["spikes"], "times": s["times"].astype(np.int16).reshape(1, -1)}
    scipy.io.savemat(path, {"data": cells})
    return path


def test_bad_conditions_and_arguments(tmp_path):
    rows = [{"contrast": 100, "orientation": a, "direction": 2 * a} for a in GRID]
    both = _write_conditions(tmp_path / "both.mat", _struct_array(rows, ("contrast", "orientation", "direction")))
    with pytest.raises(InteropError, match=r"both\.mat: session 0 \(data\[0\]\) conditions\[0\] has both 'direction' and "
                                           r"'orientation'; expected one"):
        read_ecker2010(both)
    neither = write_ecker_file(tmp_path / "neither.mat", [session(GRID, [100], angle="phase")])
    with pytest.raises(InteropError, match=r"neither\.mat: session 0 \(data\[0\]\) conditions\[0\] has no field 'direction' "
                                           r"or 'orientation'; expected fields contrast and direction or orientation; found contrast, phase"):
        read_ecker2010(neither)
    cell = np.empty((8, 1), dtype=object)  # a cell array of structs may differ from one condition to the next
    for i, a in enumerate(GRID):
        cell[i, 0] = {"contrast": _matlab_number(100), ("direction" if i == 3 else "orientation"): _matlab_number(a)}
    mixed = _write_conditions(tmp_path / "mixed.mat", cell)
    with pytest.raises(InteropError, match=r"mixed\.mat: session 0 \(data\[0\]\) conditions\[3\] has 'direction', "
                                           r"but conditions\[0\] has 'orientation'"):
        read_ecker2010(mixed)
    off = write_ecker_file(tmp_path / "off.mat", [session([0, 45, 70, 135], [100])])
    assert read_ecker2010(off)["session00"]["orientation"].values.max() == 135.0  # read as stored by default
    with pytest.raises(InteropError, match=r"snap_angles: off\.mat session 0: orientation 70 is 20 deg from the nearest "
                                           r"point \(90\) of the regular 45 deg grid"):
        read_ecker2010(off, snap_angles=True)
    with pytest.raises(InteropError, match=r"snap_angles: expected True or False, found 'yes'"):
        read_ecker2010(off, snap_angles="yes")
