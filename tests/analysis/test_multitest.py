"""adjusted_p equals, bit for bit, statsmodels' multipletests for every method neurorecord offers, on p values
with ties, exact zeros and ones, and on families of one."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from neurorecord.analysis._multitest import adjusted_p


@pytest.mark.parametrize("method", ["fdr_bh", "bonferroni", "holm", "fdr_by"])
@pytest.mark.parametrize("seed", range(5))
def test_adjusted_p_equals_statsmodels(method, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=rng.integers(1, 300))
    p[rng.uniform(size=p.size) < 0.2] = 0.05  # ties
    p[:3] = [0.0, 1.0, 1e-12][: p.size]
    np.testing.assert_array_equal(adjusted_p(p, method), multipletests(p, method=method)[1])  # the same operations


def test_an_empty_family():
    assert adjusted_p(np.array([])).size == 0
