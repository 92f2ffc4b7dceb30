"""Lesions: silence units of a region and measure what the network's predictions lose.

:func:`lesion_predictions` runs a sweep of many lesions fast (the network cut at the region by
:func:`split_at`, upstream once, downstream on packs of lesions); :func:`obvious_predictions`
is the slow obvious loop it is checked against; with ``downstream=[...]`` the sweep also measures
how each lesion changes the activity of later regions (:mod:`.downstream`). :mod:`.stats` (exact McNemar tests, bootstrap
intervals, FDR, matched random controls) needs no torch; the sweep names are imported on first
use, so ``neurorecord.lesion.stats`` can be used where torch is not installed.
"""

from typing import Any

_LAZY = {
    "Split": "split",
    "UnsplittableModelWarning": "split",
    "split_at": "split",
    "downstream_regions": "split",
    "DownstreamActivity": "downstream",
    "check_downstream": "downstream",
    "METHODS": "sweep",
    "Lesion": "sweep",
    "LesionPack": "sweep",
    "LesionResult": "sweep",
    "LesionSweep": "sweep",
    "apply_lesions": "sweep",
    "lesion_predictions": "sweep",
    "obvious_predictions": "sweep",
    "single_unit_lesions": "sweep",
    "unit_means": "sweep",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
