"""Deprecated: the statistics of lesion experiments moved to :mod:`neurorecord.analysis.lesion_stats`.

They need no torch, so they live with the other statistics. This module re-exports them, with a
``DeprecationWarning`` on import, for one release; import from ``neurorecord.analysis.lesion_stats``.
"""

import warnings

from ..analysis.lesion_stats import *  # noqa: F401,F403
from ..analysis.lesion_stats import __all__  # noqa: F401

warnings.warn("neurorecord.lesion.stats moved to neurorecord.analysis.lesion_stats; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
