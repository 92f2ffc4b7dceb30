"""Population lesions of a study: the fast sweep against the obvious path, the size-matched controls,
and the false-positive rate of the control null on populations that are random sets of units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from statsmodels.stats.multitest import multipletests

from neurorecord.analysis.lesion_stats import control_null
from neurorecord.lesion import Lesion, obvious_predictions
from neurorecord.lesion.populations import population_lesions
from neurorecord.stimuli import DigitsSet


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return DigitsSet("d", "test").parameters()["label"].astype(np.int64)


def _units(targets: str) -> tuple[int, ...]:
    return tuple(int(t.rsplit(".", 1)[1]) for t in targets.split(","))


def test_population_lesions_equal_the_obvious_path(mlp, x, labels):
    """Every lesion's accuracy change and loss, populations and controls alike, from a plain forward
    pass with the units zeroed (obvious_predictions)."""
    populations = {"a": (0, 3, 5, 7, 11), "b": (1, 2, 4, 6, 8), "c": tuple(range(20, 32))}
    fx = population_lesions(mlp, x, labels, "fc2", populations, 100, controls=7, n_boot=0, seed=3)
    assert fx["lesion"].values[:3].tolist() == ["a", "b", "c"]
    units = [_units(t) for t in fx["targets"].values]
    assert units[:3] == [populations["a"], populations["b"], populations["c"]]
    slow, logits = obvious_predictions(mlp, x, "fc2", [Lesion(u, "zero") for u in units], return_logits=True)
    intact = mlp(x).argmax(1).numpy()
    delta = 100 * ((slow.numpy() == labels).mean(1) - (intact == labels).mean())
    np.testing.assert_allclose(fx["delta_accuracy"].sel({"class": "overall"}).values, delta, atol=1e-9)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), torch.from_numpy(np.tile(labels, len(units))),
                                             reduction="none").reshape(len(units), -1).mean(1).numpy()
    np.testing.assert_allclose(fx["loss"].values, loss, rtol=1e-5)


def test_controls_are_matched_in_size_and_the_null_is_computed_against_them(mlp, x, labels):
    populations = {"five": (0, 1, 2, 3, 4), "also-five": (50, 60, 70, 80, 90), "twelve": tuple(range(12))}
    fx = population_lesions(mlp, x, labels, "fc2", populations, 100, controls=9, n_boot=0, seed=1)
    kind = fx["lesion_kind"].values
    assert (kind == "control").sum() == 2 * 9  # one set of controls per population size
    controls = fx.isel(lesion=np.flatnonzero(kind == "control"))
    assert sorted(set(controls["n_units"].values.tolist())) == [5, 12]
    assert all(len(set(_units(t))) == n for t, n in zip(controls["targets"].values, controls["n_units"].values))
    for name in populations:
        row = fx.sel(lesion=name)
        same = controls.isel(lesion=np.flatnonzero(controls["n_units"].values == int(row["n_units"])))
        expected = control_null(row["delta_accuracy"], same["delta_accuracy"])
        np.testing.assert_array_equal(row["control_p"].values, expected["p_empirical"].values)
        np.testing.assert_array_equal(row["control_percentile"].values, expected["percentile"].values)
        np.testing.assert_array_equal(row["control_median"].values, np.median(same["delta_accuracy"].values, axis=0))
    # the FDR over the populations, class by class, is statsmodels' on the same p values
    p = fx["control_p"].sel(lesion=list(populations), **{"class": "overall"}).values
    np.testing.assert_allclose(fx["control_q"].sel(lesion=list(populations), **{"class": "overall"}).values,
                               multipletests(p, method="fdr_bh")[1])
    assert np.isnan(controls["control_p"].values).all()


def test_random_populations_are_not_called_harmful_more_often_than_alpha(mlp, x, labels):
    """Null: a 'population' that is itself a random set of units. Over 200 such populations (five
    draws of the controls), the fraction with control p <= 0.05 stays at or below 5 % (+3 SE)."""
    rng = np.random.default_rng(0)
    p = []
    for rep in range(5):
        populations = {f"random{i}": tuple(sorted(rng.choice(100, 8, replace=False))) for i in range(40)}
        fx = population_lesions(mlp, x, labels, "fc2", populations, 100, controls=19, n_boot=0, seed=rep)
        p += fx["control_p"].sel(lesion=list(populations), **{"class": "overall"}).values.tolist()
    p = np.asarray(p)
    rate = (p <= 0.05).mean()
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / p.size), rate
    assert 0.3 < np.median(p) < 0.8  # the p values spread over (0, 1], not piled at one end


def test_the_subject_is_left_as_found(mlp, x, labels):
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    mlp.train()
    population_lesions(mlp, x, labels, "fc2", {"a": (1, 2)}, 100, controls=3, n_boot=0)
    assert mlp.training
    mlp.eval()
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in mlp.modules())
