"""Adjusted p values for a family of tests (Benjamini-Hochberg FDR, Bonferroni).

Benjamini-Hochberg goes through :func:`scipy.stats.false_discovery_control` and Bonferroni is
``min(1, n p)``; any other ``method`` of statsmodels' ``multipletests`` goes to statsmodels (its
import costs about a second of a command's start, which scipy, already imported for the tests,
does not). tests/analysis/test_multitest.py checks both against ``multipletests``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["adjusted_p"]


def adjusted_p(p: np.ndarray, method: str = "fdr_bh") -> np.ndarray:
    """The adjusted p values of ``p`` (1-D, no NaN) for ``method`` (statsmodels' names).

    Examples
    --------
    >>> adjusted_p(np.array([0.01, 0.04, 0.03, 0.2])).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.2]
    >>> adjusted_p(np.array([0.01, 0.3]), "bonferroni").tolist()
    [0.02, 0.6]
    """
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    if method == "fdr_bh":
        from scipy.stats import false_discovery_control

        return false_discovery_control(p, method="bh")
    if method == "bonferroni":
        return np.minimum(1.0, p * p.size)
    from statsmodels.stats.multitest import multipletests

    return multipletests(p, method=method)[1]
