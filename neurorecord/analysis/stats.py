"""Per-unit statistical tests, vectorised over all units at once.

Every test takes a recording's ``activity`` (presentation x neuroid; a ``time_bin`` dim is
averaged over) and the name ``by`` of a presentation coordinate whose values are the conditions,
tests every unit in one pass over blocks of unit columns, and returns an ``xarray.Dataset``
indexed by ``neuroid`` that keeps every neuroid coordinate. It runs the same on a model recording
and on a biological one (binned spike counts), on numpy or dask-backed activity (an opened
store), with the same result.

Each p value gets a corrected value ``q`` over the units of its region (Benjamini-Hochberg by
default, Bonferroni on request: ``correction=``); ``attrs["family"]`` says which tests were
corrected together.

========================  ===========================================  ======================  ==============================
function                  test                                         statistic               checked against
========================  ===========================================  ======================  ==============================
:func:`anova`             one-way ANOVA across the levels of ``by``    ``F`` (neuroid)         ``f_oneway``
:func:`kruskal`           Kruskal-Wallis H, ranks with ties averaged   ``H`` (neuroid)         ``kruskal``
:func:`ttest_ovr`         Welch t, each level against the rest         ``t`` (by, neuroid)     ``ttest_ind(equal_var=False)``
:func:`mannwhitney_ovr`   Mann-Whitney U, each level against the rest  ``U`` (by, neuroid)     ``mannwhitneyu``
:func:`rayleigh`          circular tuning: resultant of the tuning     ``R`` (neuroid)         ``pingouin.circ_r``; p: the
                          curve against a permutation null                                     loop / :func:`permutation_test`
:func:`permutation_test`  label shuffles, for any per-unit index       ``observed`` (neuroid)  ``permutation_test``
========================  ===========================================  ======================  ==============================

(``scipy.stats`` functions unless said.) The tests live in one module per kind, re-exported
here: :mod:`._parametric` (ANOVA, Welch), :mod:`._ranks` (rank sums, Kruskal-Wallis,
Mann-Whitney), :mod:`._circular` (Rayleigh), :mod:`._permutation`. The kernels see blocks
(presentation x units) in float64, or, for the ANOVA and the rank tests, float32 activity as it
is, widened exactly (to float64) slice by slice; they never loop over units: group sums are
matrix products with the one-hot matrix of the conditions (``Grouping.one_hot() @ block``), the
rank tests rank all units of a block at once (:func:`rank_sums`), and the Rayleigh null computes
a chunk of shuffles for all units in one matrix product. The statistics agree with their
reference per unit to about 1e-12 (relative), exactly for the rank tests.

Blocks run one after the other in the calling thread
(:func:`~neurorecord.analysis._units.map_unit_blocks`); the parallelism is dask's (the blocks of
a dask-backed activity are computed by the active scheduler, threads by default or a
``dask.distributed`` cluster) and BLAS's (the matrix products). ``benchmarks/unit_stats.py``
measures each fast kernel against the plain computation it replaces.
"""

from __future__ import annotations

from ._circular import rayleigh
from ._parametric import anova, ttest_ovr
from ._permutation import permutation_test
from ._ranks import kruskal, mannwhitney_ovr, rank_sums
from ._stats_common import CORRECTIONS

__all__ = ["anova", "kruskal", "ttest_ovr", "mannwhitney_ovr", "rayleigh", "permutation_test", "rank_sums",
           "CORRECTIONS"]
