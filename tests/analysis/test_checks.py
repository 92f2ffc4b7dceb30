"""Pre-run checks of a protocol's analyses against the presentation coordinates
(neurorecord.analysis.checks.check_analysis_plan): whatever an analysis needs of the stimulus
coordinates is checked before recording, with the field, what was expected and what was found."""

from __future__ import annotations

import numpy as np
import pytest

import neurorecord
from neurorecord.analysis import load_population, selectivity
from neurorecord.analysis.checks import check_analysis_plan
from neurorecord.errors import NeurorecordError
from neurorecord.protocol import protocol_from_text

SEVEN = np.arange(7) * 22.5  # 0 to 135 deg: 67.5 has no orthogonal partner (157.5)

GRATINGS = """neurorecord: 1
name: seven
seed: 0
subject:
  zoo: digits-mlp
stimuli:
  - name: gratings
    kind: grating
    size: [8, 8]
    background: 0.5
    grid:
      orientation: {start: 0, stop: 135, step: 22.5}
      spatial_frequency: 0.125
      phase: [0, 90, 180, 270]
"""
DIGITS = """  - name: digits
    kind: digits
"""
RECORD = """record:
  regions: [fc1, fc2]
  batch_size: 100
analyses:
"""
HEAD = GRATINGS + DIGITS + RECORD

RULE = """  - name: tuned
    kind: population
    by: orientation
    test: rayleigh
    period: 180
    index: osi_vector
    index_above: 0.1
"""


def analyses(text: str) -> list:
    return protocol_from_text(HEAD + text).analyses


def coords(n_rep: int = 2) -> dict[str, np.ndarray]:
    """Presentation coordinates as a plan gives them: 7 orientations x 4 phases, and text labels."""
    orientation = np.tile(np.repeat(SEVEN, 4), n_rep)
    n = len(orientation)
    return {
        "stimulus_id": np.array([f"g{i:03d}" for i in range(n)], dtype=object),
        "repetition": np.repeat(np.arange(n_rep), n // n_rep),
        "stimulus_set": np.full(n, "gratings", dtype=object),
        "orientation": orientation,
        "phase": np.tile([0.0, 90.0, 180.0, 270.0], n // 4),
        "label": np.tile(np.array(["a", "b", "c", "d"], dtype=object), n // 4),
        "contrast": np.full(n, 100.0),
    }


def test_vector_rule_on_seven_orientations_passes():
    check_analysis_plan(analyses(RULE), coords())  # no error: the vector form needs no partners


@pytest.mark.parametrize(
    "entry, field, match",
    [
        ("{name: o, kind: selectivity, by: orientation, index: osi}", "index",
         r"analyses\[1\].index: expected each angle of 'orientation' to have its orthogonal partner \(90 deg away\) "
         r"for the osi ratio form \(index 'osi'\), found none at 157.5 \(for 67.5\); levels modulo 180: 0, 22.5, 45, "
         r"67.5, 90, 112.5, 135.*index 'osi_vector'"),
        ("{name: o, kind: selectivity, by: orientation, index: osi_ratio}", "index", r"analyses\[1\].index: .*osi ratio"),
        ("{name: o, kind: population, by: orientation, test: anova, index: osi_ratio, index_above: 0.2}", "index",
         r"analyses\[1\].index: expected each angle .* found none at 157.5"),
        ("{name: d, kind: selectivity, by: orientation, index: dsi}", "index",
         r"analyses\[1\].index: expected each angle of 'orientation' to have its opposite partner \(180 deg away\) "
         r"for the dsi ratio form \(index 'dsi'\), found none at 180 \(for 0\)"),
        ("{name: r, kind: rayleigh, by: label, period: 180}", "by",
         r"analyses\[1\].by: expected angles in degrees \(numbers\) for the rayleigh test, found coordinate 'label' "
         r"with values such as 'a'"),
        ("{name: o, kind: selectivity, by: label, index: osi_vector}", "by",
         r"analyses\[1\].by: expected angles in degrees \(numbers\) for the osi_vector index, found coordinate 'label'"),
        ("{name: p, kind: population, by: label, test: anova, index: dsi_vector, index_above: 0.1}", "by",
         r"analyses\[1\].by: expected angles in degrees \(numbers\) for the dsi_vector index"),
        ("{name: p, kind: population, by: label, test: rayleigh, period: 360}", "by",
         r"analyses\[1\].by: expected angles in degrees \(numbers\) for the rayleigh test"),
        ("{name: v, kind: von_mises, by: label, period: 180}", "by", r"analyses\[1\].by: expected angles in degrees"),
        ("{name: v, kind: von_mises, by: phase, period: 180, two_peaks: true}", "by",
         r"analyses\[1\].by: expected at least 5 distinct angles modulo 180 for a von Mises fit with 5 parameters, "
         r"found 2 \(0, 90\)"),
        ("{name: a, kind: anova, by: contrast}", "by",
         r"analyses\[1\].by: expected at least 2 distinct values of 'contrast' \(conditions to compare\), found 1 \(100\)"),
        ("{name: a, kind: anova, by: colour}", "by",
         r"analyses\[1\].by: 'colour' is not a presentation coordinate of these stimuli; coordinates: contrast, label, "),
        ("{name: t, kind: ttest_ovr, by: label}", None, None),
        ("{name: t, kind: population, by: label, test: ttest_ovr, condition: e}", "condition",
         r"analyses\[1\].condition: expected a level of 'label', found 'e'; levels: a, b, c, d"),
        ("{name: t, kind: population, by: orientation, test: anova, index: dprime, index_above: 1, condition: 10}",
         "condition", r"analyses\[1\].condition: expected a level of 'orientation', found 10; levels: 0, 22.5, "),
        ("{name: t, kind: population, by: orientation, test: mannwhitney_ovr, condition: 45}", None, None),
        ("{name: m, kind: selectivity, by: contrast, index: magnitude}", None, None),  # magnitude ignores by
        ("{name: c, kind: tuning_curve, by: [orientation, phase]}", None, None),
        ("{name: c, kind: tuning_curve, by: [orientation, phaze]}", "by",
         r"analyses\[1\].by\[1\]: 'phaze' is not a presentation coordinate of these stimuli \(did you mean 'phase'\?\)"),
    ],
)
def test_what_an_analysis_needs_of_the_coordinates(entry, field, match):
    plan = analyses(RULE + "  - " + entry + "\n")
    if field is None:
        check_analysis_plan(plan, coords())
        return
    with pytest.raises(NeurorecordError, match=match) as info:
        check_analysis_plan(plan, coords())
    loc = info.value.loc
    assert loc[:3] == ("analyses", 1, field)


def test_missing_values_of_a_parameter_are_found_before_the_run():
    """A parameter of one stimulus set only is NaN on the other set's presentations."""
    values = coords()
    n = len(values["orientation"])
    mixed = {k: np.concatenate([v, v[:10]]) for k, v in values.items()}
    mixed["orientation"] = np.concatenate([values["orientation"], np.full(10, np.nan)])
    mixed["stimulus_set"] = np.concatenate([values["stimulus_set"], np.full(10, "digits", dtype=object)])
    with pytest.raises(NeurorecordError, match=rf"analyses\[0\].by: expected a value of 'orientation' on every "
                                               rf"presentation, found NaN on 10 of {n + 10} presentations \(stimulus "
                                               rf"set digits\)") as info:
        check_analysis_plan(analyses(RULE), mixed)
    assert info.value.loc == ("analyses", 0, "by")


def test_coordinates_of_a_real_plan():
    """The coordinates the session has before recording (PresentationPlan.coords()): the digits
    set has no orientation, so an orientation analysis over both sets is refused."""
    from neurorecord.record.plan import PresentationPlan
    from neurorecord.stimuli import build_stimulus_sets

    protocol = protocol_from_text(HEAD + RULE)
    plan = PresentationPlan(build_stimulus_sets(protocol), protocol.record.repetitions, protocol.record.time)
    with pytest.raises(NeurorecordError, match=r"analyses\[0\].by: expected a value of 'orientation' on every presentation"):
        check_analysis_plan(protocol.analyses, plan.coords())
    gratings_only = protocol_from_text(GRATINGS + RECORD + RULE)
    plan = PresentationPlan(build_stimulus_sets(gratings_only), 1, None)
    check_analysis_plan(gratings_only.analyses, plan.coords())


def test_seven_orientations_with_a_vector_rule_run_to_completion(tmp_path):
    text = (GRATINGS + RECORD.replace("[fc1, fc2]", "[fc1]") + RULE
            + "  - {name: osi, kind: selectivity, by: orientation, index: osi_vector, negative: shift}\n")
    path = tmp_path / "seven.yaml"
    path.write_text(text.replace("batch_size: 100", "batch_size: 100\n  repetitions: 2\n  variability: {input_noise: 0.05}"))
    tree = neurorecord.run(path, tmp_path / "rec", quiet=True)
    pop = load_population(tmp_path / "rec", "fc1", "tuned")
    activity = tree["fc1"]["activity"]
    assert sorted(np.unique(activity["orientation"].values)) == SEVEN.tolist()
    expected = selectivity(activity, "orientation", "osi_vector")["osi_vector"].values
    np.testing.assert_array_equal(pop.table["osi_vector"].values, expected)
    assert pop.table.attrs["n_candidates"] == activity.sizes["neuroid"]
    stored = tree["analyses/fc1/osi"].to_dataset()
    assert set(stored.data_vars) >= {"osi_vector", "preferred_vector"} and "osi_ratio" not in stored
