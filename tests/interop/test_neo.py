"""Neo to recording: exact counts on known spike times, coordinates, units, errors, and a round
trip of Ecker et al. (2010) sessions through Neo segments and back."""

from __future__ import annotations


import neo
import numpy as np
import pytest
import quantities as pq
import xarray as xr

from neurorecord.interop import InteropError, ecker2010_path, from_neo, read_ecker2010
from tests.helpers import ECKER_FILE

ECKER = ecker2010_path() or ECKER_FILE


def _segment(stimulus_id, trains, **annotations):
    seg = neo.Segment(name=f"trial-{stimulus_id}", stimulus_id=stimulus_id, **annotations)
    for name, times, extra in trains:
        seg.spiketrains.append(neo.SpikeTrain(np.asarray(times, dtype=float), units=extra.pop("units", "ms"),
                                              t_start=extra.pop("t_start", 0.0), t_stop=extra.pop("t_stop", 40.0),
                                              name=name, **extra))
    return seg


def _trials():
    """Three trials of two units, spikes on bin edges, at t_start and at t_stop."""
    return [
        _segment("grating-0", [("V1.a", [0.0, 9.999, 10.0, 10.0, 35.0], {"region": "V1", "channel": 4, "tetrode": 2}),
                               ("V2.b", [39.9, 40.0], {"region": "V2", "channel": 0, "tetrode": 5})],
                 orientation=0.0, contrast=100, kind="grating"),
        _segment("grating-90", [("V1.a", [], {"region": "V1", "channel": 4, "tetrode": 2}),
                                ("V2.b", [20.0, 20.5, 29.0], {"region": "V2", "channel": 0, "tetrode": 5})],
                 orientation=90.0, contrast=100, kind="grating"),
        _segment("grating-0", [("V2.b", [5.0], {"region": "V2", "channel": 0, "tetrode": 5}),  # other order
                               ("V1.a", [30.0, 31.0, 39.0], {"region": "V1", "channel": 4, "tetrode": 2})],
                 orientation=0.0, contrast=50, kind="grating"),
    ]


def test_counts_are_exact():
    ds = from_neo(_trials(), bin_size=10 * pq.ms)
    act = ds["activity"]
    assert act.dims == ("presentation", "neuroid", "time_bin") and act.shape == (3, 2, 4) and act.dtype == np.float32
    expected = np.array([
        [[2, 2, 0, 1], [0, 0, 0, 1]],  # 0 and 9.999 in bin 0; 10.0 twice in bin 1; 40.0 is t_stop, not counted
        [[0, 0, 0, 0], [0, 0, 3, 0]],
        [[0, 0, 0, 3], [1, 0, 0, 0]],  # neuroids follow the first segment's order
    ], dtype=np.float32)
    assert np.array_equal(act.values, expected)


def test_coordinates_and_units():
    ds = from_neo(_trials(), bin_size=10 * pq.ms)
    assert list(ds["stimulus_id"].values) == ["grating-0", "grating-90", "grating-0"]
    assert ds["repetition"].values.tolist() == [0, 0, 1] and ds["repetition"].dtype == np.int64
    assert ds["orientation"].values.tolist() == [0.0, 90.0, 0.0] and ds["orientation"].dtype == np.float64
    assert ds["contrast"].values.tolist() == [100, 100, 50] and ds["contrast"].dtype == np.int64
    assert ds["kind"].values.tolist() == ["grating"] * 3 and ds["kind"].dtype == object
    assert ds["neuroid_id"].values.tolist() == ["V1.a", "V2.b"]
    assert ds["region"].values.tolist() == ["V1", "V2"] and ds["channel"].values.tolist() == [4, 0]
    assert ds["tetrode"].values.tolist() == [2, 5]
    assert ds["time_bin"].values.tolist() == [0, 1, 2, 3]
    assert ds["time_bin_start"].values.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert ds["time_bin_end"].values.tolist() == [10.0, 20.0, 30.0, 40.0]
    assert ds["time_bin_start"].attrs["units"] == "ms"
    assert ds["activity"].attrs["units"] == "spikes per bin" and ds["activity"].attrs["bin_width_ms"] == 10.0
    assert (ds.attrs["t_start_ms"], ds.attrs["t_stop_ms"], ds.attrs["bin_width_ms"]) == (0.0, 40.0, 10.0)
    assert ds.attrs["converter"] == "neurorecord.interop.from_neo" and "neo" in ds.attrs["packages"]
    assert ds.sel(neuroid_id="V2.b")["activity"].shape == (3, 4)  # labels are indexed, as in open_recording


def test_units_are_converted_once():
    """The same spikes in seconds, binned with a span given in seconds and bins in ms."""
    in_ms = from_neo(_trials(), bin_size=10 * pq.ms)
    trials = _trials()
    for seg in trials:
        for i, st in enumerate(seg.spiketrains):
            seg.spiketrains[i] = neo.SpikeTrain(st.times.rescale(pq.s), t_start=st.t_start.rescale(pq.s),
                                                t_stop=st.t_stop.rescale(pq.s), name=st.name, **st.annotations)
    in_s = from_neo(trials, bin_size=0.01 * pq.s, t_start=0 * pq.s, t_stop=40 * pq.ms)
    # 0.009999 s * 1000 and 0.01 s * 1000 land on the same side of the 10 ms edge as in ms
    assert np.array_equal(in_s["activity"].values, in_ms["activity"].values)
    assert np.array_equal(in_s["time_bin_start"].values, in_ms["time_bin_start"].values)


def test_window_narrower_than_the_trains():
    ds = from_neo(_trials(), bin_size=5 * pq.ms, t_start=10 * pq.ms, t_stop=30 * pq.ms)
    assert ds["time_bin_start"].values.tolist() == [10.0, 15.0, 20.0, 25.0]
    assert ds["activity"].values[0, 0].tolist() == [2, 0, 0, 0] and ds["activity"].values[1, 1].tolist() == [0, 0, 2, 1]


def test_matches_numpy_histogram_on_random_spikes():
    rng = np.random.default_rng(0)
    segments, times = [], []
    for p in range(6):
        seg = neo.Segment(stimulus_id=f"s{p % 2}")
        for u in range(5):
            t = np.sort(rng.uniform(-200, 700, rng.integers(0, 80)))
            times.append(t)
            seg.spiketrains.append(neo.SpikeTrain(t, units="ms", t_start=-200, t_stop=700, name=f"u{u}"))
        segments.append(seg)
    block = neo.Block(name="random")
    block.segments.extend(segments)
    ds = from_neo(block, bin_size=10 * pq.ms)
    edges = np.arange(-200, 701, 10.0)
    expected = np.array([np.histogram(t, edges)[0] for t in times]).reshape(6, 5, 90)
    assert np.array_equal(ds["activity"].values, expected)
    assert ds.attrs["block_name"] == "random"


def test_identity_from_annotations_or_position():
    seg = neo.Segment(stimulus_id="a")
    seg.spiketrains.append(neo.SpikeTrain([1.0], units="ms", t_stop=10, name="x", neuroid_id="LGN.7", region="LGN"))
    ds = from_neo([seg], bin_size=10 * pq.ms)
    assert ds["neuroid_id"].values.tolist() == ["LGN.7"] and ds["region"].values.tolist() == ["LGN"]
    plain = neo.Segment(stimulus_id="a")
    plain.spiketrains.extend([neo.SpikeTrain([1.0], units="ms", t_stop=10), neo.SpikeTrain([], units="ms", t_stop=10)])
    ds = from_neo(plain, bin_size=10 * pq.ms)  # one Segment works too
    assert ds["neuroid_id"].values.tolist() == ["unknown.0", "unknown.1"]
    assert ds["region"].values.tolist() == ["unknown"] * 2 and ds["channel"].values.tolist() == [0, 1]
    ds = from_neo([plain], bin_size=10 * pq.ms, region="V4")
    assert ds["neuroid_id"].values.tolist() == ["V4.0", "V4.1"]


def test_parameters_and_annotations_can_be_chosen():
    ds = from_neo(_trials(), bin_size=10 * pq.ms, parameters=["orientation"], neuroid_annotations=[])
    assert "contrast" not in ds.coords and "kind" not in ds.coords and "orientation" in ds.coords
    assert "tetrode" not in ds.coords and {"region", "channel", "neuroid_id"} <= set(ds.coords)
    trials = _trials()
    trials[1].annotations["stimulus_name"] = trials[1].annotations.pop("stimulus_id")
    for seg in trials[::2]:
        seg.annotations["stimulus_name"] = seg.annotations.pop("stimulus_id")
    ds = from_neo(trials, bin_size=10 * pq.ms, stimulus_key="stimulus_name")
    assert ds["stimulus_id"].values.tolist() == ["grating-0", "grating-90", "grating-0"]
    assert "stimulus_name" not in ds.coords
    trials[2].annotations["pupil"] = 3.5  # present on one segment only: NaN elsewhere
    ds = from_neo(trials, bin_size=10 * pq.ms, stimulus_key="stimulus_name")
    assert np.isnan(ds["pupil"].values[:2]).all() and ds["pupil"].values[2] == 3.5


def _error_case(name):
    trials = _trials()
    kwargs = {"bin_size": 10 * pq.ms}
    if name == "no-stimulus":
        del trials[1].annotations["stimulus_id"]
    elif name == "bin-float":
        kwargs["bin_size"] = 10
    elif name == "bin-dimensionless":
        kwargs["bin_size"] = 10 * pq.dimensionless
    elif name == "bin-negative":
        kwargs["bin_size"] = -10 * pq.ms
    elif name == "span":
        kwargs["bin_size"] = 15 * pq.ms
    elif name == "missing-neuroid":
        trials[2].spiketrains.pop(0)
    elif name == "twice":
        trials[0].spiketrains.append(neo.SpikeTrain([1.0], units="ms", t_stop=40, name="V1.a"))
    elif name == "changing":
        trials[1].spiketrains[0].annotations["tetrode"] = 3
    elif name == "t-start":
        trials[1].spiketrains[0] = neo.SpikeTrain([], units="ms", t_start=-5, t_stop=40, name="V1.a", region="V1",
                                                  channel=4, tetrode=2)
    elif name == "not-segment":
        trials[1] = "trial 2"
    elif name == "empty":
        trials = []
    elif name == "not-a-list":
        trials = 3
    elif name == "mixed":
        trials[1].annotations["contrast"] = "high"
    elif name == "unknown-parameter":
        kwargs["parameters"] = ["speed"]
    elif name == "clash":
        trials[0].spiketrains[0].annotations["contrast"] = 1
    elif name == "positional-mismatch":
        for seg in trials:
            for st in seg.spiketrains:
                st.name = None
        trials[0].spiketrains.pop()
    return trials, kwargs


ERRORS = [
    ("no-stimulus", r"segment 1 \('trial-grating-90'\) has no 'stimulus_id' annotation .*found: contrast, kind, orientation"),
    ("bin-float", r"bin_size: expected a time quantity such as 10 \* pq\.ms, found 10"),
    ("bin-dimensionless", r"bin_size: expected a time quantity such as 10 \* pq\.ms, found units dimensionless"),
    ("bin-negative", r"bin_size: must be positive"),
    ("span", r"the span \[0, 40\) ms is not a whole, positive number of 15 ms bins"),
    ("missing-neuroid", r"segment 2 \('trial-grating-0'\) has no spike train for neuroid\(s\) 'V2.b'"),
    ("twice", r"segment 0 \('trial-grating-0'\) holds neuroid 'V1.a' twice"),
    ("changing", r"neuroid 'V1.a' has annotation 'tetrode' = 2 in one segment and 3 in segment 1"),
    ("t-start", r"t_start: the spike trains disagree \(-5, 0 ms\) by more than 1e-06 of a bin; pass t_start explicitly"),
    ("not-segment", r"segments: element 1 is a str, expected a neo.Segment"),
    ("empty", r"segments: no segments given"),
    ("not-a-list", r"segments: expected a neo.Block, a neo.Segment or a sequence of neo.Segment, found int"),
    ("mixed", r"segment annotation 'contrast': mixes text and numbers"),
    ("unknown-parameter", r"parameters: no segment has the annotation 'speed'"),
    ("clash", r"annotation\(s\) 'contrast' would name two coordinates"),
    ("positional-mismatch", r"no neuroid_id annotation or name .* different numbers of them \(\[1, 2\]\)"),
]


@pytest.mark.parametrize("name, message", ERRORS, ids=[n for n, _ in ERRORS])
def test_errors_say_what_and_where(name, message):
    trials, kwargs = _error_case(name)
    with pytest.raises(InteropError, match=message):
        from_neo(trials, **kwargs)


# ------------------------------------------------------------------ round trip through Neo


def _session_to_neo(ds: xr.Dataset) -> list[neo.Segment]:
    """Test-only helper: one Segment per presentation, one SpikeTrain per neuroid, each count of a
    bin written as that many spikes at the bin's centre (ms, relative to onset)."""
    counts = ds["activity"].values.astype(np.int64)
    centres = (ds["time_bin_start"].values + ds["time_bin_end"].values) / 2
    t_start, t_stop = float(ds["time_bin_start"].values[0]), float(ds["time_bin_end"].values[-1])
    neuroids = [{k: ds[k].values[n].item() if hasattr(ds[k].values[n], "item") else ds[k].values[n]
                 for k in ("region", "channel", "session", "subject", "tetrode", "contamination")}
                for n in range(ds.sizes["neuroid"])]
    segments = []
    for p in range(ds.sizes["presentation"]):
        seg = neo.Segment(name=f"trial {p}", stimulus_id=str(ds["stimulus_id"].values[p]),
                          direction=float(ds["direction"].values[p]), contrast=float(ds["contrast"].values[p]),
                          condition=int(ds["condition"].values[p]), repetition=int(ds["repetition"].values[p]))
        for n, annotations in enumerate(neuroids):
            seg.spiketrains.append(neo.SpikeTrain(np.repeat(centres, counts[p, n]), units="ms", t_start=t_start,
                                                  t_stop=t_stop, name=str(ds["neuroid_id"].values[n]), **annotations))
        segments.append(seg)
    return segments


@pytest.mark.skipif(not ECKER.is_file(), reason=f"Ecker 2010 data file not found at {ECKER}")
@pytest.mark.parametrize("session", [23, 25])
def test_ecker_session_round_trip(session):
    """Session 25 has dropped trial slots, so its repetitions come from the annotations."""
    original = read_ecker2010(ECKER, sessions=[session])[f"session{session:02d}"].to_dataset()
    back = from_neo(_session_to_neo(original), bin_size=10 * pq.ms)
    xr.testing.assert_equal(back, original)  # values of activity and of every coordinate
    assert set(back.coords) == set(original.coords) and back["activity"].dims == original["activity"].dims
    for name, var in original.variables.items():
        assert back[name].dtype == var.dtype, name
    assert back["activity"].attrs["units"] == original["activity"].attrs["units"] == "spikes per bin"
    assert back.attrs["bin_width_ms"] == original.attrs["bin_width_ms"] == 10.0


# ------------------------------------------------------------- trials cut from a continuous session


def _cut_session(seed=1):
    """A 20 s session of three units and seven 0.7 s trials, cut as neo's own utility cuts it
    (times relative to each trial's onset, ``t_stop`` carrying float noise)."""
    from neo.utils import cut_segment_by_epoch

    rng = np.random.default_rng(seed)
    session = neo.Segment(name="session")
    for u in range(3):
        session.spiketrains.append(neo.SpikeTrain(np.sort(rng.uniform(0, 20, 300)), units="s", t_stop=20, name=f"V1.u{u}",
                                                  region="V1"))
    onsets = np.array([0.13, 1.37, 2.71, 3.93, 5.11, 7.77, 9.03])
    stimuli = np.array(["grating-0", "grating-90"] * 3 + ["grating-0"])
    epoch = neo.Epoch(times=onsets * pq.s, durations=np.full(len(onsets), 0.7) * pq.s,
                      array_annotations={"stimulus_id": stimuli, "orientation": np.array([0.0, 90.0] * 3 + [0.0])})
    return cut_segment_by_epoch(session, epoch, reset_time=True)


@pytest.mark.filterwarnings("ignore:The 'copy' argument in Quantity is deprecated")  # inside elephant
def test_trials_cut_by_epoch_bin_like_elephant():
    trials = _cut_session()
    stops = {float(st.t_stop.rescale(pq.s).magnitude) for seg in trials for st in seg.spiketrains}
    assert len(stops) > 1 and max(stops) - min(stops) < 1e-12  # float noise, the case under test
    ds = from_neo(trials, bin_size=50 * pq.ms)
    assert ds["activity"].shape == (7, 3, 14)
    assert ds.attrs["t_stop_ms"] == 700.0 and ds["time_bin_end"].values[-1] == 700.0
    assert ds["stimulus_id"].values.tolist() == ["grating-0", "grating-90"] * 3 + ["grating-0"]
    assert ds["orientation"].values.tolist() == [0.0, 90.0] * 3 + [0.0]
    assert ds["repetition"].values.tolist() == [0, 0, 1, 1, 2, 2, 3]
    edges = np.arange(0, 701, 50.0)
    for p, seg in enumerate(trials):
        for st in seg.spiketrains:
            times = st.times.rescale(pq.ms).magnitude
            assert np.array_equal(ds["activity"].sel(neuroid_id=st.name).values[p], np.histogram(times, edges)[0])
    assert ds["activity"].values.sum() == sum(len(st) for seg in trials for st in seg.spiketrains) > 0
    elephant = pytest.importorskip("elephant.conversion")
    for p, seg in enumerate(trials):
        binned = elephant.BinnedSpikeTrain(seg.spiketrains, bin_size=50 * pq.ms, t_start=0 * pq.s, t_stop=0.7 * pq.s)
        assert np.array_equal(ds["activity"].values[p], binned.to_array())


def test_span_disagreements_larger_than_float_noise_are_refused():
    trials = _cut_session()
    st = trials[3].spiketrains[1]
    trials[3].spiketrains[1] = neo.SpikeTrain(st.times, t_start=st.t_start, t_stop=0.70001 * pq.s, name=st.name, region="V1")
    with pytest.raises(InteropError, match=r"t_stop: the spike trains disagree \(700, 700\.01 ms\) by more than .* of a bin"):
        from_neo(trials, bin_size=50 * pq.ms)
    ds = from_neo(trials, bin_size=50 * pq.ms, t_stop=700 * pq.ms)  # an explicit span settles it
    assert ds["activity"].shape == (7, 3, 14)


# --------------------------------------------------------------------------- quantity annotations


def test_quantity_annotations_keep_magnitude_and_units():
    trials = _trials()
    trials[0].annotate(direction=90 * pq.deg, speed=2.0 * pq.Hz)
    trials[1].annotate(direction=np.pi * pq.rad, speed=2.0 * pq.Hz)  # rescaled to the first segment's deg
    trials[2].annotate(direction=pq.Quantity([45.0], "deg"), speed=pq.Quantity(4.0, "1/s"))
    for seg in trials:
        for st in seg.spiketrains:
            st.annotate(depth=(1500 * pq.um) if st.name == "V1.a" else (0.2 * pq.cm))
    ds = from_neo(trials, bin_size=10 * pq.ms)
    assert ds["direction"].values.tolist() == pytest.approx([90.0, 180.0, 45.0], abs=1e-12)
    assert ds["direction"].dtype == np.float64 and ds["direction"].attrs["units"] == "deg"
    assert ds["speed"].values.tolist() == [2.0, 2.0, 4.0] and ds["speed"].attrs["units"] == "Hz"
    assert ds["depth"].values.tolist() == pytest.approx([1500.0, 2000.0]) and ds["depth"].attrs["units"] == "um"
    assert "units" not in ds["orientation"].attrs
    chosen = from_neo(trials, bin_size=10 * pq.ms, parameters=["direction"], neuroid_annotations=["depth"])
    assert chosen["direction"].attrs["units"] == "deg" and chosen["depth"].attrs["units"] == "um"


QUANTITY_ERRORS = [
    ("incompatible", r"segment annotation 'direction': segment 1 \('trial-grating-90'\) has units s, which do not convert "
                     r"to deg \(the units of segment 0"),
    ("mixed", r"segment annotation 'direction': segment 1 \('trial-grating-90'\) holds 180\.0 without units, and "
              r"segment 0 \('trial-grating-0'\) a quantity in deg; give every value with units, or none"),
    ("array", r"segment annotation 'direction': expected scalar values .*found Quantity of shape \(2,\)"),
]


@pytest.mark.parametrize("name, message", QUANTITY_ERRORS, ids=[n for n, _ in QUANTITY_ERRORS])
def test_quantity_annotation_errors(name, message):
    trials = _trials()
    trials[0].annotate(direction=90 * pq.deg)
    trials[1].annotate(direction={"incompatible": 2 * pq.s, "mixed": 180.0, "array": [1.0, 2.0] * pq.deg}[name])
    trials[2].annotate(direction=0 * pq.deg)
    with pytest.raises(InteropError, match=message):
        from_neo(trials, bin_size=10 * pq.ms, parameters=["direction"] if name == "array" else None)
