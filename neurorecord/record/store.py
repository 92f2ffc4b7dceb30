"""Moved to :mod:`neurorecord.store` (kept, with a DeprecationWarning, for one release)."""

import warnings

from ..store import *  # noqa: F403
from ..store import __all__  # noqa: F401

warnings.warn("neurorecord.record.store moved to neurorecord.store; the old module goes in the next release",
              DeprecationWarning, stacklevel=2)
