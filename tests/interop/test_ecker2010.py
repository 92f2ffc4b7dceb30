"""The Ecker et al. (2010) V1 reader: layout, every value against scipy.io.loadmat, labels,
provenance, the response window, and errors that name the file and the field.

The data file is read from ``shared/data/v1-ecker2010`` beside the repository (or from
``NEURORECORD_ECKER2010``) and never copied; tests that need it are skipped when it is absent.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import xarray as xr

from neurorecord.errors import NeurorecordError
from neurorecord.interop import InteropError, ecker2010_path, read_ecker2010, response_window
from tests.helpers import ECKER_FILE

REPO = Path(__file__).resolve().parents[2]
SHARED = ECKER_FILE
ECKER = ecker2010_path() or SHARED
SHA256 = "5b3860886488a735b5d00f86b3113a12194f91fc377fa063dc6cfeae07b3fe80"
needs_file = pytest.mark.skipif(not ECKER.is_file(), reason=f"Ecker 2010 data file not found at {ECKER}")


@pytest.fixture(scope="module")
def raw(raw_ecker):
    return raw_ecker


@pytest.fixture(scope="module")
def tree():
    if not ECKER.is_file():
        pytest.skip(f"Ecker 2010 data file not found at {ECKER}")
    return read_ecker2010(ECKER)


def _trial_totals(session):
    """Spikes of all units in each trial slot, conditions x repetitions."""
    return session.spikes.astype(np.int64).sum(axis=(0, 2))


# ---------------------------------------------------------------------------------- layout


@needs_file
def test_layout_and_counts(tree, raw):
    assert len(raw) == 27
    assert list(tree.children) == [f"session{i:02d}" for i in range(27)] == tree.attrs["sessions"]
    n_units, n_trials = 0, []
    for i, session in enumerate(raw):
        ds = tree[f"session{i:02d}"].to_dataset()
        act = ds["activity"]
        n_u, n_c, n_t, n_r = session.spikes.shape
        assert act.dims == ("presentation", "neuroid", "time_bin") and act.dtype == np.float32
        assert (n_c, n_t) == (16, 90)
        assert ds.sizes["neuroid"] == n_u and ds.sizes["time_bin"] == 90
        assert ds.attrs["n_repetitions"] == n_r and ds.attrs["n_units"] == n_u
        assert len(np.unique(ds["direction"].values)) == 16 and set(ds["contrast"].values) == {100.0}
        n_empty = int((_trial_totals(session) == 0).sum())
        assert ds.sizes["presentation"] == n_c * n_r - n_empty == ds.attrs["n_presentations"]
        # every condition keeps its repetitions, in order, minus the dropped empty slots
        for c in range(n_c):
            reps = ds["repetition"].values[ds["condition"].values == c]
            expected = np.flatnonzero(_trial_totals(session)[c] > 0)
            assert np.array_equal(reps, expected)
        n_units += n_u
        n_trials.append(ds.sizes["presentation"])
    assert n_units == 577
    assert (min(n_trials), max(n_trials)) == (80, 2064)
    assert sum(n_trials) == 14423  # 14432 trial slots, 9 of them empty (session 25)


@needs_file
def test_every_value_equals_loadmat(tree, raw):
    """activity[p, u, t] is spikes[u, condition[p], t, repetition[p]] for every session and trial."""
    for i, session in enumerate(raw):
        ds = tree[f"session{i:02d}"].to_dataset()
        cond, rep = ds["condition"].values, ds["repetition"].values
        expected = session.spikes[:, cond, :, rep]  # advanced indices first: (presentation, unit, time)
        assert np.array_equal(ds["activity"].values, expected.astype(np.float32))


@needs_file
def test_single_values_by_label(tree, raw):
    spikes = raw[0].spikes
    act = tree["session00"]["activity"]
    busiest = tuple(int(i) for i in np.unravel_index(np.argmax(spikes), spikes.shape))
    for u, c, t, r in [(3, 7, 40, 5), (0, 0, 0, 0), (37, 15, 89, 12), (12, 4, 30, 9), busiest]:
        p = np.flatnonzero((act["condition"].values == c) & (act["repetition"].values == r))
        assert len(p) == 1
        value = act.isel(presentation=p[0]).sel(neuroid_id=f"V1.s00.u{u:02d}").sel(time_bin=t)
        assert float(value) == spikes[u, c, t, r]
        assert float(value["time_bin_start"]) == raw[0].times[t] - 5 and float(value["time_bin_end"]) == raw[0].times[t] + 5
    assert spikes[busiest] == 5  # one of the checked values is not a zero


@needs_file
def test_coordinates_match_the_file(tree, raw):
    for i in (0, 14, 25):
        session, ds = raw[i], tree[f"session{i:02d}"].to_dataset()
        directions = np.array([float(c.direction) for c in session.conditions])
        contrasts = np.array([float(c.contrast) for c in session.conditions])
        cond = ds["condition"].values
        assert np.array_equal(ds["direction"].values, directions[cond]) and ds["direction"].dtype == np.float64
        assert np.array_equal(ds["contrast"].values, contrasts[cond])
        assert np.array_equal(ds["time_bin"].values, np.arange(90))
        assert np.array_equal(ds["time_bin_start"].values, session.times - 5.0)
        assert np.array_equal(ds["time_bin_end"].values, session.times + 5.0)
        assert ds["time_bin_start"].attrs["units"] == "ms" and ds["direction"].attrs["units"] == "deg"
        assert np.array_equal(ds["channel"].values, np.arange(session.spikes.shape[0]))
        assert np.array_equal(ds["tetrode"].values, session.tetrode)
        assert np.array_equal(ds["contamination"].values, session.contamination)
        assert set(ds["region"].values) == {"V1"} and set(ds["session"].values) == {i}
        assert set(ds["subject"].values) == {session.subject} == {ds.attrs["subject"]}
        assert ds.attrs["date"] == session.date
        assert ds["activity"].attrs["units"] == "spikes per bin" and ds["activity"].attrs["bin_width_ms"] == 10.0
        assert ds.attrs["bin_width_ms"] == 10.0


@needs_file
def test_neuroid_ids_unique_across_sessions(tree):
    ids = np.concatenate([tree[name]["neuroid_id"].values for name in tree.children])
    assert len(ids) == 577 == len(set(ids))
    assert all(re.fullmatch(r"V1\.s\d\d\.u\d\d", i) for i in ids)
    assert list(tree["session03"]["neuroid_id"].values[:2]) == ["V1.s03.u00", "V1.s03.u01"]


@needs_file
def test_stimulus_ids_stable(tree):
    s0 = tree["session00"].to_dataset()
    first = dict(zip(s0["condition"].values.tolist(), s0["stimulus_id"].values.tolist()))
    assert first[0] == "grating-dir0-c100" and first[1] == "grating-dir22.5-c100" and first[7] == "grating-dir157.5-c100"
    # monkey D's sessions store whole degrees; the id keeps the file's value
    s14 = tree["session14"].to_dataset()
    d14 = dict(zip(s14["condition"].values.tolist(), s14["stimulus_id"].values.tolist()))
    assert d14[1] == "grating-dir22-c100" and d14[15] == "grating-dir336-c100"
    # one id per condition, the same on a second read
    for name in tree.children:
        ds = tree[name].to_dataset()
        pairs = set(zip(ds["condition"].values.tolist(), ds["stimulus_id"].values.tolist()))
        assert len(pairs) == 16 == len({sid for _, sid in pairs})
    again = read_ecker2010(ECKER, sessions=[0, 14])
    for name in ("session00", "session14"):
        assert list(again[name]["stimulus_id"].values) == list(tree[name]["stimulus_id"].values)
        xr.testing.assert_identical(again[name].to_dataset(), tree[name].to_dataset())


@needs_file
def test_empty_trial_totals(tree, raw):
    """Only session 25 has slots where no unit spiked; they are dropped unless asked to keep them."""
    dropped = {name: tree[name].attrs["empty_trials_dropped"] for name in tree.children}
    assert {k: v for k, v in dropped.items() if v} == {"session25": [[c, 0] for c in (0, 1, 2, 4, 8, 9, 10, 12, 15)]}
    kept = read_ecker2010(ECKER, sessions=[25], empty_trials="keep")
    assert list(kept.children) == ["session25"]
    act = kept["session25"]["activity"]
    assert act.sizes["presentation"] == 320 and kept["session25"].attrs["empty_trials_dropped"] == []
    assert np.array_equal(act.values, raw[25].spikes[:, act["condition"].values, :, act["repetition"].values])
    empty = act.sum(("neuroid", "time_bin")).values == 0
    assert empty.sum() == 9 and set(act["repetition"].values[empty]) == {0}


@needs_file
def test_file_is_read_not_copied(tree):
    assert tree.attrs["source_sha256"] == SHA256 == tree["session00"].attrs["source_sha256"]
    assert tree.attrs["source_file"] == "data_v1_binned_moving.mat"
    assert Path(tree.attrs["source_path"]) == ECKER.resolve()
    size = ECKER.stat().st_size
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules")]
        for name in files:
            file = Path(folder) / name
            assert file.suffix != ".mat", f"{file}: a MATLAB file inside the repository"
            if file.stat().st_size == size:
                assert hashlib.sha256(file.read_bytes()).hexdigest() != SHA256, f"{file} is a copy of the data file"


@needs_file
def test_provenance(tree):
    attrs = tree.attrs
    assert attrs["converter"] == "neurorecord.interop.read_ecker2010" and attrs["neurorecord_format"] == 1
    assert "Science 327:584" in attrs["citation"] and "Ecker" in attrs["citation"]
    assert attrs["licence"] == "CC BY-NC-ND 3.0" and attrs["empty_trials"] == "drop"
    assert {"neurorecord", "numpy", "scipy", "xarray"} <= set(attrs["packages"]) and attrs["created"]
    node = tree["session00"].attrs
    assert node["licence"] == "CC BY-NC-ND 3.0" and node["citation"] == attrs["citation"]


@needs_file
def test_sessions_selects_nodes(tree):
    some = read_ecker2010(ECKER, sessions=[26, 3])
    assert list(some.children) == ["session26", "session03"] == some.attrs["sessions"]
    xr.testing.assert_identical(some["session03"].to_dataset(), tree["session03"].to_dataset())


# ------------------------------------------------------------------------- response window


@needs_file
def test_response_window_counts_and_rates(tree, raw):
    act = tree["session00"]["activity"]
    counts = response_window(act, 50, 550)
    rates = response_window(act, 50, 550, rate=True)
    cond, rep = act["condition"].values, act["repetition"].values
    # times are bin centres -195..695: [50, 550) ms is bins 25..74
    expected = raw[0].spikes[:, cond, 25:75, rep].astype(np.int64).sum(axis=-1)
    assert counts.dims == ("presentation", "neuroid") and counts.dtype == np.float64
    assert np.array_equal(counts.values, expected)
    assert np.array_equal(rates.values, expected / 0.5)
    assert counts.attrs["units"] == "spikes" and rates.attrs["units"] == "spikes/s"
    assert counts.attrs["n_time_bins"] == 50 and (counts.attrs["window_start_ms"], counts.attrs["window_stop_ms"]) == (50.0, 550.0)
    assert list(counts["neuroid_id"].values) == list(act["neuroid_id"].values)
    assert list(counts["stimulus_id"].values) == list(act["stimulus_id"].values)
    assert "time_bin" not in counts.coords and "time_bin_start" not in counts.coords
    lazy = response_window(act.chunk({"presentation": 50}), 50, 550, rate=True)
    assert lazy.chunks is not None and np.array_equal(lazy.values, rates.values)


@needs_file
def test_response_window_rejects_windows_off_the_bin_edges(tree):
    act = tree["session00"]["activity"]
    with pytest.raises(InteropError, match=r"start_ms: 47 ms is not a time-bin edge \(nearest: 40, 50\)"):
        response_window(act, 47, 550)
    with pytest.raises(InteropError, match=r"stop_ms: 800 ms is not a time-bin edge \(nearest: 700\)"):
        response_window(act, 50, 800)
    with pytest.raises(InteropError, match="stop_ms: must be greater than start_ms"):
        response_window(act, 550, 50)
    with pytest.raises(InteropError, match=r"expected dims \('presentation', 'neuroid', 'time_bin'\)"):
        response_window(act.isel(time_bin=0), 50, 550)
    with pytest.raises(InteropError, match="expected an xarray.DataArray"):
        response_window(tree["session00"].to_dataset(), 50, 550)
    with pytest.raises(InteropError, match="needs the coordinate 'time_bin_end'"):
        response_window(act.drop_vars("time_bin_end"), 50, 550)
    seconds = act.assign_coords(time_bin_start=act["time_bin_start"].assign_attrs(units="s"))
    with pytest.raises(InteropError, match="'time_bin_start' is in 's'"):
        response_window(seconds, 50, 550)


# ------------------------------------------------------------------------------- bad input


def _session(**overrides):
    session = {
        "date": "2008-08-09", "subject": "H", "times": np.arange(-195, 700, 10),
        "conditions": np.array([{"direction": 0, "contrast": 100}, {"direction": 22.5, "contrast": 100}]),
        "spikes": np.arange(3 * 2 * 90 * 4).reshape(3, 2, 90, 4) % 3,
        "tetrode": np.array([1, 1, 2]), "contamination": np.array([0.0, 0.1, 0.2]),
    }
    session.update(overrides)
    return {k: v for k, v in session.items() if v is not None}


def _write(tmp_path, *sessions, name="fake.mat"):
    path = tmp_path / name
    scipy.io.savemat(path, {"data": np.array(list(sessions), dtype=object)})
    return path


def test_synthetic_file_round_values(tmp_path):
    spikes = (np.arange(3 * 2 * 90 * 4).reshape(3, 2, 90, 4) % 5).astype(np.uint8)
    path = _write(tmp_path, _session(spikes=spikes), _session(spikes=spikes[:1, :, :, :1], tetrode=np.array([7]),
                                                              contamination=np.array([0.5])))
    tree = read_ecker2010(path)
    first, second = tree["session00"]["activity"], tree["session01"]["activity"]
    assert first.shape == (8, 3, 90)
    assert np.array_equal(first.values, spikes.transpose(1, 3, 0, 2).reshape(8, 3, 90))
    assert list(first["repetition"].values) == [0, 1, 2, 3] * 2 and list(first["condition"].values) == [0] * 4 + [1] * 4
    # one unit, one repetition: the axes survive (MATLAB drops trailing singleton axes)
    assert second.shape == (2, 1, 90) and list(second["neuroid_id"].values) == ["V1.s01.u00"]
    assert second["tetrode"].values.tolist() == [7]


def test_ecker2010_path_reads_the_environment(monkeypatch):
    monkeypatch.setenv("NEURORECORD_ECKER2010", "/somewhere/data.mat")
    assert ecker2010_path() == Path("/somewhere/data.mat")
    monkeypatch.setenv("NEURORECORD_ECKER2010", "")
    assert ecker2010_path() is None
    monkeypatch.delenv("NEURORECORD_ECKER2010")
    assert ecker2010_path() is None
    with pytest.raises(InteropError, match="no path given and NEURORECORD_ECKER2010 is not set"):
        read_ecker2010()


BAD_FILES = [
    # (what the file holds, message pattern)
    ("missing", r"missing\.mat: does not exist; expected the Ecker et al\. \(2010\) file"),
    ("text", r"text\.mat: not a readable MATLAB v5 file"),
    ("no-data", r"no-data\.mat: no variable 'data' .*variables found: spikes"),
    ("no-spikes", r"no-spikes\.mat: session 0 \(data\[0\]\) has no field 'spikes'; expected fields .*found "),
    ("no-direction", r"no-direction\.mat: session 1 \(data\[1\]\) conditions\[0\] has no field 'direction'"),
    ("short-tetrode", r"short-tetrode\.mat: session 0 \(data\[0\]\) field 'tetrode': expected one number per unit \(3\)"),
    ("few-conditions", r"few-conditions\.mat: session 0 \(data\[0\]\) field 'conditions': 1 conditions, but 'spikes' has 2"),
    ("short-times", r"short-times\.mat: session 0 \(data\[0\]\) field 'times': 89 bin centres, but 'spikes' has 90"),
    ("text-spikes", r"text-spikes\.mat: session 0 \(data\[0\]\) field 'spikes': expected counts"),
]


@pytest.mark.parametrize("kind, message", BAD_FILES, ids=[k for k, _ in BAD_FILES])
def test_bad_files_name_the_file_and_field(tmp_path, kind, message):
    path = tmp_path / f"{kind}.mat"
    if kind == "text":
        path.write_text("not a MATLAB file\n")
    elif kind == "no-data":
        scipy.io.savemat(path, {"spikes": np.zeros(3)})
    elif kind == "no-spikes":
        _write(tmp_path, _session(spikes=None), name=path.name)
    elif kind == "no-direction":
        _write(tmp_path, _session(), _session(conditions=np.array([{"contrast": 100}, {"contrast": 100}])), name=path.name)
    elif kind == "short-tetrode":
        _write(tmp_path, _session(tetrode=np.array([1, 2])), name=path.name)
    elif kind == "few-conditions":
        _write(tmp_path, _session(conditions=np.array([{"direction": 0, "contrast": 100}])), name=path.name)
    elif kind == "short-times":
        _write(tmp_path, _session(times=np.arange(-195, 690, 10)), name=path.name)
    elif kind == "text-spikes":
        _write(tmp_path, _session(spikes="none"), name=path.name)
    with pytest.raises(InteropError, match=message) as info:
        read_ecker2010(path)
    assert isinstance(info.value, NeurorecordError)


def test_bad_arguments(tmp_path):
    path = _write(tmp_path, _session())
    with pytest.raises(InteropError, match=r"empty_trials: expected one of 'drop', 'keep', found 'zero'"):
        read_ecker2010(path, empty_trials="zero")
    with pytest.raises(InteropError, match=r"sessions: expected indices 0\.\.0 \(the sessions of fake\.mat\), found 3"):
        read_ecker2010(path, sessions=[3])
    with pytest.raises(InteropError, match="sessions: each session may be given once"):
        read_ecker2010(path, sessions=[0, 0])
    with pytest.raises(InteropError, match="is a folder, not a file"):
        read_ecker2010(tmp_path)


@needs_file
def test_units_that_never_fire_are_kept(tree):
    """The module notes name the 8 units without a single spike; they stay in the recording."""
    silent = [str(i) for name in tree.children
              for i, total in zip(tree[name]["neuroid_id"].values, tree[name]["activity"].sum(("presentation", "time_bin")).values)
              if total == 0]
    assert silent == ["V1.s07.u12", "V1.s09.u10", "V1.s13.u05", "V1.s15.u12", "V1.s23.u12", "V1.s24.u01", "V1.s24.u08", "V1.s24.u15"]
