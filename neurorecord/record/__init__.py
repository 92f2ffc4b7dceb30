"""Recording: tapping regions, streaming activity to a zarr store, opening stores.

``store`` (opening and describing stores) needs no torch; ``recorder``, ``regions`` and
``plan`` do, and are imported on first use of their names.
"""

from typing import Any

from .store import RUN_ATTR, RunState, open_recording, read_run_state, root_attrs

_LAZY = {
    "ACTIVITY_CODEC": "recorder",
    "Experiment": "recorder",
    "prepare": "recorder",
    "run": "recorder",
    "PresentationPlan": "plan",
    "RegionLayout": "regions",
    "RegionTap": "regions",
    "reduce_output": "regions",
    "region_layout": "regions",
}

__all__ = ["RUN_ATTR", "RunState", "open_recording", "read_run_state", "root_attrs", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
