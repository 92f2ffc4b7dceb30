"""The CF attrs (``long_name``, ``units``) the figures label their axes with: on analysis
variables, on stimulus coordinates, and through a store's write/open round trip."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neurorecord import analysis, store
from neurorecord.protocol.parametric import GaborStimuli, GratingStimuli
from neurorecord.stimuli import DigitsSet, coordinate_attrs
from neurorecord.stimuli.parametric import ParametricSet


def _activity() -> xr.DataArray:
    rng = np.random.default_rng(0)
    theta = np.repeat(np.arange(0, 180, 30.0), 4)
    return xr.DataArray(rng.random((24, 3)) + np.cos(np.deg2rad(2 * theta))[:, None] + 1, dims=("presentation", "neuroid"),
                        attrs={"units": "spikes/s"},
                        coords={"orientation": ("presentation", theta, {"long_name": "orientation", "units": "deg"}),
                                "neuroid_id": ("neuroid", ["v1.0", "v1.1", "v1.2"])})


@pytest.mark.parametrize("run, expected", [
    (lambda a: analysis.tuning_curve(a, "orientation", n_boot=20),
     {"mean": "spikes/s", "sem": "spikes/s", "ci_low": "spikes/s", "ci_high": "spikes/s"}),
    (lambda a: analysis.fit_von_mises(a, "orientation", period=180),
     {"preferred": "deg", "width": "deg", "amplitude": "spikes/s", "baseline": "spikes/s", "kappa": "1", "r2": "1"}),
    (lambda a: analysis.selectivity(a, "orientation", "osi"), {"osi_vector": "1", "osi_ratio": "1", "preferred": "deg",
                                                               "preferred_vector": "deg"}),
    (lambda a: analysis.selectivity(a, "orientation", "csi"), {"csi": "1", "preferred": "deg"}),
    (lambda a: analysis.selectivity(a, "orientation", "magnitude"), {"magnitude": "spikes/s"}),
    (lambda a: analysis.anova(a, "orientation"), {"F": "1", "p": "1", "q": "1"}),
    (lambda a: analysis.kruskal(a, "orientation"), {"H": "1", "p": "1", "q": "1"}),
    (lambda a: analysis.ttest_ovr(a, "orientation"), {"t": "1", "p": "1", "q": "1"}),
    (lambda a: analysis.mannwhitney_ovr(a, "orientation"), {"U": "1", "p": "1", "q": "1"}),
    (lambda a: analysis.rayleigh(a, "orientation", period=180, n_permutations=20), {"R": "1", "p": "1", "preferred": "deg"}),
])
def test_analysis_variables_have_units_and_long_name(run, expected):
    result = run(_activity())
    for name, units in expected.items():
        assert result[name].attrs.get("units") == units, (name, result[name].attrs)
        assert result[name].attrs.get("long_name"), name
    by = "orientation"
    if by in result.coords:
        assert result[by].attrs.get("units") == "deg"  # the condition coordinate keeps the stimulus's attrs


def test_q_long_name_names_the_correction_and_population_tables_keep_the_attrs():
    act = _activity()
    assert analysis.anova(act, "orientation", correction="bonferroni")["q"].attrs["long_name"] == "q value (bonferroni)"
    table = analysis.define_population("tuned", act, test="anova", by="orientation", q_below=0.05).table
    assert table["p"].attrs["long_name"] == "p value" and table["statistic"].attrs["long_name"] == "F statistic"
    assert table["member"].attrs["long_name"] == "member of population tuned"


def test_no_units_attr_when_the_activity_states_none():
    act = _activity()
    act.attrs.clear()
    assert "units" not in analysis.tuning_curve(act, "orientation", n_boot=5)["mean"].attrs


def test_generated_stimulus_coordinates_have_units_long_name_and_period():
    gabor = ParametricSet(GaborStimuli(name="g", kind="gabor", size=(16, 16),
                                       grid={"x": [-2, 2], "y": [0], "orientation": [0, 90]}))
    attrs = gabor.coordinate_attrs()
    assert attrs["x"]["units"] == "pixels" and attrs["y"]["long_name"].startswith("vertical position")
    assert attrs["orientation"] == {"long_name": "orientation (wave vector, counter-clockwise from rightward)",
                                    "units": "deg", "period": 180.0}
    assert attrs["spatial_frequency"]["units"] == "cycles/pixel" and attrs["contrast"]["units"] == "percent"
    in_degrees = ParametricSet(GratingStimuli(name="d", kind="grating", size=(16, 16), pixels_per_degree=8.0,
                                              grid={"orientation": [0]}))
    assert in_degrees.coordinate_attrs()["spatial_frequency"]["units"] == "cycles/degree"
    assert set(attrs) <= set(gabor.parameters())


def test_loaded_sets_name_their_label_and_sets_that_disagree_keep_what_they_share():
    digits = DigitsSet("digits", "test")
    assert digits.coordinate_attrs()["label"] == {"long_name": "class label"}
    a = ParametricSet(GratingStimuli(name="a", kind="grating", size=(8, 8), grid={"orientation": [0]}))
    b = ParametricSet(GratingStimuli(name="b", kind="grating", size=(8, 8), pixels_per_degree=4.0, grid={"orientation": [0]}))
    merged = coordinate_attrs([a, b, digits])
    assert merged["spatial_frequency"] == {"long_name": "spatial frequency"}  # cycles/pixel vs cycles/degree: dropped
    assert merged["orientation"]["units"] == "deg" and merged["label"] == {"long_name": "class label"}


def test_coordinate_and_variable_attrs_survive_the_store(tmp_path):
    """A node's coordinates and a result's variables keep their attrs through write and open."""
    out = tmp_path / "rec"
    import zarr

    zarr.open_group(out, mode="w")
    coords = {"orientation": ("presentation", np.array([0.0, 90.0]), {"units": "deg", "long_name": "orientation"}),
              "time_bin_start": ("time_bin", np.array([0.0, 10.0]), {"units": "ms"})}
    store.create_node(out, "v1", {"activity": (("presentation", "neuroid", "time_bin"), (2, 1, 2), np.float32,
                                               {"units": "a.u."})}, coords=coords, attrs={}, chunk_rows=2)
    node = xr.open_zarr(out, group="v1", consolidated=False)
    assert node["orientation"].attrs == {"units": "deg", "long_name": "orientation"}
    assert node["time_bin_start"].attrs["units"] == "ms" and node["activity"].attrs["units"] == "a.u."
    result = analysis.tuning_curve(_activity(), "orientation", n_boot=5)
    store.save_result_node(out, "analyses/v1/tuning", result)
    back = store.load_result_node(out, "analyses/v1/tuning")
    assert back["mean"].attrs == result["mean"].attrs and back["orientation"].attrs["units"] == "deg"
