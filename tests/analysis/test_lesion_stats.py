"""Lesion statistics (neurorecord.analysis.lesion_stats) against statsmodels, scipy, sklearn and slow loops."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats
import xarray as xr
from sklearn.metrics import log_loss
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from neurorecord.analysis import lesion_stats as stats
from neurorecord.errors import AnalysisError
from neurorecord.analysis.lesion_stats import (
    bootstrap_indices,
    control_null,
    cross_entropy_loss,
    draw_controls,
    lesion_effects,
    sensitive_units,
)

LEVELS = np.array([2, 5, 9, 11, 40])  # not 0..K-1; 11 after 9 (numeric order); 40 has one stimulus


def make_sweep(seed: int = 0, n_stimuli: int = 241):
    """Intact and lesioned correctness on a set with unequal classes; lesion 0 is identical to
    intact, lesion 1 breaks class 5, lesion 2 helps class 9, the rest flip stimuli at random."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(LEVELS[:4], size=n_stimuli, p=[0.1, 0.3, 0.25, 0.35])
    labels[0] = 40
    intact = rng.random(n_stimuli) < 0.7
    correct = np.repeat(intact[None], 6, axis=0)
    correct[1, (labels == 5) & (rng.random(n_stimuli) < 0.6)] = False
    correct[2, (labels == 9) & ~intact] = True
    flips = rng.random((3, n_stimuli)) < np.array([0.02, 0.1, 0.3])[:, None]
    correct[3:] ^= flips
    names = ["intact-copy", "breaks-5", "helps-9", "flip-2%", "flip-10%", "flip-30%"]
    return correct, intact, labels, names


@pytest.fixture(scope="module")
def sweep():
    return make_sweep()


@pytest.fixture(scope="module")
def effects(sweep):
    correct, intact, labels, names = sweep
    return lesion_effects(correct, intact, labels, names, n_boot=300, seed=3)


def test_labels_and_dims(effects, sweep):
    correct, intact, labels, names = sweep
    assert effects["class"].values.tolist() == ["2", "5", "9", "11", "40", "overall"]
    assert effects["lesion"].values.tolist() == names
    for var in ("delta_accuracy", "accuracy", "p", "q", "b", "c", "ci_low", "ci_high"):
        assert effects[var].dims == ("lesion", "class"), var
    assert effects["accuracy_intact"].dims == effects["n"].dims == ("class",)
    assert effects["n"].values.tolist() == [*(int((labels == v).sum()) for v in LEVELS), len(labels)]
    assert effects["delta_accuracy"].attrs["units"] == "percentage points"
    assert effects["b"].dtype == np.int64
    np.testing.assert_array_equal(effects["correct"].values, correct)
    np.testing.assert_array_equal(effects["correct_intact"].values, intact)
    np.testing.assert_array_equal(effects["label"].values, labels)
    attrs = effects.attrs
    assert attrs["classes"] == LEVELS.tolist() and attrs["n_boot"] == 300 and attrs["seed"] == 3
    assert attrs["family"].startswith("fdr_bh over all 36 (lesion, class) tests of the sweep: 6 lesions x 6 columns")


def test_accuracy_matches_a_per_lesion_pandas_computation(effects, sweep):
    correct, intact, labels, names = sweep
    frame = pd.DataFrame({"label": labels, "intact": intact})
    acc_intact = frame.groupby("label")["intact"].mean() * 100
    np.testing.assert_allclose(effects["accuracy_intact"].values, [*acc_intact.loc[LEVELS], intact.mean() * 100], rtol=1e-12)
    for l, name in enumerate(names):
        frame["lesioned"] = correct[l]
        acc = frame.groupby("label")["lesioned"].mean() * 100
        expected = np.array([*(acc - acc_intact).loc[LEVELS], (correct[l].mean() - intact.mean()) * 100])
        np.testing.assert_allclose(effects["delta_accuracy"].sel(lesion=name).values, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(effects["accuracy"].sel(lesion=name).values[:-1], acc.loc[LEVELS], rtol=1e-12)


def test_p_matches_statsmodels_exact_mcnemar(effects, sweep):
    correct, intact, labels, names = sweep
    for l, name in enumerate(names):
        for cls in effects["class"].values:
            sel = np.ones(len(labels), bool) if cls == "overall" else labels == int(cls)
            les, ref = correct[l, sel], intact[sel]
            table = [[np.sum(ref & les), np.sum(ref & ~les)], [np.sum(~ref & les), np.sum(~ref & ~les)]]
            cell = effects.sel(lesion=name, **{"class": cls})
            assert (int(cell["b"]), int(cell["c"])) == (table[0][1], table[1][0])
            assert abs(float(cell["p"]) - mcnemar(table, exact=True).pvalue) <= 1e-12, (name, cls)
    # lesions 1 and 2 change their class significantly, lesion 0 nowhere
    assert float(effects["p"].sel(lesion="breaks-5", **{"class": "5"})) < 1e-6
    assert float(effects["p"].sel(lesion="helps-9", **{"class": "9"})) < 1e-3


@pytest.mark.parametrize("correction", ["fdr_bh", "bonferroni"])
def test_q_matches_multipletests_over_the_whole_sweep(sweep, correction):
    correct, intact, labels, names = sweep
    fx = lesion_effects(correct, intact, labels, names, n_boot=0, correction=correction)
    expected = multipletests(fx["p"].values.ravel(), method=correction)[1].reshape(fx["p"].shape)
    np.testing.assert_allclose(fx["q"].values, expected, rtol=1e-12, atol=0)
    assert fx.attrs["correction"] == correction and fx.attrs["family"].startswith(correction)
    assert np.isnan(fx["ci_low"].values).all()


def slow_bootstrap(correct, intact, labels, n_boot, seed, ci):
    """The CI by hand: for every resample, lesion and class, the mean paired difference."""
    indices = bootstrap_indices(labels, n_boot, seed)
    columns = [labels == v for v in LEVELS] + [np.ones(len(labels), bool)]
    deltas = np.empty((len(correct), len(columns), n_boot))
    for r, idx in enumerate(indices):
        for l in range(len(correct)):
            diff = correct[l, idx].astype(float) - intact[idx].astype(float)
            for k, sel in enumerate(columns):
                deltas[l, k, r] = 100 * diff[sel].mean()  # labels[idx] == labels: positions keep their class
    return np.percentile(deltas, [50 * (1 - ci), 50 * (1 + ci)], axis=-1)


def test_bootstrap_ci_matches_a_slow_loop_on_the_same_draws(effects, sweep):
    correct, intact, labels, _ = sweep
    low, high = slow_bootstrap(correct, intact, labels, 300, 3, 0.95)
    np.testing.assert_allclose(effects["ci_low"].values, low, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(effects["ci_high"].values, high, rtol=1e-12, atol=1e-12)
    assert (effects["ci_low"] <= effects["delta_accuracy"] + 1e-9).sel(lesion="breaks-5").all()
    assert float(effects["ci_high"].sel(lesion="breaks-5", **{"class": "5"})) < 0


def test_bootstrap_indices_resample_within_class_and_split_into_blocks():
    labels = np.array([7, 7, 3, 7, 3, 1])
    full = bootstrap_indices(labels, 50, seed=11)
    assert full.shape == (50, 6) and (labels[full] == labels).all()
    np.testing.assert_array_equal(bootstrap_indices(labels, 50, seed=11, start=13, stop=31), full[13:31])
    assert (full[:, 5] == 5).all()  # the only stimulus of class 1
    assert not np.array_equal(full, bootstrap_indices(labels, 50, seed=12))
    counts = np.bincount(full[:, labels == 7].ravel(), minlength=6)[[0, 1, 3]]
    assert counts.min() > 0.25 * counts.sum()  # roughly uniform over the three class-7 stimuli


def test_blocks_do_not_change_the_result(monkeypatch, sweep, effects):
    correct, intact, labels, names = sweep
    monkeypatch.setattr(stats, "_BLOCK_BYTES", 8 * 241 * 7)  # 7 rows (lesions, resamples) per block
    small = lesion_effects(correct, intact, labels, names, n_boot=300, seed=3)
    xr.testing.assert_identical(small, effects)


def test_seed_fixes_the_bootstrap(sweep, effects):
    correct, intact, labels, names = sweep
    again = lesion_effects(correct, intact, labels, names, n_boot=300, seed=3)
    xr.testing.assert_identical(again, effects)
    other = lesion_effects(correct, intact, labels, names, n_boot=300, seed=4)
    assert not np.array_equal(other["ci_low"].values, effects["ci_low"].values)
    xr.testing.assert_identical(other.drop_vars(["ci_low", "ci_high"]).drop_attrs(), effects.drop_vars(["ci_low", "ci_high"]).drop_attrs())


def test_a_lesion_identical_to_intact_has_no_effect(effects):
    same = effects.sel(lesion="intact-copy")
    assert (same["b"] == 0).all() and (same["c"] == 0).all()
    assert (same["p"] == 1).all() and (same["delta_accuracy"] == 0).all()
    assert (same["ci_low"] == 0).all() and (same["ci_high"] == 0).all()
    np.testing.assert_array_equal(same["accuracy"].values, effects["accuracy_intact"].values)


def test_a_class_with_one_stimulus(effects, sweep):
    correct, intact, labels, names = sweep
    one = effects.sel(**{"class": "40"})
    assert int(one["n"]) == 1
    expected = 100.0 * (correct[:, 0].astype(int) - int(intact[0]))
    np.testing.assert_array_equal(one["delta_accuracy"].values, expected)
    np.testing.assert_array_equal(one["ci_low"].values, expected)  # every resample is that stimulus
    np.testing.assert_array_equal(one["ci_high"].values, expected)
    assert set(one["p"].values.tolist()) <= {1.0}  # one discordant pair at most: p = min(1, 2 * 0.5)


def test_no_discordant_pairs_gives_p_one():
    labels = np.array([0, 0, 1, 1])
    intact = np.array([True, False, True, False])
    fx = lesion_effects(intact[None], intact, labels, ["none"], n_boot=10)
    assert fx["p"].values.tolist() == [[1.0, 1.0, 1.0]] and fx["q"].values.tolist() == [[1.0, 1.0, 1.0]]


def test_explicit_classes_report_empty_classes_without_testing_them(sweep):
    correct, intact, labels, names = sweep
    fx = lesion_effects(correct, intact, labels, names, classes=[40, 11, 9, 5, 2, 99], n_boot=20)
    assert fx["class"].values.tolist() == ["40", "11", "9", "5", "2", "99", "overall"]
    assert int(fx["n"].sel(**{"class": "99"})) == 0
    empty = fx.sel(**{"class": "99"})
    for var in ("delta_accuracy", "accuracy", "p", "q", "ci_low", "ci_high"):
        assert np.isnan(empty[var].values).all(), var
    assert np.isnan(fx["accuracy_intact"].sel(**{"class": "99"}))
    default = lesion_effects(correct, intact, labels, names, n_boot=20)
    reordered = fx.sel(**{"class": default["class"].values})
    for var in ("delta_accuracy", "p", "q", "b", "c", "ci_low", "ci_high"):  # same family of 36 tests, same draws
        np.testing.assert_allclose(reordered[var].values, default[var].values, rtol=1e-12, err_msg=var)
    assert "36 (lesion, class) tests" in fx.attrs["family"]
    assert not sensitive_units(fx, direction="any").sel(**{"class": "99"}).any()


def test_string_labels_and_zero_one_numbers():
    labels = np.array(["cat", "dog", "cat", "dog"])
    fx = lesion_effects(np.array([[1, 0, 0, 1]]), np.array([1, 1, 1, 1]), labels, ["x"], n_boot=5)
    assert fx["class"].values.tolist() == ["cat", "dog", "overall"]
    assert fx["delta_accuracy"].values.tolist() == [[-50.0, -50.0, -50.0]]


def test_inputs_are_not_modified(sweep):
    correct, intact, labels, names = sweep
    copies = [correct.copy(), intact.copy(), labels.copy(), list(names)]
    fx = lesion_effects(correct, intact, labels, names, n_boot=5)
    sensitive_units(fx)
    for before, after in zip(copies, [correct, intact, labels, names]):
        np.testing.assert_array_equal(before, after)


def test_sensitive_units(effects):
    q, delta = effects["q"].values, effects["delta_accuracy"].values
    decrease = sensitive_units(effects)
    assert decrease.dims == ("lesion", "class") and decrease.dtype == bool
    np.testing.assert_array_equal(decrease.values, (q < 0.05) & (delta < 0))
    np.testing.assert_array_equal(sensitive_units(effects, 0.01, "increase").values, (q < 0.01) & (delta > 0))
    np.testing.assert_array_equal(sensitive_units(effects, direction="any").values, q < 0.05)
    assert bool(decrease.sel(lesion="breaks-5", **{"class": "5"}))
    assert not decrease.sel(lesion="intact-copy").any()
    assert not bool(decrease.sel(lesion="helps-9", **{"class": "9"}))  # significant, but an increase
    assert bool(sensitive_units(effects, direction="increase").sel(lesion="helps-9", **{"class": "9"}))
    assert decrease.attrs["direction"] == "decrease" and decrease.attrs["family"] == effects.attrs["family"]


def test_control_null_against_scipy():
    rng = np.random.default_rng(5)
    controls = rng.integers(-6, 2, size=(200, 4)).astype(float)  # many ties
    target = np.array([-6.0, -3.0, 0.0, 1.0])
    null = control_null(target, controls)
    assert null["class"].values.tolist() == ["0", "1", "2", "3"]
    for k in range(4):
        assert null["percentile"].values[k] == pytest.approx(scipy.stats.percentileofscore(controls[:, k], target[k], kind="mean"))
        assert null["p_empirical"].values[k] == pytest.approx((1 + np.sum(controls[:, k] <= target[k])) / 201)
    assert null.attrs["n_draws"] == 200 and null.attrs["alternative"] == "less"
    assert null["p_empirical"].values[0] < 0.2 and null["p_empirical"].values[3] == 1.0


def test_control_null_scalar_nan_and_labelled_input(effects):
    one = control_null(-4.0, [0.0, -1.0, -5.0])
    assert one["p_empirical"].values.tolist() == [0.5] and one["percentile"].values.tolist() == pytest.approx([100 / 3])
    nan = control_null([np.nan, -1.0], [[0.0, 0.0], [0.0, np.nan]])
    assert np.isnan(nan["p_empirical"].values).all()
    target = effects["delta_accuracy"].sel(lesion="breaks-5")
    controls = effects["delta_accuracy"].sel(lesion=["flip-2%", "flip-10%", "flip-30%"])
    labelled = control_null(target, controls)
    assert labelled["class"].values.tolist() == effects["class"].values.tolist()
    assert float(labelled["p_empirical"].sel(**{"class": "5"})) == 0.25  # hurts class 5 more than all 3 controls
    with pytest.raises(AnalysisError, match=r"delta_controls: expected the classes of delta_target .* in that order"):
        control_null(target, controls.isel({"class": slice(None, None, -1)}))


def test_draw_controls():
    groups = draw_controls(50, k=7, n_draws=400, seed=1)
    assert groups.shape == (400, 7) and groups.dtype == np.int64
    assert (np.diff(groups, axis=1) > 0).all()  # distinct and sorted within a draw
    assert groups.min() >= 0 and groups.max() <= 49
    frequency = np.bincount(groups.ravel(), minlength=50) / 400
    assert np.abs(frequency - 7 / 50).max() < 0.08  # each unit is chosen with probability k / n
    np.testing.assert_array_equal(draw_controls(50, 7, 400, seed=1), groups)
    assert not np.array_equal(draw_controls(50, 7, 400, seed=2), groups)
    target = np.arange(10, 17)
    disjoint = draw_controls(50, 7, 400, seed=1, exclude=target)
    assert not np.isin(disjoint, target).any()
    assert np.isin(groups, target).any()  # default: the target's units are in the pool
    everything = draw_controls(5, 5, 3, seed=0)
    assert (everything == np.arange(5)).all()


def test_draw_controls_blocks_do_not_change_the_result(monkeypatch):
    groups = draw_controls(50, 7, 100, seed=1)
    monkeypatch.setattr(stats, "_BLOCK_BYTES", 8 * 50 * 3)
    np.testing.assert_array_equal(draw_controls(50, 7, 100, seed=1), groups)


def test_cross_entropy_against_scipy_and_sklearn():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=4.0, size=(3, 60, 5))
    labels = rng.integers(0, 5, size=60)
    loss = cross_entropy_loss(logits, labels, ["a", "b", "c"])
    assert loss.dims == ("lesion",) and loss["lesion"].values.tolist() == ["a", "b", "c"] and loss.attrs["units"] == "nats"
    for l in range(3):
        by_scipy = -scipy.special.log_softmax(logits[l], axis=1)[np.arange(60), labels].mean()
        by_sklearn = log_loss(labels, scipy.special.softmax(logits[l], axis=1), labels=np.arange(5))
        assert float(loss[l]) == pytest.approx(by_scipy, rel=1e-12)
        assert float(loss[l]) == pytest.approx(by_sklearn, rel=1e-9)
    single = cross_entropy_loss(logits[1], labels)
    assert single.dims == () and float(single) == float(loss[1])
    huge = cross_entropy_loss(np.array([[1e4, 0.0, -1e4], [0.0, 1e4, -np.inf]]), [0, 0])
    assert float(huge) == pytest.approx(5e3)  # (0 + 1e4) / 2, no overflow


def test_module_does_not_import_torch():
    script = """
import sys
import numpy as np
from neurorecord.analysis import lesion_stats as stats
stats.lesion_effects(np.ones((1, 4), bool), np.ones(4, bool), [0, 0, 1, 1], ["a"], n_boot=3)
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


C, I, Y = np.ones((2, 4), bool), np.ones(4, bool), np.array([0, 0, 1, 1])

BAD_ARGUMENTS = [
    (lambda: lesion_effects(np.ones((2, 5), bool), I, Y, ["a", "b"]),
     r"correct: expected an array of shape \(n_lesions, n_stimuli\) = \(any, 4\), found shape \(2, 5\)"),
    (lambda: lesion_effects(np.ones(4, bool), I, Y, ["a"]),
     r"correct: expected an array of shape \(n_lesions, n_stimuli\) = \(any, 4\), found shape \(4,\)"),
    (lambda: lesion_effects(C, np.ones((4, 1), bool), Y, ["a", "b"]),
     r"correct_intact: expected an array of shape \(n_stimuli,\) = \(any,\), found shape \(4, 1\)"),
    (lambda: lesion_effects(C[:, :0], I[:0], Y[:0], ["a", "b"]), "correct_intact: expected at least one stimulus, found 0"),
    (lambda: lesion_effects(C, I, Y[:3], ["a", "b"]),
     r"labels: expected an array of shape \(n_stimuli,\) = \(4,\) like correct_intact, found shape \(3,\)"),
    (lambda: lesion_effects(C, I, Y, ["a"]), r"lesion_names: expected 2 names \(one per row of correct\), found 1"),
    (lambda: lesion_effects(C, I, Y, "ab"), r"lesion_names: expected a sequence of 2 str, found the str 'ab'"),
    (lambda: lesion_effects(C, I, Y, ["a", "a"]), r"lesion_names: expected distinct names, found repeated names \['a'\]"),
    (lambda: lesion_effects(C * 2, I, Y, ["a", "b"]), r"correct: expected booleans \(or 0/1 numbers\), found the value 2"),
    (lambda: lesion_effects(C, I.astype(str), Y, ["a", "b"]), r"correct_intact: expected booleans \(or 0/1 numbers\), found dtype <U"),
    (lambda: lesion_effects(C, I, [0.0, np.nan, 1.0, 1.0], ["a", "b"]), "labels: expected a class label for every stimulus, found NaN"),
    (lambda: lesion_effects(C, I, Y, ["a", "b"], classes=[0]),
     r"classes: expected every value of labels among the classes, found labels not in classes: \[1\]"),
    (lambda: lesion_effects(C, I, Y, ["a", "b"], classes=[0, 1, 0]), r"classes: expected distinct class labels, found \[0, 1, 0\]"),
    (lambda: lesion_effects(C, I, ["overall"] * 4, ["a", "b"]), "labels: expected class labels other than 'overall'"),
    (lambda: lesion_effects(C, I, Y, ["a", "b"], n_boot=-1), "n_boot: expected an integer >= 0, found -1"),
    (lambda: lesion_effects(C, I, Y, ["a", "b"], ci=95), r"ci: expected a number in \(0, 1\), found 95"),
    (lambda: lesion_effects(C, I, Y, ["a", "b"], seed=1.5), r"seed: expected an integer >= 0, found 1.5 \(float\)"),
    (lambda: lesion_effects(C, I, Y, ["a", "b"], correction="holm"),
     "correction: expected one of 'fdr_bh', 'bonferroni', found 'holm'"),
    (lambda: sensitive_units(xr.Dataset({"p": ("x", [0.1])})),
     r"effects: expected the Dataset of lesion_effects \(with 'q' and 'delta_accuracy'\), found variables \['p'\]"),
    (lambda: sensitive_units(lesion_effects(C, I, Y, ["a", "b"], n_boot=0), q_below=0), r"q_below: expected a number in \(0, 1\], found 0"),
    (lambda: sensitive_units(lesion_effects(C, I, Y, ["a", "b"], n_boot=0), direction="down"),
     "direction: expected one of 'decrease', 'increase', 'any', found 'down'"),
    (lambda: control_null([[0.0]], [[0.0]]), r"delta_target: expected an array of shape \(n_classes,\), found shape \(1, 1\)"),
    (lambda: control_null([0.0, 1.0], np.zeros((5, 3))),
     r"delta_controls: expected an array of shape \(n_draws, n_classes\) = \(any, 2\) like delta_target, found shape \(5, 3\)"),
    (lambda: control_null([0.0], np.zeros((0, 1))), "delta_controls: expected at least one control draw, found 0"),
    (lambda: control_null([0.0, 1.0], np.zeros((5, 2)), classes=["a"]), r"classes: expected 2 labels .*, found 1"),
    (lambda: draw_controls(10, 0, 5, 0), "k: expected an integer >= 1, found 0"),
    (lambda: draw_controls(10, 9, 5, 0, exclude=[0, 1]), r"k: expected at most the 8 units of the pool \(region minus exclude\), found 9"),
    (lambda: draw_controls(10, 2, 5, 0, exclude=[3, 10]), r"exclude: expected unit indices in 0..9, found \[10\]"),
    (lambda: draw_controls(10, 2, 5, None), r"seed: expected an integer >= 0, found None \(NoneType\)"),
    (lambda: cross_entropy_loss(np.zeros(3), [0]), r"logits: expected an array of shape .*, found shape \(3,\)"),
    (lambda: cross_entropy_loss(np.zeros((2, 4, 3)), [0, 1]),
     r"labels: expected an array of shape \(n_stimuli,\) = \(4,\) like logits, found shape \(2,\)"),
    (lambda: cross_entropy_loss(np.zeros((2, 3)), [0, 3]), r"labels: expected integer class indices in 0..2 .*, found values from 0 to 3"),
    (lambda: cross_entropy_loss(np.zeros((2, 3)), [0.0, 1.0]), r"labels: expected integer class indices in 0..2 .*, found dtype float64"),
    (lambda: cross_entropy_loss(np.zeros((2, 2, 3)), [0, 1], ["a"]), r"lesion_names: expected 2 names .*, found 1"),
    (lambda: bootstrap_indices([0, 1], 5, 0, start=3, stop=7), r"start, stop: expected 0 <= start <= stop <= n_boot = 5, found 3, 7"),
]


@pytest.mark.parametrize("call, message", BAD_ARGUMENTS, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD_ARGUMENTS)])
def test_bad_arguments_name_argument_expected_and_found(call, message):
    with pytest.raises(AnalysisError, match=message):
        call()


def test_old_module_name_warns_and_reexports():
    script = """
import warnings
warnings.simplefilter("error", DeprecationWarning)
try:
    import neurorecord.lesion.stats
except DeprecationWarning as exc:
    print("warned:", exc)
warnings.simplefilter("ignore", DeprecationWarning)
import neurorecord.lesion.stats as old, neurorecord.analysis.lesion_stats as new
print(old.lesion_effects is new.lesion_effects, sorted(old.__all__) == sorted(new.__all__))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "warned: neurorecord.lesion.stats moved to neurorecord.analysis.lesion_stats" in out
    assert out.strip().endswith("True True")
