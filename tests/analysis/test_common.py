"""One common check that every registered analysis passes, on a model recording, on a subset of
the macaque V1 recording, and on the same data as dask: labels survive, dask and numpy agree,
a bad `by` gives the standard message, and a seed fixes the output."""

from __future__ import annotations


import numpy as np
import pytest
import xarray as xr

import neurorecord
from neurorecord import analysis
from neurorecord.analysis import AnalysisError
from tests.helpers import ECKER_FILE

V1_FILE = ECKER_FILE

# name -> (function, keyword arguments beyond `by`, needs angles in `by`)
ANALYSES = {
    "tuning_curve": (analysis.tuning_curve, {"n_boot": 100, "seed": 3}, False),
    "anova": (analysis.anova, {}, False),
    "kruskal": (analysis.kruskal, {}, False),
    "ttest_ovr": (analysis.ttest_ovr, {}, False),
    "mannwhitney_ovr": (analysis.mannwhitney_ovr, {}, False),
    "permutation_csi": (analysis.permutation_test, {"statistic": analysis.INDEX_FUNCTIONS["csi"], "n_permutations": 50, "seed": 3}, False),
    "csi": (analysis.selectivity, {"index": "csi"}, False),
    "dprime": (analysis.selectivity, {"index": "dprime"}, False),
    "lifetime_sparseness": (analysis.selectivity, {"index": "lifetime_sparseness"}, False),
    "magnitude": (analysis.selectivity, {"index": "magnitude"}, False),
    "response_profiles": (analysis.response_profiles, {}, False),
    "rayleigh": (analysis.rayleigh, {"period": 360.0}, True),
    "osi": (analysis.selectivity, {"index": "osi"}, True),
    "dsi": (analysis.selectivity, {"index": "dsi"}, True),
    "von_mises": (analysis.fit_von_mises, {"period": 360.0}, True),
}


@pytest.fixture(scope="module")
def model_activity(tmp_path_factory) -> tuple[xr.DataArray, str]:
    out = tmp_path_factory.mktemp("common") / "rec"
    tree = neurorecord.run(neurorecord.default_protocol_path(), out, quiet=True)
    return tree["fc3"]["activity"].isel(neuroid=slice(0, 24)), "label"


@pytest.fixture(scope="module")
def v1_activity() -> tuple[xr.DataArray, str]:
    if not V1_FILE.exists():
        pytest.skip("the shared V1 recording is not present")
    from neurorecord.interop import read_ecker2010, response_window

    session = read_ecker2010(V1_FILE, sessions=[0])["session00"]["activity"]
    return response_window(session).isel(neuroid=slice(0, 12)), "direction"


@pytest.mark.parametrize("name", list(ANALYSES))
@pytest.mark.parametrize("data", ["model", "v1"])
def test_common_contract(name, data, model_activity, v1_activity):
    func, kwargs, angular = ANALYSES[name]
    if data == "model" and angular:
        pytest.skip("angular analyses need an angle coordinate; the digits recording has labels")
    activity, by = model_activity if data == "model" else v1_activity
    lazy = activity.chunk({"presentation": 37}) if data == "v1" else activity  # the model recording is already dask-backed
    loaded = activity.load() if data == "model" else activity
    result_lazy = func(lazy, by, **kwargs)
    result_loaded = func(loaded.copy(deep=True).load(), by, **kwargs)
    # labels survive
    assert list(result_lazy["neuroid_id"].values) == list(np.asarray(activity["neuroid_id"].values))
    assert "neuroid" in result_lazy.dims
    # dask and numpy agree
    xr.testing.assert_allclose(result_lazy.load(), result_loaded.load(), rtol=1e-12, atol=1e-12)
    # the same seed gives the same output
    again = func(loaded, by, **kwargs)
    xr.testing.assert_identical(again.load(), result_loaded.load())
    # a bad `by` gives the standard message
    with pytest.raises(AnalysisError, match=r"by: 'no_such_coord' is not a coordinate on 'presentation'; presentation coordinates: "):
        func(loaded, "no_such_coord", **kwargs)


def test_input_is_not_mutated(model_activity):
    activity, by = model_activity
    before = activity.copy(deep=True).load()
    for func, kwargs, angular in ANALYSES.values():
        if not angular:
            func(activity, by, **kwargs)
    xr.testing.assert_identical(activity.load(), before)
