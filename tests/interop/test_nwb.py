"""NWB both ways: files pynwb's validator accepts, with trials, units, regions and provenance; rates
and labels back from them; the same spikes as to_neo; a file written by hand with pynwb read back."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys

import numpy as np
import pytest
import quantities as pq
import scipy.stats
import xarray as xr

import neurorecord
from neurorecord.analysis import anova
from neurorecord.interop import InteropError, from_nwb, to_neo, to_nwb
from tests.conftest import REPO

pynwb = pytest.importorskip("pynwb")

#: Largest |z| of a Poisson count against its mean that a test accepts (two-sided p ~ 7e-6).
Z_MAX = 4.5
UNITS = [f"fc3.{i}" for i in range(0, 100, 4)]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """The default protocol (digits MLP, 454 digits x fc1/fc2/fc3) without its analyses (not needed here)."""
    protocol = neurorecord.load_protocol(neurorecord.default_protocol_path()).model_copy(update={"analyses": []})
    return neurorecord.run(protocol, tmp_path_factory.mktemp("nwb") / "d", quiet=True)


@pytest.fixture(scope="module")
def spikes_file(recording, tmp_path_factory):
    """fc2 and 25 fc3 units, 120 presentations, 1 s per stimulus, Poisson spikes."""
    path = tmp_path_factory.mktemp("nwbfile") / "rec.nwb"
    return to_nwb(recording, path, units=[f"fc2.{i}" for i in range(10)] + UNITS, presentations=slice(0, 120),
                  time_bin=1000.0, gain=20.0, seed=4, inter_trial_interval=0.25)


def time_resolved(n_presentations: int = 16) -> xr.DataArray:
    rng = np.random.default_rng(1)
    starts = -50.0 + 25.0 * np.arange(8)
    return xr.DataArray(rng.gamma(2.0, 2.0, size=(n_presentations, 3, 8)).astype(np.float32),
                        dims=("presentation", "neuroid", "time_bin"), coords={
        "stimulus_id": ("presentation", [f"g{p % 4}" for p in range(n_presentations)]),
        "neuroid_id": ("neuroid", ["gru.0", "gru.1", "gru.2"]), "region": ("neuroid", ["gru"] * 3),
        "time_bin_start": ("time_bin", starts, {"units": "ms"}), "time_bin_end": ("time_bin", starts + 25.0, {"units": "ms"})})


def test_written_file_is_valid_nwb_with_trials_units_regions_and_provenance(recording, spikes_file):
    assert pynwb.validate(path=str(spikes_file)) == []
    with pynwb.NWBHDF5IO(str(spikes_file), "r") as io:
        nwb = io.read()
        trials = nwb.trials.to_dataframe()
        assert {"start_time", "stop_time", "stimulus_onset", "stimulus_id", "repetition", "label"} <= set(trials.columns)
        np.testing.assert_allclose(trials["start_time"].values[:3], [0.0, 1.25, 2.5])
        np.testing.assert_allclose(trials["stop_time"].values - trials["start_time"].values, 1.0)
        assert trials["label"].tolist() == recording["fc2"]["label"].values[:120].tolist()
        units = nwb.units
        assert units["neuroid_id"].data[:].tolist()[9:11] == ["fc2.9", "fc3.0"]
        assert [g.name for g in units["electrode_group"].data[:]][9:11] == ["fc2", "fc3"]
        assert nwb.electrode_groups["fc3"].location == "fc3" and nwb.devices["neurorecord"] is not None
        spikes = units["spike_times"][12]
        assert np.all(np.diff(spikes) >= 0) and len(units["obs_intervals"][0]) == 120
        notes = json.loads(nwb.notes)
        assert notes["protocol_sha256"] == recording.attrs["protocol_sha256"]
        assert notes["packages"]["torch"] == recording.attrs["packages"]["torch"]
        assert notes["conversion"]["gain"] == 20.0 and notes["conversion"]["spike_seed"] == 4
        assert nwb.source_script == recording.attrs["protocol_text"] and nwb.source_script_file_name == "digits.yaml"
        assert nwb.subject.subject_id == "digits-mlp" and "digits-mlp" in nwb.session_description


def test_round_trip_gives_back_the_rates_within_poisson_error_and_exact_labels(recording, spikes_file):
    back = from_nwb(spikes_file)
    assert back["activity"].dims == ("presentation", "neuroid") and back["activity"].attrs["units"] == "spikes"
    want = recording["fc3"]["activity"].sel(neuroid_id=UNITS).isel(presentation=slice(0, 120))
    got = back["activity"].isel(neuroid=slice(10, None))
    for name in ("stimulus_id", "label", "repetition", "digit_index"):
        assert back[name].values.tolist() == want[name].values.tolist(), name
    assert got["neuroid_id"].values.tolist() == UNITS and set(got["region"].values) == {"fc3"}
    expected = 20.0 * np.clip(want.values, 0, None) * 1.0
    counts = got.values.astype(np.float64)
    assert np.all(counts[expected == 0] == 0)
    fires = expected.sum(0) > 0
    z = (counts.sum(0)[fires] - expected.sum(0)[fires]) / np.sqrt(expected.sum(0)[fires])
    assert np.abs(z).max() < Z_MAX, z
    # binned: the bins add up to the window count
    binned = from_nwb(spikes_file, bin_size=250.0)
    assert binned["activity"].shape == (120, 35, 4) and binned["time_bin_end"].values.tolist() == [250.0, 500.0, 750.0, 1000.0]
    np.testing.assert_array_equal(binned["activity"].sum("time_bin").values, back["activity"].values)


def test_an_analysis_runs_on_the_nwb_recording_and_agrees_with_scipy(spikes_file):
    back = from_nwb(spikes_file)
    result = anova(back["activity"], "label")
    assert result["F"].dims == ("neuroid",) and result["neuroid_id"].values.tolist() == back["neuroid_id"].values.tolist()
    unit = back["activity"].isel(neuroid=14)
    groups = [unit.values[back["label"].values == k].astype(np.float64) for k in np.unique(back["label"].values)]
    f, p = scipy.stats.f_oneway(*groups)
    np.testing.assert_allclose(result["F"].values[14], f, rtol=1e-10)
    np.testing.assert_allclose(result["p"].values[14], p, rtol=1e-8)


def test_the_file_holds_the_same_spikes_as_to_neo(recording, tmp_path):
    choice = {"units": ["fc2.3", "fc3.1", "fc3.7"], "presentations": slice(10, 40), "time_bin": 500.0, "gain": 20.0,
              "seed": 9, "refractory": 2.0}
    block = to_neo(recording, as_="spikes", **choice)
    path = to_nwb(recording, tmp_path / "same.nwb", inter_trial_interval=0.1, **choice)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        onsets = nwb.trials["stimulus_onset"].data[:]
        assert nwb.trials["stimulus_id"].data[:].tolist() == [seg.annotations["stimulus_id"] for seg in block.segments]
        n_spikes = 0
        for u in range(3):
            times = np.asarray(nwb.units["spike_times"][u])
            neo_times = np.concatenate([onsets[p] + seg.spiketrains[u].rescale(pq.s).magnitude
                                        for p, seg in enumerate(block.segments)])
            np.testing.assert_allclose(times, neo_times, rtol=0, atol=1e-9)
            n_spikes += len(times)
        assert n_spikes > 100


def test_activity_without_spikes_round_trips_exactly(recording, tmp_path):
    path = to_nwb(recording, tmp_path / "a.nwb", regions=["fc1"], presentations=slice(0, 20), spikes=False)
    assert pynwb.validate(path=str(path)) == []
    back = from_nwb(path)
    np.testing.assert_array_equal(back["activity"].values[:, :, 0], recording["fc1"]["activity"].values[:20])
    assert back["activity"].attrs["units"] == "a.u." and back["time_bin_end"].values.tolist() == [100.0]
    x = time_resolved()
    path = to_nwb(x, tmp_path / "t.nwb", spikes=False)
    back = from_nwb(path)
    np.testing.assert_array_equal(back["activity"].values, x.values)
    np.testing.assert_allclose(back["time_bin_start"].values, x["time_bin_start"].values, atol=1e-9)


def test_time_resolved_spikes_align_to_stimulus_onset(tmp_path):
    x = time_resolved(40)
    path = to_nwb(x, tmp_path / "t.nwb", gain=40.0, seed=2)
    assert pynwb.validate(path=str(path)) == []
    back = from_nwb(path, bin_size=25.0)
    assert back.attrs["align_to"] == "stimulus_onset"
    np.testing.assert_allclose(back["time_bin_start"].values, x["time_bin_start"].values, atol=1e-9)
    np.testing.assert_allclose(back["stimulus_onset"].values - back["start_time"].values, 0.05)
    expected = 40.0 * x.values * 0.025
    z = (back["activity"].values.sum(0) - expected.sum(0)) / np.sqrt(expected.sum(0))
    assert np.abs(z).max() < Z_MAX
    start_aligned = from_nwb(path, bin_size=25.0, align_to="start_time")
    np.testing.assert_array_equal(start_aligned["activity"].values, back["activity"].values)
    assert start_aligned["time_bin_start"].values[0] == 0.0


def test_a_file_written_with_pynwb_directly_is_binned_exactly(tmp_path):
    """A neuroscientist's file: trials of different lengths, a 'stimulus' column, units without neuroid ids."""
    nwb = pynwb.NWBFile(session_description="V1", identifier="v1-test", session_start_time=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    device = nwb.create_device(name="probe")
    group = nwb.create_electrode_group(name="shank0", description="V1 shank", location="V1", device=device)
    nwb.add_trial_column("stimulus", "grating")
    nwb.add_trial_column("orientation", "deg")
    for start, stop, stim, ori in [(0.0, 1.0, "g0", 0.0), (2.0, 3.5, "g90", 90.0), (4.0, 5.0, "g0", 0.0)]:
        nwb.add_trial(start_time=start, stop_time=stop, stimulus=stim, orientation=ori)
    nwb.add_unit_column("quality", "sorting quality")
    nwb.add_unit(spike_times=[0.05, 0.15, 0.151, 2.0, 2.3, 4.099, 4.1], electrode_group=group, quality="good")
    nwb.add_unit(spike_times=[0.5, 3.2, 4.95], electrode_group=group, quality="mua")
    with pynwb.NWBHDF5IO(str(tmp_path / "v1.nwb"), "w") as io:
        io.write(nwb)
    with pytest.raises(InteropError, match=r"window: the trials' stop times relative to alignment differ \(from 1 to 1.5 s\)"):
        from_nwb(tmp_path / "v1.nwb", stimulus_key="stimulus")
    ds = from_nwb(tmp_path / "v1.nwb", bin_size=100.0, window=(0.0, 300.0), stimulus_key="stimulus")
    assert ds["stimulus_id"].values.tolist() == ["g0", "g90", "g0"] and ds["repetition"].values.tolist() == [0, 0, 1]
    assert ds["neuroid_id"].values.tolist() == ["V1.0", "V1.1"] and ds["quality"].values.tolist() == ["good", "mua"]
    expected = np.array([[[1, 2, 0], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]], [[1, 1, 0], [0, 0, 0]]], dtype=np.float32)
    np.testing.assert_array_equal(ds["activity"].values, expected)
    assert ds["activity"].attrs["units"] == "spikes per bin" and ds["region"].values.tolist() == ["V1", "V1"]


def test_errors_name_the_argument(recording, spikes_file, tmp_path):
    with pytest.raises(InteropError, match=r"path: .*rec.nwb exists; pass overwrite=True"):
        to_nwb(recording, spikes_file, units=["fc1.0"])
    with pytest.raises(InteropError, match=r"align_to: the trials table has no column 'onset'; columns: 'start_time', 'stop_time'"):
        from_nwb(spikes_file, align_to="onset")
    with pytest.raises(InteropError, match=r"window, bin_size: \[0, 1000\) ms is not a whole number of 300 ms bins"):
        from_nwb(spikes_file, bin_size=300.0)
    with pytest.raises(InteropError, match=r"inter_trial_interval: expected a number >= 0, found -1"):
        to_nwb(recording, tmp_path / "x.nwb", inter_trial_interval=-1)
    clash = time_resolved().assign_coords(start_time=("presentation", np.zeros(16)))
    with pytest.raises(InteropError, match=r"presentation coordinate\(s\) 'start_time' take a trials-table name"):
        to_nwb(clash, tmp_path / "y.nwb")
    binned = to_nwb(time_resolved(), tmp_path / "b.nwb", spikes=False)
    with pytest.raises(InteropError, match=r"bin_size, window: this file holds binned activity"):
        from_nwb(binned, bin_size=25.0)


def test_missing_pynwb_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r"to_nwb needs pynwb .*pip install neurorecord\[nwb\]"):
        to_nwb(time_resolved(), tmp_path / "x.nwb")
    with pytest.raises(ImportError, match=r"from_nwb needs pynwb .*pip install neurorecord\[nwb\]"):
        from_nwb(tmp_path / "x.nwb")


def test_docs_interop_snippets_run_and_say_what_they_print(recording, tmp_path, monkeypatch):
    """docs/interop.md's snippets, in order, on the fixture's recording (the first one only makes it)."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "interop.md").read_text(), flags=re.S)
    assert "neurorecord.run(" in blocks[0] and len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    ns = {"tree": recording, "neurorecord": neurorecord}
    for block in blocks[1:]:
        exec(block, ns)
    assert (ns["seg"].name, ns["seg"].annotations["label"], ns["seg"].analogsignals[0].shape) == ("digits-0003 #0", 3, (1, 100))
    assert (ns["unit"].name, len(ns["unit"].spiketrains)) == ("fc3.0", 50)
    assert ns["psth"].shape == (5, 1) and str(ns["psth"].dimensionality) == "Hz"
    np.testing.assert_array_equal(ns["back"]["activity"].values[:, :, 0], recording["fc2"]["activity"].values[:50])
    assert pynwb.validate(path=str(ns["path"])) == []
    assert ns["counts"]["activity"].shape == (100, 100) and ns["binned"]["activity"].shape == (100, 100, 5)
    assert ns["responsive"]["F"].sizes == {"neuroid": 100}
