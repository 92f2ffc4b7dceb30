"""Brain-Score assembly layout: dims, MultiIndex levels with their coordinate names, selection
by stimulus and neuroid, identifiers, time bins, and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neurorecord.errors import InteropError
from neurorecord.interop import to_brainscore_assembly
from tests.compare.synthetic import planted, recording


@pytest.fixture
def activity():
    act = recording(planted(4, 5), n_rep=2, seed=0)
    return act.assign_coords(stimulus_set=("presentation", ["gratings"] * act.sizes["presentation"]))


def test_layout_multiindex_and_selection(activity):
    assembly = to_brainscore_assembly(activity)
    assert assembly.dims == ("presentation", "neuroid")
    presentation, neuroid = assembly.indexes["presentation"], assembly.indexes["neuroid"]
    assert isinstance(presentation, pd.MultiIndex) and isinstance(neuroid, pd.MultiIndex)
    assert list(presentation.names) == ["stimulus_id", "repetition", "label", "stimulus_set"]
    assert list(neuroid.names) == ["neuroid_id", "region"]
    np.testing.assert_array_equal(assembly.values, activity.values)
    one = assembly.sel(stimulus_id="s002")
    np.testing.assert_array_equal(one.values, activity.values[activity.stimulus_id.values == "s002"])
    unit = assembly.sel(neuroid_id="v1.3")  # a level selected: the dim stays, with the other levels
    np.testing.assert_array_equal(unit.values[:, 0], activity.values[:, 3])
    assert assembly.attrs["identifier"] == "neurorecord.v1"
    assert assembly.attrs["stimulus_set_identifier"] == "gratings"
    assert assembly.attrs["units"] == "spikes"
    flat = assembly.reset_index(["presentation", "neuroid"])  # back to plain coords, same labels
    assert flat.stimulus_id.values.tolist() == activity.stimulus_id.values.tolist()
    assert activity.indexes == {} or "presentation" not in activity.indexes  # the input is not changed


def test_identifiers_time_bins_and_recording_indexes(activity):
    binned = xr.concat([activity, activity + 1], dim="time_bin").transpose("presentation", "neuroid", "time_bin")
    binned = binned.assign_coords(time_bin_start=("time_bin", [0, 10]), time_bin_end=("time_bin", [10, 20]))
    binned = binned.set_xindex("stimulus_id")  # a recording's stimulus_id is an index: it is regathered
    assembly = to_brainscore_assembly(binned, identifier="lab.V1", stimulus_set_identifier="lab.gratings")
    assert assembly.dims == ("presentation", "neuroid", "time_bin")
    assert list(assembly.indexes["time_bin"].names) == ["time_bin_start", "time_bin_end"]
    assert assembly.indexes["presentation"].names[0] == "stimulus_id"
    assert (assembly.attrs["identifier"], assembly.attrs["stimulus_set_identifier"]) == ("lab.V1", "lab.gratings")


def test_a_single_coordinate_is_a_one_level_multiindex():
    plain = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("presentation", "neuroid"),
                         coords={"stimulus_id": ("presentation", ["a", "b"]), "neuroid_id": ("neuroid", ["x", "y", "z"])})
    assembly = to_brainscore_assembly(plain)
    assert list(assembly.indexes["presentation"].names) == ["stimulus_id"]
    assert list(assembly.indexes["neuroid"].names) == ["neuroid_id"]
    np.testing.assert_array_equal(assembly.sel(stimulus_id="b").values, [3.0, 4.0, 5.0])
    assert assembly.attrs["identifier"] == "neurorecord.activity"


def test_errors(activity):
    with pytest.raises(InteropError, match=r"activity: expected dims \(presentation, neuroid\[, time_bin\]\)"):
        to_brainscore_assembly(activity.T)
    with pytest.raises(InteropError, match="activity: expected a 'neuroid_id' coordinate on 'neuroid', found only region"):
        to_brainscore_assembly(activity.drop_vars("neuroid_id"))
