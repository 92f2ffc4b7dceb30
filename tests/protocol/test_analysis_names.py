"""The protocol's analysis names are the analyses' own: one table of index names
(neurorecord.analysis.selectivity.INDICES), mirrored by the schema, which cannot import it."""

from __future__ import annotations

from typing import get_args

from neurorecord.analysis.populations import TESTS
from neurorecord.analysis.selectivity import INDICES
from neurorecord.protocol import protocol_from_text
from neurorecord.protocol.schema import RULE_INDICES, SELECTIVITY_INDICES, PopulationAnalysis, SelectivityAnalysis
from tests.helpers import DIGITS_MLP


def test_selectivity_and_rule_indices_are_the_table():
    assert SELECTIVITY_INDICES == tuple(INDICES)
    assert RULE_INDICES == tuple(name for name, spec in INDICES.items() if spec.threshold is not None)
    assert get_args(SelectivityAnalysis.model_fields["index"].annotation) == SELECTIVITY_INDICES
    population_index = PopulationAnalysis.model_fields["index"].annotation
    assert tuple(a for arg in get_args(population_index) for a in get_args(arg)) == RULE_INDICES
    assert get_args(PopulationAnalysis.model_fields["test"].annotation) == tuple(TESTS)


def test_a_protocol_asks_for_one_form_alone():
    text = DIGITS_MLP + """analyses:
  - {name: osi, kind: selectivity, by: label, index: osi_vector}
  - {name: tuned, kind: population, by: label, test: anova, index: dsi, index_above: 0.1}
"""
    protocol = protocol_from_text(text)
    assert [a.index for a in protocol.analyses] == ["osi_vector", "dsi"]
