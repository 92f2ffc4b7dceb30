"""Adjusted p values for a family of tests (Benjamini-Hochberg FDR, Bonferroni).

Benjamini-Hochberg (the step-up: ``min(1, min over j >= i of n p_(j) / j)``) and Bonferroni
(``min(1, n p)``) are a sort and a cumulative minimum in numpy; any other ``method`` of
statsmodels' ``multipletests`` goes to statsmodels. Why not import them: statsmodels costs
about 0.9 s and ``scipy.stats`` (``false_discovery_control``) 0.6-1.1 s of a command's start on a
2-core machine, more than the rest of the default protocol's analyses, which need only
``scipy.special``. tests/analysis/test_multitest.py checks both against ``multipletests``.
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
        order = np.argsort(p, kind="stable")
        scaled = p[order] / (np.arange(1, p.size + 1) / p.size)  # rank / n first: the largest p stays exactly p
        out = np.empty_like(p)
        out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
        return out
    if method == "bonferroni":
        return np.minimum(1.0, p * p.size)
    from statsmodels.stats.multitest import multipletests

    return multipletests(p, method=method)[1]
