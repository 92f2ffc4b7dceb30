"""Recording to Neo: exact signal round trips, Poisson spikes that give back the rates, the same
spikes as elephant's generator and the same counts as elephant's binning, structure, errors."""

from __future__ import annotations

import warnings

import neo
import numpy as np
import pytest
import quantities as pq
import scipy.stats
import xarray as xr

import neurorecord
from neurorecord.interop import InteropError, from_neo, to_neo
from neurorecord.interop import neo_export

elephant = pytest.importorskip("elephant")
from elephant.conversion import BinnedSpikeTrain  # noqa: E402
from elephant.spike_train_generation import NonStationaryPoissonProcess  # noqa: E402
from elephant.statistics import mean_firing_rate, time_histogram  # noqa: E402

#: Largest |z| of a Poisson count against its mean that a test accepts: two-sided p ~ 7e-6 per
#: test under the normal approximation, so the whole file stays far below one false alarm in 1000 runs.
Z_MAX = 4.5


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """The default protocol (digits MLP, 454 digits x fc1/fc2/fc3) without its analyses (not needed here)."""
    protocol = neurorecord.load_protocol(neurorecord.default_protocol_path()).model_copy(update={"analyses": []})
    return neurorecord.run(protocol, tmp_path_factory.mktemp("neo") / "d", quiet=True)


def time_resolved(n_presentations: int = 12, seed: int = 0) -> xr.DataArray:
    """A hand-built time-resolved region: 8 bins of 25 ms from -50 ms, a coordinate with units."""
    rng = np.random.default_rng(seed)
    starts = -50.0 + 25.0 * np.arange(8)
    values = rng.gamma(2.0, 1.5, size=(n_presentations, 3, 8)).astype(np.float32)
    values[:, 2] -= 4.0  # mostly negative: fires rarely
    return xr.DataArray(values, dims=("presentation", "neuroid", "time_bin"), attrs={"units": "a.u."}, coords={
        "stimulus_id": ("presentation", [f"g{p % 4}" for p in range(n_presentations)]),
        "orientation": ("presentation", 45.0 * (np.arange(n_presentations) % 4), {"units": "deg"}),
        "neuroid_id": ("neuroid", ["gru.0", "gru.1", "gru.2"]), "region": ("neuroid", ["gru"] * 3),
        "channel": ("neuroid", [0, 1, 2]), "time_bin": ("time_bin", np.arange(8)),
        "time_bin_start": ("time_bin", starts, {"units": "ms"}), "time_bin_end": ("time_bin", starts + 25.0, {"units": "ms"}),
    })


def test_static_signals_round_trip_exactly(recording):
    block = to_neo(recording, regions=["fc1", "fc3"], presentations=slice(0, 30))
    assert [seg.index for seg in block.segments] == list(range(30))
    assert block.annotations["protocol_sha256"] == recording.attrs["protocol_sha256"]
    assert block.annotations["subject"] == "digits-mlp" and block.annotations["activity_units"] == "a.u."
    assert [g.name for g in block.groups] == ["fc1", "fc3"] and len(block.groups[0].analogsignals) == 30
    sig = block.segments[4].analogsignals[1]
    assert sig.name == "fc3" and sig.shape == (1, 100) and sig.sampling_period == 100 * pq.ms and sig.t_start == 0 * pq.ms
    assert sig.array_annotations["neuroid_id"][7] == "fc3.7" and sig.array_annotations["region"][0] == "fc3"

    back = from_neo(block, bin_size=100 * pq.ms)
    want = xr.concat([recording[r]["activity"].isel(presentation=slice(0, 30)) for r in ("fc1", "fc3")], "neuroid")
    np.testing.assert_array_equal(back["activity"].values[:, :, 0], want.values)
    for name in ("stimulus_id", "label", "repetition", "digit_index", "stimulus_set"):
        assert back[name].values.tolist() == want[name].values.tolist(), name
    for name in ("neuroid_id", "region", "channel"):
        assert back[name].values.tolist() == want[name].values.tolist(), name


def test_time_resolved_signals_round_trip_exactly():
    x = time_resolved()
    back = from_neo(to_neo(x), bin_size=25 * pq.ms)
    np.testing.assert_array_equal(back["activity"].values, x.values)
    np.testing.assert_array_equal(back["time_bin_start"].values, x["time_bin_start"].values)
    assert back["orientation"].values.tolist() == x["orientation"].values.tolist()
    assert back["orientation"].attrs["units"] == "deg"
    assert back["repetition"].values.tolist() == [p // 4 for p in range(12)]  # counted: earlier showings


def test_poisson_spikes_give_back_the_rates_within_poisson_error(recording):
    gain, seconds = 20.0, 1.0
    units = [f"fc2.{i}" for i in range(25)]
    block = to_neo(recording, units=units, presentations=slice(0, 80), as_="spikes", gain=gain, time_bin=1000 * seconds)
    counts = from_neo(block, bin_size=1000 * seconds * pq.ms)["activity"].values[:, :, 0].astype(np.float64)
    activity = recording["fc2"]["activity"].sel(neuroid_id=units).isel(presentation=slice(0, 80)).values
    expected = gain * np.clip(activity, 0, None) * seconds  # Poisson means
    assert np.all(counts[expected == 0] == 0)  # rate 0 (negative activity clipped): no spike at all
    total, mean = counts.sum(0), expected.sum(0)
    fires = mean > 0
    z = (total[fires] - mean[fires]) / np.sqrt(mean[fires])
    assert np.abs(z).max() < Z_MAX, z
    # and per presentation, where counts are large enough for the normal approximation
    big = expected >= 20
    assert big.sum() > 100
    z_cells = (counts[big] - expected[big]) / np.sqrt(expected[big])
    # z^2 has mean 1 and variance 2 + 1/mean (Poisson excess kurtosis): its average, to Z_MAX standard errors
    assert np.abs(z_cells).max() < Z_MAX + 0.5
    assert abs(np.mean(z_cells ** 2) - 1) < Z_MAX * np.sqrt(np.mean(2 + 1 / expected[big]) / big.sum())
    # rates come back in spikes/s per unit of activation
    np.testing.assert_allclose(counts.sum() / seconds / gain, np.clip(activity, 0, None).sum(), rtol=0.02)


def test_spike_generator_matches_elephants_non_stationary_poisson_process():
    """Same rate profile and refractory period: the same count per bin and ISI distribution."""
    rates_hz = np.array([10.0, 80.0, 150.0, 0.0, 40.0])  # five 50 ms bins
    n_trains, refractory = 400, 4.0
    x = xr.DataArray(np.tile(rates_hz, (n_trains, 1))[:, None, :].astype(np.float32), dims=("presentation", "neuroid", "time_bin"),
                     coords={"stimulus_id": ("presentation", ["s"] * n_trains), "neuroid_id": ("neuroid", ["u.0"]),
                             "time_bin_start": ("time_bin", 50.0 * np.arange(5)), "time_bin_end": ("time_bin", 50.0 * np.arange(1, 6))})
    ours = [seg.spiketrains[0] for seg in to_neo(x, as_="spikes", gain=1.0, refractory=refractory, seed=3).segments]
    rate = neo.AnalogSignal(rates_hz[:, None], units="Hz", sampling_period=50 * pq.ms, t_start=0 * pq.ms)
    state = np.random.get_state()
    try:
        np.random.seed(3)
        theirs = NonStationaryPoissonProcess(rate, refractory_period=refractory * pq.ms).generate_n_spiketrains(n_trains)
    finally:
        np.random.set_state(state)

    def binned(trains):
        return BinnedSpikeTrain(trains, bin_size=50 * pq.ms, t_start=0 * pq.ms, t_stop=250 * pq.ms).to_array().astype(float)

    a, b = binned(ours), binned(theirs)
    z = (a.mean(0) - b.mean(0)) / np.sqrt(a.var(0) / n_trains + b.var(0) / n_trains + 1e-12)
    assert np.abs(z).max() < Z_MAX, z
    assert a[:, 3].sum() == 0 and b[:, 3].sum() == 0  # a 0 Hz bin is silent in both
    isi_ours = np.concatenate([np.diff(t.rescale("ms").magnitude) for t in ours])
    isi_theirs = np.concatenate([np.diff(t.rescale("ms").magnitude) for t in theirs])
    assert isi_ours.min() > refractory and isi_theirs.min() > refractory
    assert scipy.stats.ks_2samp(isi_ours, isi_theirs).pvalue > 1e-4


def test_spike_counts_equal_elephants_binning_and_statistics_run_on_the_trains():
    x = time_resolved(n_presentations=10)
    block = to_neo(x, as_="spikes", gain=30.0, seed=5)
    counts = from_neo(block, bin_size=25 * pq.ms)["activity"].values
    assert counts.sum() > 100
    for u, unit in enumerate(block.groups[0].groups):  # one Group per neuroid: its trains across trials
        assert unit.name == f"gru.{u}" and len(unit.spiketrains) == 10
        binned = BinnedSpikeTrain(unit.spiketrains, bin_size=25 * pq.ms, t_start=-50 * pq.ms, t_stop=150 * pq.ms).to_array()
        np.testing.assert_array_equal(binned, counts[:, u, :])
        hist = time_histogram(unit.spiketrains, bin_size=25 * pq.ms, t_start=-50 * pq.ms, t_stop=150 * pq.ms)
        np.testing.assert_array_equal(hist.magnitude[:, 0], counts[:, u, :].sum(0))
        for p, train in enumerate(unit.spiketrains):
            rate = mean_firing_rate(train).rescale("Hz").magnitude
            np.testing.assert_allclose(rate, counts[p, u].sum() / 0.2)


def test_same_seed_same_spikes_and_refractory_period_holds():
    x = time_resolved()
    one, two = (to_neo(x, as_="spikes", gain=30.0, seed=7) for _ in range(2))
    other = to_neo(x, as_="spikes", gain=30.0, seed=8)

    def flat(block):
        return np.concatenate([st.magnitude for seg in block.segments for st in seg.spiketrains])

    np.testing.assert_array_equal(flat(one), flat(two))
    assert flat(one).shape != flat(other).shape or not np.array_equal(flat(one), flat(other))
    refr = to_neo(x, as_="spikes", gain=30.0, seed=7, refractory=2.0)
    for seg in refr.segments:
        for st in seg.spiketrains:
            assert np.all(np.diff(st.magnitude) > 2.0) and st.annotations["region"] == "gru"
            assert st.t_start == -50 * pq.ms and st.t_stop == 150 * pq.ms
            assert np.all((st.magnitude >= -50) & (st.magnitude < 150))


def test_large_conversions_warn_with_the_count_and_how_to_subset(monkeypatch):
    x = time_resolved()
    monkeypatch.setattr(neo_export, "WARN_OBJECTS", 30)
    with pytest.warns(UserWarning, match=r"36 SpikeTrain objects \(12 presentations x 3 neuroids\).*pass regions=, units= or presentations="):
        to_neo(x, as_="spikes")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_neo(x, as_="spikes", units=["gru.0", "gru.1"])  # 24 objects: quiet
        to_neo(x)  # 12 signals: quiet


@pytest.mark.parametrize("kwargs, match", [
    ({"regions": ["fc4"]}, r"regions: no region 'fc4' in the recording; regions: 'fc1', 'fc2', 'fc3' \(did you mean 'fc3'\?\)"),
    ({"units": ["fc1.100"]}, r"units: no neuroid 'fc1.100' in the chosen regions"),
    ({"presentations": ["digits-9999"]}, r"presentations: no stimulus_id 'digits-9999' in the recording"),
    ({"presentations": [454]}, r"presentations: position 454 is out of range for 454 presentations"),
    ({"as_": "spike"}, r"as_: expected one of 'analog', 'spikes', found 'spike' \(did you mean 'spikes'\?\)"),
    ({"gain": -1.0}, r"gain: expected a number >= 0, found -1.0"),
    ({"time_bin": 0.0}, r"time_bin: expected a number > 0 or None, found 0.0"),
    ({"as_": "spikes", "regions": ["fc3"], "presentations": [0], "gain": 200.0, "refractory": 5.0},
     r"refractory: a refractory period of 5 ms allows at most 200 spikes/s, but a rate reaches"),
])
def test_bad_arguments_are_named(recording, kwargs, match):
    with pytest.raises(InteropError, match=match):
        to_neo(recording, **kwargs)


def test_bad_recordings_are_refused():
    with pytest.raises(InteropError, match=r"recording: expected an xarray.DataTree .* found ndarray"):
        to_neo(np.zeros((2, 2)))
    with pytest.raises(InteropError, match=r"time_bin: 10 ms contradicts the recording's time bins of 25 ms"):
        to_neo(time_resolved(), time_bin=10.0)
    x = time_resolved()
    uneven = x.assign_coords(time_bin_end=("time_bin", x["time_bin_end"].values + np.r_[np.zeros(7), 5.0], {"units": "ms"}))
    with pytest.raises(InteropError, match=r"not contiguous bins of one width"):
        to_neo(uneven)
    with pytest.raises(InteropError, match=r"region 'gru' has no 'stimulus_id' coordinate on 'presentation'"):
        to_neo(x.drop_vars("stimulus_id"))
    with pytest.raises(InteropError, match=r"activity holds NaN"):
        to_neo(x.where(x.time_bin != 3), as_="spikes")
