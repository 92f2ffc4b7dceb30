"""The stimulus-set interface every kind implements."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

__all__ = ["StimulusSet", "RESERVED_COORDS", "COORD_ATTRS"]

#: Coordinate names the recording sets itself (on presentation, neuroid and time_bin): a stimulus
#: set's :meth:`StimulusSet.parameters` may not use them.
RESERVED_COORDS = frozenset({
    "presentation", "repetition", "stimulus_set", "jitter_x", "jitter_y",
    "neuroid", "neuroid_id", "region", "channel", "channel_y", "channel_x",
    "time_bin", "time_bin_start", "time_bin_end", "epoch", "activity",
})


#: CF-style attrs (``long_name``, ``units`` where the values have one) of the coordinates a
#: stimulus set may give; :meth:`StimulusSet.coordinate_attrs` reads them.
COORD_ATTRS: dict[str, dict[str, str]] = {
    "stimulus_id": {"long_name": "stimulus identifier"},
    "label": {"long_name": "class label"},
    "category": {"long_name": "category name"},
    "digit_index": {"long_name": "index of the image in sklearn's digits"},
}


class StimulusSet(abc.ABC):
    """A labelled, indexable set of images.

    Subclasses know how many stimuli they hold, their parameters (one array per coordinate,
    including the string ``stimulus_id``), and how to produce the images of any subset on
    demand, so that a set larger than memory can be streamed batch by batch.

    Attributes
    ----------
    name : str
        The set's name in the protocol; recorded as the ``stimulus_set`` coordinate.
    image_shape : tuple of int
        (channels, height, width) of every image (of every frame, for a sequence set).
    time_steps : int or None
        None for static images; for a sequence set (a drifting grating, a movie) the number of
        frames each stimulus has, and :meth:`images` then returns (n, time_steps, C, H, W).
    """

    name: str
    image_shape: tuple[int, int, int]
    time_steps: int | None = None

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of stimuli."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, np.ndarray]:
        """Per-stimulus coordinates, each of length ``len(self)``; ``stimulus_id`` (str) is required."""

    @abc.abstractmethod
    def images(self, index: np.ndarray) -> np.ndarray:
        """Images of the stimuli at ``index``: float32, shape (len(index), channels, height, width),
        or (len(index), time_steps, channels, height, width) for a sequence set."""

    def coordinate_attrs(self) -> dict[str, dict[str, Any]]:
        """CF-style attrs of the set's coordinates: ``{name: {"long_name": ..., "units": ...}}``.

        Only coordinates with something to say are listed (``units`` only where the values
        have a unit). The base set looks names up in :data:`COORD_ATTRS`; generated sets add
        their parameters' units.

        >>> from neurorecord.stimuli import DigitsSet
        >>> DigitsSet("digits", "test").coordinate_attrs()["label"]
        {'long_name': 'class label'}
        """
        return {name: dict(COORD_ATTRS[name]) for name in self.parameters() if name in COORD_ATTRS}

    def describe(self) -> dict[str, Any]:
        """Provenance of the set, JSON-serialisable; recorded in the store's ``stimulus_sets`` attribute.

        Subclasses add what they were built from (files and their sha256, generator parameters,
        preprocessing steps) to this base description.
        """
        return {
            "name": self.name,
            "class": type(self).__name__,
            "n": len(self),
            "image_shape": list(self.image_shape),
            "time_steps": self.time_steps,
        }
