"""Stimuli loaded from files: image folders, .npz archives, zarr arrays with a labels table."""

from __future__ import annotations

__all__ = ["LOADED_BUILDERS"]

#: ``{spec model: builder(spec, protocol)}`` for the loaded kinds.
LOADED_BUILDERS: dict = {}
