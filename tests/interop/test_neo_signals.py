"""Neo to recording for segments that hold ``AnalogSignal`` objects: each channel is a neuroid,
each bin the mean of the samples in it, checked against means worked out by hand."""

from __future__ import annotations

import warnings

import neo
import numpy as np
import pytest
import quantities as pq

from neurorecord.interop import InteropError, from_neo


def _signal(values, *, units="mV", rate=1 * pq.kHz, t_start=0 * pq.ms, **array_annotations):
    return neo.AnalogSignal(np.asarray(values, dtype=float), units=units, sampling_rate=rate, t_start=t_start,
                            array_annotations=array_annotations or None)


def _lfp_trials():
    """Two trials of one 2-channel signal sampled at 1 kHz for 40 ms: a ramp and its square."""
    i = np.arange(40.0)
    first = neo.Segment(name="trial 0", stimulus_id="grating-0", orientation=0.0)
    first.analogsignals.append(_signal(np.column_stack([i, i ** 2]), neuroid_id=np.array(["V1.e1", "V1.e2"])))
    second = neo.Segment(name="trial 1", stimulus_id="grating-90", orientation=90.0)
    # the same signal written in microvolts, and reversed in time: rescaled to mV once, at the edge
    second.analogsignals.append(_signal(1000 * np.column_stack([i, i ** 2])[::-1], units="uV",
                                        neuroid_id=np.array(["V1.e1", "V1.e2"])))
    return [first, second]


def test_bin_means_by_hand():
    ds = from_neo(_lfp_trials(), bin_size=10 * pq.ms)
    act = ds["activity"]
    assert act.dims == ("presentation", "neuroid", "time_bin") and act.shape == (2, 2, 4) and act.dtype == np.float32
    # ramp: samples 0..9 -> 4.5, 10..19 -> 14.5, ...; square: (0+1+4+...+81)/10 = 28.5, (100+...+361)/10 = 218.5, ...
    ramp = [4.5, 14.5, 24.5, 34.5]
    square = [28.5, 218.5, 608.5, 1198.5]
    assert act.values[0].tolist() == [ramp, square]
    assert act.values[1].tolist() == [ramp[::-1], square[::-1]]
    assert act.attrs["units"] == "mV" and act.attrs["bin_width_ms"] == 10.0
    assert ds["neuroid_id"].values.tolist() == ["V1.e1", "V1.e2"]
    assert ds["time_bin_start"].values.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert ds["stimulus_id"].values.tolist() == ["grating-0", "grating-90"]
    assert ds["orientation"].values.tolist() == [0.0, 90.0]
    assert ds.attrs["neo_objects"] == "AnalogSignal"
    assert (ds.attrs["t_start_ms"], ds.attrs["t_stop_ms"]) == (0.0, 40.0)


def test_bins_that_are_not_a_whole_number_of_samples():
    """Samples every 2 ms, 5 ms bins: [0, 5) holds the samples at 0, 2, 4 and [5, 10) those at 6, 8."""
    seg = neo.Segment(stimulus_id="a")
    seg.analogsignals.append(_signal(np.arange(10.0) ** 2, rate=500 * pq.Hz, units="uV"))
    ds = from_neo(seg, bin_size=5 * pq.ms, region="LGN")
    expected = [(0 + 1 + 4) / 3, (9 + 16) / 2, (25 + 36 + 49) / 3, (64 + 81) / 2]
    assert ds["activity"].values[0, 0].tolist() == pytest.approx(expected, rel=1e-7)
    assert ds["activity"].attrs["units"] == "uV"
    assert ds["neuroid_id"].values.tolist() == ["LGN.0"] and ds["channel"].values.tolist() == [0]
    window = from_neo(seg, bin_size=5 * pq.ms, t_start=5 * pq.ms, t_stop=15 * pq.ms)
    assert window["activity"].values[0, 0].tolist() == pytest.approx(expected[1:3], rel=1e-7)


def test_channels_named_by_their_array_annotations():
    seg = neo.Segment(stimulus_id="a")
    sig = _signal(np.ones((20, 3)), channel_ids=np.array([3, 7, 9]), channel_names=np.array(["ch3", "ch7", "ch9"]))
    sig.annotate(region="V4")
    seg.analogsignals.append(sig)
    ds = from_neo([seg], bin_size=10 * pq.ms)
    assert ds["neuroid_id"].values.tolist() == ["V4.3", "V4.7", "V4.9"]
    assert ds["channel"].values.tolist() == [3, 7, 9] and ds["region"].values.tolist() == ["V4"] * 3
    assert ds["channel_names"].values.tolist() == ["ch3", "ch7", "ch9"]
    assert ds["activity"].values.tolist() == [[[1.0, 1.0]] * 3]


def test_trials_cut_by_epoch():
    """Signals cut by neo's own utility: t_start and t_stop carry float noise; bins are exact."""
    from neo.utils import cut_segment_by_epoch

    session = neo.Segment()
    session.analogsignals.append(_signal(np.arange(20000.0), rate=1 * pq.kHz, t_start=0 * pq.s, neuroid_id=np.array(["V1.lfp"])))
    onsets = np.array([0.13, 1.37, 7.77])
    epoch = neo.Epoch(times=onsets * pq.s, durations=np.full(3, 0.7) * pq.s,
                      array_annotations={"stimulus_id": np.array(["a", "b", "a"])})
    trials = cut_segment_by_epoch(session, epoch, reset_time=True)
    assert len({float(seg.analogsignals[0].t_start.magnitude) for seg in trials}) > 1  # float noise
    ds = from_neo(trials, bin_size=100 * pq.ms)
    first = onsets * 1000  # the sample value is its index, i.e. its time in ms from the session's start
    expected = [[f + 100 * b + 49.5 for b in range(7)] for f in first]
    np.testing.assert_allclose(ds["activity"].values[:, 0], expected, rtol=0, atol=1e-3)


def test_spike_trains_win_over_signals_with_a_warning():
    seg = neo.Segment(stimulus_id="a")
    seg.spiketrains.append(neo.SpikeTrain([1.0, 2.0], units="ms", t_stop=20, name="u0"))
    seg.analogsignals.append(_signal(np.ones((20, 1))))
    with pytest.warns(UserWarning, match=r"segments hold both spike trains and analog signals; binning the spike trains.*source='analogsignals'"):
        ds = from_neo(seg, bin_size=10 * pq.ms)
    assert ds["activity"].attrs["units"] == "spikes per bin"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spikes = from_neo(seg, bin_size=10 * pq.ms, source="spiketrains")
        signals = from_neo(seg, bin_size=10 * pq.ms, source="analogsignals")
    assert spikes["activity"].values.tolist() == [[[2.0, 0.0]]]
    assert signals["activity"].values.tolist() == [[[1.0, 1.0]]] and signals["activity"].attrs["units"] == "mV"


def _error_case(name):
    seg = neo.Segment(name="t0", stimulus_id="a")
    kwargs = {"bin_size": 10 * pq.ms}
    if name == "nothing":
        seg.irregularlysampledsignals.append(neo.IrregularlySampledSignal([1, 2] * pq.ms, [1.0, 2.0], units="mV"))
    elif name == "short-bins":
        seg.analogsignals.append(_signal(np.ones(10), rate=100 * pq.Hz))
        kwargs["bin_size"] = 5 * pq.ms
    elif name == "beyond":
        seg.analogsignals.append(_signal(np.ones(40)))
        kwargs["t_stop"] = 50 * pq.ms
    elif name == "units":
        seg.analogsignals.append(_signal(np.ones((40, 1)), neuroid_id=np.array(["x"])))
        other = neo.Segment(name="t1", stimulus_id="b")
        other.analogsignals.append(_signal(np.ones((40, 1)), units="s", neuroid_id=np.array(["x"])))
        return [seg, other], kwargs
    elif name == "source":
        seg.analogsignals.append(_signal(np.ones(40)))
        kwargs["source"] = "lfp"
    elif name == "no-spikes":
        seg.analogsignals.append(_signal(np.ones(40)))
        kwargs["source"] = "spiketrains"
    return [seg], kwargs


ERRORS = [
    ("nothing", r"segments: no spike trains and no analog signals to bin \(found 1 irregularly sampled signal\(s\)"),
    ("short-bins", r"bin_size: 5 ms bins are shorter than the sampling period \(10 ms\) of analog signal 0 in segment 0 "
                   r"\('t0'\): some bins hold no sample"),
    ("beyond", r"t_start, t_stop: the span \[0, 50\) ms reaches beyond analog signal 0 in segment 0 \('t0'\), "
               r"which covers \[0, 40\) ms"),
    ("units", r"analog signal 0 in segment 1 \('t1'\) has units s, which do not convert to mV \(the units of the first"),
    ("source", r"source: expected one of 'auto', 'spiketrains', 'analogsignals', found 'lfp'"),
    ("no-spikes", r"segments: no spike trains to bin \(found 1 analog signal\(s\)\); pass source='analogsignals'"),
]


@pytest.mark.parametrize("name, message", ERRORS, ids=[n for n, _ in ERRORS])
def test_errors_say_why(name, message):
    segments, kwargs = _error_case(name)
    with pytest.raises(InteropError, match=message):
        from_neo(segments, **kwargs)
