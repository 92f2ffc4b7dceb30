"""rsatoolbox conversion: layout both ways, descriptors, the same RDM through either library,
and the ImportError that names the extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import rsatoolbox
import xarray as xr

from neurorecord.compare import rdm, upper_triangle
from neurorecord.errors import InteropError
from neurorecord.interop import from_rsatoolbox, to_rsatoolbox
from tests.compare.synthetic import planted, recording


@pytest.fixture
def activity():
    act = recording(planted(6, 8), n_rep=np.array([2, 3, 2, 4, 2, 3]), seed=1)
    return act.assign_attrs(long_name="spike count", window_start_ms=50.0, nested={"not": "scalar"})


def test_to_rsatoolbox_per_presentation(activity):
    data = to_rsatoolbox(activity)
    np.testing.assert_array_equal(data.measurements, activity.values)
    for name in ("stimulus_id", "repetition", "label"):
        np.testing.assert_array_equal(data.obs_descriptors[name], activity.coords[name].values)
    assert data.channel_descriptors["neuroid_id"].tolist() == activity.neuroid_id.values.tolist()
    assert data.channel_descriptors["region"].tolist() == ["v1"] * 8
    assert data.descriptors["units"] == "spikes" and data.descriptors["window_start_ms"] == 50.0
    assert "nested" not in data.descriptors  # only scalar attrs become descriptors


def test_to_rsatoolbox_by_condition(activity):
    data = to_rsatoolbox(activity, by="stimulus_id")
    means = activity.groupby("stimulus_id").mean()
    np.testing.assert_allclose(data.measurements, means.values, rtol=0, atol=1e-12)
    assert data.obs_descriptors["stimulus_id"].tolist() == means.stimulus_id.values.tolist()
    assert data.obs_descriptors["n"].tolist() == [2, 3, 2, 4, 2, 3]
    assert data.obs_descriptors["label"].tolist() == [0, 1, 2, 0, 1, 2]
    assert "repetition" not in data.obs_descriptors and data.descriptors["by"] == "stimulus_id"


def test_the_same_rdm_through_either_library(activity):
    for method in ("correlation", "euclidean"):
        theirs = rsatoolbox.rdm.calc_rdm(to_rsatoolbox(activity), method=method, descriptor="stimulus_id")
        ours = rdm(activity, method=method)
        assert list(theirs.pattern_descriptors["stimulus_id"]) == ours.condition.values.tolist()
        np.testing.assert_allclose(theirs.get_vectors()[0], upper_triangle(ours.values), rtol=0, atol=1e-10)


def test_round_trip(activity):
    back = from_rsatoolbox(to_rsatoolbox(activity))
    assert back.dims == ("presentation", "neuroid")
    np.testing.assert_array_equal(back.values, activity.values)
    for name in ("stimulus_id", "repetition", "label", "neuroid_id", "region"):
        assert back.coords[name].values.tolist() == activity.coords[name].values.tolist(), name
    assert back.attrs["units"] == "spikes" and back.attrs["converter"] == "neurorecord.interop.from_rsatoolbox"
    xr.testing.assert_allclose(rdm(back), rdm(activity))


def test_from_rsatoolbox_names_and_errors():
    data = rsatoolbox.data.Dataset(np.arange(6.0).reshape(3, 2), obs_descriptors={"image": ["a", "b", "c"]},
                                   channel_descriptors={"name": ["x", "y"]})
    with pytest.raises(InteropError, match="stimulus_key: expected an obs descriptor 'stimulus_id'.*found only 'image'"):
        from_rsatoolbox(data)
    activity = from_rsatoolbox(data, stimulus_key="image", neuroid_key="name")
    assert activity.stimulus_id.values.tolist() == ["a", "b", "c"] and activity.neuroid_id.values.tolist() == ["x", "y"]
    with pytest.raises(InteropError, match="dataset: expected an rsatoolbox.data.Dataset, found ndarray"):
        from_rsatoolbox(np.zeros((2, 2)))


def test_missing_rsatoolbox_names_the_extra(monkeypatch, activity):
    monkeypatch.setitem(sys.modules, "rsatoolbox", None)
    monkeypatch.setitem(sys.modules, "rsatoolbox.data", None)
    with pytest.raises(ImportError, match=r"to_rsatoolbox needs rsatoolbox.*pip install neurorecord\[rsa\]"):
        to_rsatoolbox(activity)
    with pytest.raises(ImportError, match=r"from_rsatoolbox needs rsatoolbox.*pip install neurorecord\[rsa\]"):
        from_rsatoolbox(None)
