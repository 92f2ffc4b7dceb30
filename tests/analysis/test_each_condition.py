"""``condition: each``: one population per level of ``by`` from one protocol entry, each stored,
loadable and lesioned by its own name, equal to the entry written out for that level."""

from __future__ import annotations

import numpy as np
import pytest

import neurorecord
from neurorecord.analysis import load_population
from neurorecord.errors import NeurorecordError
from tests.helpers import DIGITS_MLP

EACH = DIGITS_MLP + """analyses:
  - {name: likes, kind: population, regions: [fc3], test: ttest_ovr, by: label, condition: each, q_below: 0.01}
  - {name: only3, kind: population, regions: [fc3], test: ttest_ovr, by: label, condition: 3, q_below: 0.01}
lesions:
  - {name: l3, region: fc3, units: {population: likes-3}, evaluate: digits, controls: 5, n_boot: 0}
"""


def test_one_population_per_level_equal_to_the_entry_for_that_level(write_protocol, tmp_path):
    out = tmp_path / "run"
    tree = neurorecord.run(write_protocol(EACH), out, quiet=True)
    stored = sorted(node for node in tree["analyses/fc3"].children if node.startswith("likes-"))
    assert stored == [f"likes-{d}" for d in range(10)]
    each3, only3 = load_population(out, "fc3", "likes-3"), load_population(out, "fc3", "only3")
    assert each3.neuroid_ids == only3.neuroid_ids and len(each3) > 0
    np.testing.assert_array_equal(each3.table["q"].values, only3.table["q"].values)
    assert load_population(out, "fc3", "likes-7").neuroid_ids != each3.neuroid_ids
    lesion = tree["lesions/l3"].to_dataset()
    assert lesion["n_units"].values[0] == len(each3)


def test_a_level_that_does_not_exist_is_refused_before_the_run(write_protocol, tmp_path):
    path = write_protocol(EACH.replace("likes-3}", "likes-12}"))
    with pytest.raises(NeurorecordError, match=r"lesions\[0\]\.units: population 'likes-12' is not one of those 'likes' defines .* likes-0, likes-1"):
        neurorecord.run(path, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_a_population_of_no_each_entry_is_still_refused(write_protocol, tmp_path):
    path = write_protocol(EACH.replace("likes-3}", "dislikes-3}"))
    with pytest.raises(Exception, match=r"population 'dislikes-3' is not defined for region 'fc3' in analyses; populations there: likes-<level>, only3"):
        neurorecord.run(path, tmp_path / "run", quiet=True)
