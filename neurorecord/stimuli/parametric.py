"""Generated stimuli: gratings, Gabors, bars, plaids, noise, dots."""

from __future__ import annotations

__all__ = ["PARAMETRIC_BUILDERS"]

#: ``{spec model: builder(spec, protocol)}`` for the parametric kinds.
PARAMETRIC_BUILDERS: dict = {}
