"""The stimulus-set interface every kind implements."""

from __future__ import annotations

import abc

import numpy as np

__all__ = ["StimulusSet"]


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
        (channels, height, width) of every image.
    """

    name: str
    image_shape: tuple[int, int, int]

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of stimuli."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, np.ndarray]:
        """Per-stimulus coordinates, each of length ``len(self)``; ``stimulus_id`` (str) is required."""

    @abc.abstractmethod
    def images(self, index: np.ndarray) -> np.ndarray:
        """Images of the stimuli at ``index``: float32, shape (len(index), channels, height, width)."""
