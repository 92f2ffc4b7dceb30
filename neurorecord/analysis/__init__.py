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

import importlib
import sys
import types
from typing import Any

#: Where each public name lives: imported on first use, so that importing
#: ``neurorecord.analysis.checks`` (``neurorecord validate``) does not import xarray and dask.
_WHERE = {
    "AnalysisError": "neurorecord.errors",
    "indicator_correlations": ".agreement", "partition_agreement": ".agreement", "predicts_lesion_impact": ".agreement",
    "preferred_vs_most_hurt": ".agreement", "unit_indicators": ".agreement",
    "Population": ".populations", "define_population": ".populations",
    "cluster_profiles": ".profiles", "lesion_profiles": ".profiles", "response_profiles": ".profiles",
    "load_analysis": ".runner", "load_population": ".runner", "run_analyses": ".runner", "save_analysis": ".runner",
    "INDEX_FUNCTIONS": ".selectivity", "selectivity": ".selectivity",
    "anova": ".stats", "kruskal": ".stats", "mannwhitney_ovr": ".stats", "permutation_test": ".stats", "rayleigh": ".stats",
    "ttest_ovr": ".stats",
    "tuning_curve": ".tuning",
    "fit_von_mises": ".vonmises",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


class _Package(types.ModuleType):
    """Importing the submodule ``selectivity`` binds it on the package, over the function of the
    same name; this keeps ``neurorecord.analysis.selectivity`` the function, as an eager import did."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
