"""Recording: tapping regions and streaming a presentation plan through the subject.

``regions`` (hooks that exist only inside a ``with`` block), ``plan`` (which stimulus at each
presentation), ``trials`` (trial-to-trial variability) and ``stream`` (batches in order, to a
writer) need torch and are imported on first use of their names. The store's I/O lives in
:mod:`neurorecord.store`, the order of a run's stages in :mod:`neurorecord.session`.
"""

import warnings
from typing import Any

_LAZY = {
    "PresentationPlan": "plan",
    "RegionLayout": "regions",
    "RegionTap": "regions",
    "check_regions": "regions",
    "reduce_output": "regions",
    "reduce_time_output": "regions",
    "region_layout": "regions",
    "TrialVariability": "trials",
    "stream_batches": "stream",
}
#: Names that moved in 0.2 (kept, with a DeprecationWarning, for one release).
_MOVED = {
    "RUN_ATTR": "neurorecord.store", "RunState": "neurorecord.store", "open_recording": "neurorecord.store",
    "read_run_state": "neurorecord.store", "root_attrs": "neurorecord.store",
    "Experiment": "neurorecord.session", "prepare": "neurorecord.session", "run": "neurorecord.session",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _MOVED:
        warnings.warn(f"neurorecord.record.{name} moved to {_MOVED[name]}.{name}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
