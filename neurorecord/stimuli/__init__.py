"""Stimulus sets: labelled images a subject is shown (generated or loaded)."""

from __future__ import annotations

from ..errors import StimulusError
from ..protocol.schema import DigitsStimuli, NpyStimuli, Protocol
from .arrays import NpySet
from .base import StimulusSet
from .digits import DigitsSet, digits_split, load_digits_array

__all__ = ["StimulusSet", "DigitsSet", "NpySet", "build_stimulus_sets", "digits_split", "load_digits_array"]


def build_stimulus_sets(protocol: Protocol) -> list[StimulusSet]:
    """Build every stimulus set a protocol names, in protocol order."""
    sets: list[StimulusSet] = []
    for i, spec in enumerate(protocol.stimuli):
        try:
            if isinstance(spec, DigitsStimuli):
                sets.append(DigitsSet(spec.name, spec.split))
            elif isinstance(spec, NpyStimuli):
                labels = protocol.resolve(spec.labels) if spec.labels else None
                sets.append(NpySet(spec.name, protocol.resolve(spec.path), labels))
            else:  # pragma: no cover - the schema admits no other kind
                raise TypeError(f"unhandled stimulus kind {spec.kind!r}")
        except StimulusError as exc:
            exc.loc = exc.loc or ("stimuli", i)
            raise
    return sets
