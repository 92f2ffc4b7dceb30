"""The Python API refuses what the CLI refuses, with :class:`~neurorecord.errors.NeurorecordError`
subclasses whose messages name the argument, what was expected and what was found."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import neurorecord
from neurorecord import analysis
from neurorecord.analysis.lesion_stats import lesion_effects, sensitive_units
from neurorecord.errors import AnalysisError, NeurorecordError, StoreError


def _activity() -> xr.DataArray:
    rng = np.random.default_rng(0)
    return xr.DataArray(rng.poisson(5.0, (40, 3)).astype(float), dims=("presentation", "neuroid"),
                        coords={"label": ("presentation", np.repeat([0, 1], 20)),
                                "stimulus_id": ("presentation", [f"s{i}" for i in range(40)]),
                                "neuroid_id": ("neuroid", ["u0", "u1", "u2"])})


def _effects() -> xr.Dataset:
    return lesion_effects(np.ones((2, 40), bool), np.ones(40, bool), np.repeat([0, 1], 20), ["a", "b"], n_boot=0)


CASES = [
    # (name, call, error class, expected message)
    ("resume with overwrite", lambda tmp: neurorecord.run(neurorecord.default_protocol_path(), tmp / "o", resume=True, overwrite=True),
     StoreError, r"resume, overwrite: expected at most one of them .* found both"),
    ("q_below above 1", lambda tmp: analysis.define_population("p", _activity(), test="anova", by="label", q_below=1.5),
     AnalysisError, r"q_below: expected .* found 1\.5"),
    ("q_below of 0 for lesion effects", lambda tmp: sensitive_units(_effects(), q_below=0.0), AnalysisError, r"q_below: expected .* found 0"),
    ("a folder that is not a store", lambda tmp: neurorecord.open_recording(tmp), StoreError, r"not a neurorecord (store|recording)"),
    ("a path that does not exist", lambda tmp: neurorecord.open_recording(tmp / "missing"), StoreError, r"missing"),
    ("numpy instead of xarray (test)", lambda tmp: analysis.anova(_activity().values, "label"), AnalysisError,
     r"activity: expected an xarray.DataArray .* found ndarray"),
    ("numpy instead of xarray (tuning)", lambda tmp: analysis.tuning_curve(_activity().values, "label"), AnalysisError,
     r"activity: expected an xarray.DataArray .* found ndarray"),
    ("numpy instead of xarray (selectivity)", lambda tmp: analysis.selectivity(_activity().values, "label", "csi"), AnalysisError,
     r"activity: expected an xarray.DataArray .* found ndarray"),
    ("lesion effects from a DataArray", lambda tmp: sensitive_units(_activity()), AnalysisError,
     r"effects: expected the Dataset of lesion_effects .* found DataArray"),
    ("a coordinate that does not exist", lambda tmp: analysis.anova(_activity(), "direction"), AnalysisError, r"direction"),
]


@pytest.mark.parametrize("name, call, error, message", CASES, ids=[c[0] for c in CASES])
def test_refused_with_a_package_error(tmp_path, name, call, error, message):
    with pytest.raises(error, match=message) as caught:
        call(tmp_path)
    assert isinstance(caught.value, NeurorecordError)
    assert not (tmp_path / "o").exists()  # nothing written
