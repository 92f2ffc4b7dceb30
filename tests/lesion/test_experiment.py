"""Lesion experiments from a protocol: stored effects equal the obvious loop, resumable sweeps, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from statsmodels.stats.contingency_tables import mcnemar

import neurorecord
from neurorecord.analysis import load_population
from neurorecord.lesion import Lesion, experiment, obvious_predictions
from neurorecord.store import read_run_state
from neurorecord.stimuli import DigitsSet
from neurorecord.subjects import load_zoo_subject
from tests.helpers import DIGITS_MLP, LIKES_3

from .test_downstream import obvious_downstream

LESIONS = """
analyses:
""" + LIKES_3 + """lesions:
  - name: fc2-single
    region: fc2
    units: all
    evaluate: digits
    n_boot: 200
    downstream: [fc3, out]
  - name: likes3
    region: fc3
    units: {population: likes-3}
    evaluate: digits
    controls: 10
    n_boot: 200
"""


@pytest.fixture(scope="module")
def subject():
    """The protocol's subject and evaluation set: (model, digits (454, 1, 8, 8), labels (454,))."""
    digits = DigitsSet("digits", "test")
    return load_zoo_subject("digits-mlp").model, torch.from_numpy(digits.images(np.arange(len(digits)))), digits.parameters()["label"]


@pytest.fixture(scope="module")
def lesion_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lesions")
    path = folder / "protocol.yaml"
    path.write_text(DIGITS_MLP + LESIONS)
    tree = neurorecord.run(path, folder / "rec", quiet=True)
    return path, folder / "rec", tree


def test_single_unit_effects_equal_obvious_loop(lesion_run, subject):
    _, out, _ = lesion_run
    ds = xr.open_datatree(out, engine="zarr", consolidated=False)["lesions/fc2-single"].to_dataset().load()
    model, x, labels = subject
    with torch.inference_mode():
        intact = model(x).argmax(1).numpy() == labels
    obvious = obvious_predictions(model, x, "fc2", [Lesion((u,)) for u in range(100)]).numpy() == labels[None]
    assert np.array_equal(ds["correct"].values, obvious) and np.array_equal(ds["correct_intact"].values, intact)
    assert list(ds["lesion"].values[:3]) == ["fc2.0", "fc2.1", "fc2.2"] and list(ds["targets"].values[:2]) == ["fc2.0", "fc2.1"]
    for unit in [0, 41, 99]:
        for c in [3, 8]:
            sel = labels == c
            want = 100 * (obvious[unit, sel].mean() - intact[sel].mean())
            assert ds["delta_accuracy"].sel(lesion=f"fc2.{unit}", **{"class": str(c)}).item() == pytest.approx(want, abs=1e-9)
            table = [[np.sum(intact[sel] & obvious[unit, sel]), np.sum(intact[sel] & ~obvious[unit, sel])],
                     [np.sum(~intact[sel] & obvious[unit, sel]), np.sum(~intact[sel] & ~obvious[unit, sel])]]
            assert ds["p"].sel(lesion=f"fc2.{unit}", **{"class": str(c)}).item() == pytest.approx(mcnemar(table, exact=True).pvalue, abs=1e-12)
    overall = 100 * (obvious.mean(1) - intact.mean())
    np.testing.assert_allclose(ds["delta_accuracy"].sel({"class": "overall"}).values, overall, atol=1e-9)
    assert "all 1100 (lesion, class) tests" in ds.attrs["family"]


@pytest.mark.parametrize("region", ["fc2", "fc3"])
def test_default_and_recomputing_entries_store_the_same_correctness(write_protocol, tmp_path, subject, region):
    """The default entry (the shortcut) and ``shortcut: false`` (every layer after the region
    recomputed) each store the obvious loop's correctness, and each records the path it ran."""
    model, x, labels = subject
    slow = obvious_predictions(model, x, region, [Lesion((u,)) for u in range(100)]).numpy() == labels[None, :]
    stored = {}
    for shortcut in ("true", "false"):
        text = DIGITS_MLP + f"lesions:\n  - {{name: single, region: {region}, evaluate: digits, n_boot: 0, shortcut: {shortcut}}}\n"
        stored[shortcut] = neurorecord.run(write_protocol(text), tmp_path / shortcut, quiet=True)["lesions/single"].to_dataset().load()
        assert np.array_equal(stored[shortcut]["correct"].values, slow)
    assert stored["false"].attrs["shortcut"] is False and stored["false"].attrs["shortcut_reason"] == ""
    # the default path ran the shortcut (needs the recording's hooks gone from the subject by then)
    assert stored["true"].attrs["shortcut"] is True, stored["true"].attrs["shortcut_reason"]
    for ds in stored.values():
        assert ds.attrs["split_kind"] == "sequential"
        assert ds.attrs["pack_size"] >= 1 and ds.attrs["stimulus_chunk"] >= 1 and ds.attrs["upstream_batch"] >= 1
    np.testing.assert_allclose(stored["true"]["loss"].values, stored["false"]["loss"].values, rtol=1e-5)


def test_default_entry_records_the_shortcut(lesion_run):
    """A protocol's lesion entry on the digits MLP with default settings runs the shortcut and
    says so (fails while the recording's hooks stay on the subject: the sweep then declines it)."""
    _, out, _ = lesion_run
    tree = xr.open_datatree(out, engine="zarr", consolidated=False)
    for name in ("fc2-single", "likes3"):
        attrs = tree[f"lesions/{name}"].attrs
        assert {"shortcut", "shortcut_reason", "split_kind", "pack_size", "stimulus_chunk", "upstream_batch"} <= set(attrs)
    single = tree["lesions/fc2-single"].attrs
    assert single["shortcut"] is True, single["shortcut_reason"]
    likes3 = tree["lesions/likes3"].attrs  # group lesions: recomputed, and the reason said
    assert likes3["shortcut"] is False and likes3["shortcut_reason"] == "a lesion of several units"


def test_downstream_activity_stored_equals_obvious_loop(lesion_run, subject):
    _, out, _ = lesion_run
    ds = xr.open_datatree(out, engine="zarr", consolidated=False)["lesions/fc2-single"].to_dataset().load()
    model, x, _ = subject
    ref = obvious_downstream(model, x, "fc2", [Lesion((u,)) for u in range(100)], ["fc3", "out"])
    assert list(ds["downstream"].values) == ["fc3", "out"] and ds.attrs["downstream"] == ["fc3", "out"]
    assert ds["unit_change"].dims == ("lesion", "neuroid") and ds.sizes["neuroid"] == 110
    assert list(ds["neuroid_id"].values[[0, 99, 100, 109]]) == ["fc3.0", "fc3.99", "out.0", "out.9"]
    assert list(ds["region"].values[[0, 109]]) == ["fc3", "out"] and ds["channel"].values[109] == 9
    for j, region in enumerate(["fc3", "out"]):
        units = ds["region"].values == region
        np.testing.assert_allclose(ds["activity_change"].values[:, j], ref[region]["relative"], rtol=1e-6)
        scale = ref[region]["abs"].max()
        np.testing.assert_allclose(ds["unit_change"].values[:, units], ref[region]["unit"], rtol=1e-6, atol=1e-6 * scale)
        np.testing.assert_allclose(ds["unit_abs_change"].values[:, units], ref[region]["abs"], rtol=1e-6, atol=1e-6 * scale)
        np.testing.assert_allclose(ds["unit_activity_intact"].values[units], ref[region]["intact"], rtol=1e-6, atol=1e-7)
    assert "likes3" in [n for n in xr.open_datatree(out, engine="zarr", consolidated=False)["lesions"].children]
    other = xr.open_datatree(out, engine="zarr", consolidated=False)["lesions/likes3"].to_dataset()
    assert "activity_change" not in other and other.attrs["downstream"] == []


def test_population_lesion_with_matched_controls(lesion_run):
    _, out, _ = lesion_run
    ds = xr.open_datatree(out, engine="zarr", consolidated=False)["lesions/likes3"].to_dataset().load()
    pop = load_population(out, "fc3", "likes-3")
    members = sorted(int(c) for c in pop.table["channel"].values[pop.table["member"].values])
    assert ds["targets"].values[0] == ",".join(f"fc3.{u}" for u in members)
    assert list(ds["lesion_kind"].values) == ["group"] + ["control"] * 10
    assert set(ds["n_units"].values) == {len(members)}
    target = ds.sel(lesion="population:likes-3")
    controls = ds["delta_accuracy"].sel({"class": "3"}).values[1:]
    t3 = target["delta_accuracy"].sel({"class": "3"}).item()
    assert target["control_p"].sel({"class": "3"}).item() == pytest.approx((1 + np.sum(controls <= t3)) / 11)
    assert np.isnan(ds["control_p"].values[1:]).all()
    assert t3 < -50  # silencing the units selective for 3 abolishes most 3s


def test_interrupted_sweep_resumes_without_redoing_blocks(write_protocol, tmp_path, monkeypatch, lesion_run):
    _, reference_out, _ = lesion_run
    text = DIGITS_MLP + LESIONS.split("  - name: likes3")[0]  # the single-unit sweep alone
    path = write_protocol(text)
    real = experiment._run_block
    calls = []

    def failing(sweep, lesions, seed, pack_size, stimulus_chunk):
        calls.append((len(lesions), pack_size, stimulus_chunk))
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(sweep, lesions, seed, pack_size, stimulus_chunk)

    monkeypatch.setattr(experiment, "_run_block", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        neurorecord.run(path, tmp_path / "rec", quiet=True)
    state = read_run_state(tmp_path / "rec")
    assert state.stage == "lesioning" and state.lesions_done == {"fc2-single": experiment.BLOCK}
    first_plan = calls[1][1:]  # the second block was given the pass sizes the first one measured
    assert calls[0][1:] == (None, None) and None not in first_plan
    measured = zarr.open_group(tmp_path / "rec", mode="r")["progress/lesions/fc2-single"].attrs["how"]
    assert (measured["pack_size"], measured["stimulus_chunk"]) == first_plan
    calls.clear()
    monkeypatch.setattr(experiment, "_run_block", lambda *a: calls.append((len(a[1]), *a[3:])) or real(*a))
    tree = neurorecord.run(path, tmp_path / "rec", resume=True, quiet=True)
    assert calls == [(100 - experiment.BLOCK, *first_plan)]  # only the unfinished block ran, with the stored pass sizes
    done = xr.open_datatree(tmp_path / "rec", engine="zarr", consolidated=False)["lesions/fc2-single"].to_dataset().load()
    ref = xr.open_datatree(reference_out, engine="zarr", consolidated=False)["lesions/fc2-single"].to_dataset().load()
    assert (done.attrs["pack_size"], done.attrs["stimulus_chunk"]) == first_plan
    assert done.attrs["upstream_batch"] == measured["upstream_batch"]  # the resumed run's upstream batches too
    assert np.array_equal(done["correct"].values, ref["correct"].values)
    np.testing.assert_array_equal(done["q"].values, ref["q"].values)
    # resumed block by block too; the reference run may have measured other pass sizes, which
    # change float sums in their last bits only
    for key in ("activity_change", "unit_change", "unit_abs_change", "unit_activity_intact"):
        np.testing.assert_allclose(done[key].values, ref[key].values, rtol=1e-6, atol=1e-9)
    assert tree.attrs["complete"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("region: fc2\n    units: all", "region: fc22\n    units: all"), r"lesions\[0\].region: no region named 'fc22' in the subject \(did you mean 'fc2'\?\)"),
        (("units: all", "units: [3, 250]"), r"lesions\[0\].units: unit 250 does not exist in fc2, whose units are 0..99"),
        (("evaluate: digits\n    n_boot: 200\n    downstream", "evaluate: digitz\n    n_boot: 200\n    downstream"), r"lesions\[0\].evaluate: 'digitz' is not a stimulus set of this protocol; sets: digits"),
        (("{population: likes-3}", "{population: likes-4}"), r"lesions\[1\].units: population 'likes-4' is not defined for region 'fc3' in analyses; populations there: likes-3"),
        (("downstream: [fc3, out]", "downstream: [fc3, fc1]"), r"lesions\[0\].downstream\[1\]: 'fc1' is not downstream of region 'fc2' \(its output does not "
                                                                r"depend on the output of 'fc2'\); modules downstream of 'fc2': fc3, fc3.linear, fc3.relu, out"),
        (("downstream: [fc3, out]", "downstream: [fc3, fc3]"), r"lesions\[0\]: downstream: 'fc3' is listed twice; list each region once"),
    ],
)
def test_lesion_errors(write_protocol, tmp_path, change, message):
    old, new = change
    text = (DIGITS_MLP + LESIONS).replace(old, new, 1)
    assert text != DIGITS_MLP + LESIONS
    with pytest.raises(neurorecord.NeurorecordError, match=r"protocol.yaml:\d+:\d+: " + message):
        neurorecord.run(write_protocol(text), tmp_path / "o", quiet=True)
