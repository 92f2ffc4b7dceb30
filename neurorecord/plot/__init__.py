"""Figures a neuroscientist recognises, drawn from what the package records and analyses.

Every function takes xarray input (a recording's ``activity``, or an analysis result) and an
optional ``ax``, and returns the Axes it drew on; multi-panel figures return a
:class:`matplotlib.figure.Figure`. Axis labels come from the data's CF attrs (``long_name
[units]``); colour maps are viridis (sequential) and RdBu_r centred at 0 (signed changes); the
layout is ``constrained``. The library never selects a matplotlib backend; docs/figures.md
shows every figure.

=========================  ==========================================================
module                     figures
=========================  ==========================================================
:mod:`.activity`           :func:`raster`, :func:`psth` (time-resolved activity)
:mod:`.tuning`             :func:`tuning_curve`, :func:`polar_tuning`,
                           :func:`receptive_field`, :func:`selective_units`
:mod:`.populations`        :func:`profile_heatmap`, :func:`dendrogram`,
                           :func:`criterion_curve`, :func:`embedding`
:mod:`.lesions`            :func:`lesion_heatmap`, :func:`control_distribution`,
                           :func:`downstream_change`, :func:`indicator_matrix`
:mod:`.compare`            :func:`rdm_heatmap` (RDMs of :func:`neurorecord.compare.rdm`)
:mod:`.sheet`              :func:`contact_sheet` (thumbnails of stimulus sets)
=========================  ==========================================================

>>> import numpy as np, xarray as xr
>>> from neurorecord import analysis, plot
>>> act = xr.DataArray(np.random.default_rng(0).random((8, 2)), dims=("presentation", "neuroid"),
...                    coords={"label": ("presentation", np.arange(8) % 4)}, attrs={"units": "a.u."})
>>> plot.tuning_curve(analysis.tuning_curve(act, "label", n_boot=50), 0).get_ylabel()
'mean response [a.u.]'
"""

from ._common import PlotError, label
from .activity import psth, raster
from .compare import rdm_heatmap
from .lesions import control_distribution, downstream_change, indicator_matrix, lesion_heatmap
from .populations import criterion_curve, dendrogram, embedding, profile_heatmap
from .sheet import contact_sheet
from .tuning import polar_tuning, receptive_field, selective_units, tuning_curve

__all__ = [
    "PlotError",
    "contact_sheet",
    "control_distribution",
    "criterion_curve",
    "dendrogram",
    "downstream_change",
    "embedding",
    "indicator_matrix",
    "label",
    "lesion_heatmap",
    "polar_tuning",
    "profile_heatmap",
    "psth",
    "raster",
    "rdm_heatmap",
    "receptive_field",
    "selective_units",
    "tuning_curve",
]
