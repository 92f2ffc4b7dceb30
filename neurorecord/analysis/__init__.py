"""Analyses of recordings: tuning curves, selectivity indices, per-unit tests, populations.

Every function takes an ``xarray.DataArray`` (presentation x neuroid) from a model recording
or a biological one and returns labelled xarray results indexed by ``neuroid``.
"""

from ._units import AnalysisError

__all__ = ["AnalysisError"]
