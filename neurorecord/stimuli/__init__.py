"""Stimulus sets: labelled images a subject is shown (generated or loaded)."""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel

from ..errors import StimulusError
from ..protocol.schema import DigitsStimuli, NpyStimuli, Protocol
from .arrays import NpySet, NpzSet, ZarrSet, check_values
from .base import StimulusSet
from .digits import DigitsSet, digits_split, load_digits_array
from .loaded import LOADED_BUILDERS, ImageFolderSet
from .parametric import PARAMETRIC_BUILDERS
from .preprocess import PreprocessedSet

__all__ = ["StimulusSet", "DigitsSet", "NpySet", "NpzSet", "ZarrSet", "ImageFolderSet", "PreprocessedSet", "build_stimulus_set", "build_stimulus_sets", "coordinate_attrs", "digits_split", "load_digits_array"]

#: How each spec model becomes a stimulus set: ``builder(spec, protocol) -> StimulusSet``.
BUILDERS: dict[type[BaseModel], Callable[[BaseModel, Protocol], StimulusSet]] = {
    DigitsStimuli: lambda spec, protocol: DigitsSet(spec.name, spec.split),
    NpyStimuli: lambda spec, protocol: NpySet(
        spec.name, protocol.resolve(spec.path), protocol.resolve(spec.labels) if spec.labels else None
    ),
    **LOADED_BUILDERS,
    **PARAMETRIC_BUILDERS,
}


def build_stimulus_set(spec: BaseModel, protocol: Protocol) -> StimulusSet:
    """Build the stimulus set one ``stimuli:`` entry describes (paths resolve against the protocol's folder).

    An entry's ``preprocess`` steps wrap the set in a
    :class:`~neurorecord.stimuli.preprocess.PreprocessedSet`, whatever its kind.
    """
    built = BUILDERS[type(spec)](spec, protocol)
    check_values(built)
    preprocess = getattr(spec, "preprocess", None)
    return built if preprocess is None else PreprocessedSet(built, preprocess)


def coordinate_attrs(sets: list[StimulusSet]) -> dict[str, dict]:
    """CF-style attrs (``long_name``, ``units``, ``period``) of the ``presentation`` coordinates
    that the sets give, for the recording to attach to them. Where two sets disagree on a
    coordinate's attrs, only the keys they agree on are kept.

    >>> from neurorecord.stimuli import DigitsSet
    >>> coordinate_attrs([DigitsSet("digits", "test")])["stimulus_id"]
    {'long_name': 'stimulus identifier'}
    """
    merged: dict[str, dict] = {}
    for s in sets:
        for name, attrs in s.coordinate_attrs().items():
            merged[name] = dict(attrs) if name not in merged else {k: v for k, v in merged[name].items() if attrs.get(k) == v}
    return merged


def build_stimulus_sets(protocol: Protocol) -> list[StimulusSet]:
    """Build every stimulus set a protocol names, in protocol order."""
    sets: list[StimulusSet] = []
    for i, spec in enumerate(protocol.stimuli):
        try:
            sets.append(build_stimulus_set(spec, protocol))
        except StimulusError as exc:
            exc.loc = exc.loc or ("stimuli", i)
            raise
    return sets
