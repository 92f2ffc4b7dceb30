"""The comparisons on real data: macaque V1 (Ecker et al. 2010, two sessions) and the digits
MLP's fc2 against a noisy copy of itself (a stand-in for a biological recording of it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rsatoolbox
import xarray as xr
from rsatoolbox.data.noise import prec_from_unbalanced
from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling

import neurorecord
from neurorecord.compare import (cka, compare_rdms, linear_predictivity, rdm, rdm_noise_ceiling, split_half_reliability,
                                 split_rdms, upper_triangle)
from neurorecord.interop import ecker2010_path, read_ecker2010, response_window
from tests.helpers import ECKER_FILE

ECKER = ecker2010_path() or ECKER_FILE


@pytest.fixture(scope="module")
def v1():
    if not ECKER.is_file():
        pytest.skip(f"Ecker 2010 data file not found at {ECKER}")
    tree = read_ecker2010(ECKER, sessions=[0, 1])
    return [response_window(tree[f"session0{i}"]["activity"], 50, 550) for i in (0, 1)]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The digits MLP's fc2 as stored: dask-backed, read from the zarr store."""
    tree = neurorecord.run(neurorecord.default_protocol_path(), tmp_path_factory.mktemp("compare") / "d", quiet=True)
    return tree["fc2"]["activity"]


@pytest.fixture(scope="module")
def fc2(stored):
    return stored.compute()  # a loaded copy; the store-backed one stays dask-backed


def noisy_copy(activity: xr.DataArray, n_rep: int, scale: float, seed: int) -> xr.DataArray:
    """``n_rep`` presentations of every stimulus: activity plus Gaussian noise of ``scale`` x each
    unit's sd (a silent unit stays silent)."""
    rng = np.random.default_rng(seed)
    base = activity.values.astype(np.float64)
    sd = base.std(axis=0)
    trials = [base + scale * sd * rng.normal(size=base.shape) for _ in range(n_rep)]
    out = xr.concat([activity.copy(data=t).assign_coords(repetition=("presentation", np.full(len(base), r)))
                     for r, t in enumerate(trials)], dim="presentation")
    return out.assign_coords(neuroid_id=("neuroid", [f"bio.{i}" for i in range(out.sizes["neuroid"])]))


def test_v1_crossnobis_and_ceiling_equal_rsatoolbox(v1):
    session = v1[0]
    ours = rdm(session, by="direction", method="crossnobis")
    data = rsatoolbox.data.Dataset(session.values.astype(np.float64),
                                   obs_descriptors={"direction": session.direction.values,
                                                    "repetition": session.repetition.values})
    with np.errstate(invalid="ignore"):
        reference = rsatoolbox.rdm.calc_rdm(data, method="crossnobis", descriptor="direction", cv_descriptor="repetition",
                                            noise=prec_from_unbalanced(data, "direction", method="shrinkage_eye"))
    labels = list(reference.pattern_descriptors["direction"])
    order = [labels.index(v) for v in ours.condition.values]
    np.testing.assert_allclose(upper_triangle(ours.values),
                               upper_triangle(reference.get_matrices()[0][np.ix_(order, order)]), rtol=0, atol=1e-10)
    rdms = split_rdms(session, by="direction")
    assert rdms.sizes["split"] == 13  # one RDM per repetition
    ceiling = rdm_noise_ceiling(rdms, "spearman")
    vectors = np.stack([upper_triangle(r) for r in rdms.values])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lower, upper = boot_noise_ceiling(rsatoolbox.rdm.RDMs(vectors), method="spearman")
    assert abs(float(ceiling.lower) - lower) <= 1e-10 and abs(float(ceiling.upper) - upper) <= 1e-10
    assert 0.5 < float(ceiling.lower) < float(ceiling.upper)  # V1 direction tuning is reliable


def test_v1_sessions_share_direction_structure(v1):
    """Different neurons, same stimulus space: the two sessions' RDMs over direction agree."""
    rdms = [rdm(session, by="direction", method="crossnobis") for session in v1]
    result = compare_rdms(*rdms, "spearman", n_boot=200, seed=0)
    assert float(result.similarity) > 0.2 and float(result.ci_low) > 0
    reliability = split_half_reliability(v1[0], by="direction")
    assert np.nanmedian(reliability["reliability"].values) > 0.5
    assert reliability.neuroid_id.values.tolist() == v1[0].neuroid_id.values.tolist()


@pytest.mark.slow  # records the digits MLP (a few seconds) and fits ridge models on 454 stimuli
def test_model_against_a_noisy_copy_of_itself(fc2, stored):
    biology = noisy_copy(fc2.isel(neuroid=slice(0, 40)), n_rep=2, scale=0.5, seed=0)
    silent = int((fc2.isel(neuroid=slice(0, 40)).std("presentation") == 0).sum())
    result = linear_predictivity(fc2, biology, n_folds=3)
    assert result.attrs["n_units_nan"] == silent  # a silent unit's r is NaN (documented), no other NaN
    assert result.attrs["median_r"] > 0.7 and 0.8 < result.attrs["median_r_ceiled"] < 1.2
    assert result.neuroid_id.values.tolist() == [f"bio.{i}" for i in range(40)]
    assert float(cka(fc2, biology)) > 0.8
    model_rdm, bio_rdm = rdm(fc2), rdm(biology)
    assert stored.chunks is not None  # the store read block by block gives the same RDM and CKA
    np.testing.assert_array_equal(rdm(stored).values, model_rdm.values)
    assert float(cka(stored, biology)) == float(cka(fc2, biology))
    assert np.isfinite(model_rdm.values).all() and model_rdm.label.values.size == 454  # labels of the digits kept
    assert float(compare_rdms(model_rdm, bio_rdm, "spearman")["similarity"]) > 0.8

    shuffled = biology.assign_coords(stimulus_id=("presentation", np.tile(
        np.random.default_rng(1).permutation(fc2.stimulus_id.values), 2)))  # responses no longer match stimuli
    null = linear_predictivity(fc2, shuffled, n_folds=3, ceiling=False)
    assert abs(null.attrs["median_r"]) < 0.15
    assert abs(float(cka(fc2, shuffled, debiased=True))) < 0.1


@pytest.mark.slow  # runs the worked example of docs/compare.md as written (records the digits MLP)
def test_the_worked_example_in_the_docs_prints_what_the_docs_say(tmp_path, monkeypatch):
    import contextlib
    import io
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "compare.md").read_text()
    section = doc.split("## A worked example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    printed = re.search(r"```text\n(.*?)```", section, flags=re.S).group(1)
    claimed = [[float(v) for v in line.split("#")[0].split()] for line in printed.strip().splitlines()]
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/compare.md", "exec"), {})
    got = [[float(v) for v in line.split()] for line in out.getvalue().strip().splitlines()]
    assert len(got) == len(claimed)
    for line_got, line_claimed in zip(got, claimed):
        np.testing.assert_allclose(line_got, line_claimed, rtol=0, atol=1e-6)
