"""Lesions, the torch side: silence units of a region and measure what the network's predictions lose.

:func:`lesion_predictions` runs a sweep of many lesions fast (the network cut at the region by
:func:`split_at`, upstream once, downstream on packs of lesions); :func:`obvious_predictions`
is the slow obvious loop it is checked against; with ``downstream=[...]`` the sweep also measures
how each lesion changes the activity of later regions (:mod:`.downstream`).

One job per module: :mod:`.specs` (what a lesion is, packs of lesions), :mod:`.split` (cutting
the network; :mod:`.fx` the traced cut), :mod:`.frontier` (the cached upstream output), :mod:`.plan` (the pass sizes,
measured), :mod:`.runners` (the downstream passes), :mod:`.sweep` (the public functions),
:mod:`.downstream` (downstream regions and their activity), :mod:`.experiment` (a protocol's
``lesions:``). The statistics of lesion effects need no torch: they are in
:mod:`neurorecord.analysis.lesion_stats`. The names here are imported on first use.
"""

from typing import Any

_LAZY = {
    "Split": "split",
    "UnsplittableModelWarning": "split",
    "split_at": "split",
    "downstream_regions": "downstream",
    "DownstreamActivity": "downstream",
    "check_downstream": "downstream",
    "METHODS": "specs",
    "Lesion": "specs",
    "LesionPack": "specs",
    "apply_lesions": "specs",
    "single_unit_lesions": "specs",
    "Plan": "plan",
    "LesionResult": "sweep",
    "lesion_predictions": "sweep",
    "obvious_predictions": "sweep",
    "prepared_sweep": "sweep",
    "unit_means": "sweep",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
