"""Analyses of recordings: tuning curves, selectivity indices, per-unit tests, populations, and
functional populations (response and lesion profiles, their clusters, agreement between them,
indicators of a unit's importance; :mod:`.profiles`, :mod:`.agreement`, docs/functional-populations.md).

Every function takes an ``xarray.DataArray`` (presentation x neuroid; a ``time_bin`` dim is
averaged over) from a model recording or a biological one, and the name of a ``presentation``
coordinate, and returns an ``xarray.Dataset`` indexed by ``neuroid`` that keeps every unit's
labels. Tests are vectorised over units and cross-checked against scipy and statsmodels.

>>> import neurorecord, tempfile
>>> from neurorecord import analysis
>>> tree = neurorecord.run(neurorecord.default_protocol_path(), tempfile.mkdtemp() + "/d", quiet=True)
>>> fc2 = tree["fc2"]["activity"]
>>> responsive = analysis.define_population("responsive", fc2, test="anova", by="label", q_below=0.05)
>>> 0 < len(responsive) <= 100
True
"""

from ._units import AnalysisError
from .agreement import indicator_correlations, partition_agreement, predicts_lesion_impact, preferred_vs_most_hurt, unit_indicators
from .populations import Population, define_population
from .profiles import cluster_profiles, lesion_profiles, response_profiles
from .runner import load_analysis, load_population, run_analyses, save_analysis
from .selectivity import INDEX_FUNCTIONS, selectivity
from .stats import anova, kruskal, mannwhitney_ovr, permutation_test, rayleigh, ttest_ovr
from .tuning import tuning_curve
from .vonmises import fit_von_mises

__all__ = [
    "AnalysisError",
    "INDEX_FUNCTIONS",
    "Population",
    "anova",
    "cluster_profiles",
    "define_population",
    "fit_von_mises",
    "indicator_correlations",
    "kruskal",
    "lesion_profiles",
    "load_analysis",
    "load_population",
    "mannwhitney_ovr",
    "partition_agreement",
    "permutation_test",
    "predicts_lesion_impact",
    "preferred_vs_most_hurt",
    "rayleigh",
    "response_profiles",
    "run_analyses",
    "save_analysis",
    "selectivity",
    "ttest_ovr",
    "tuning_curve",
    "unit_indicators",
]
