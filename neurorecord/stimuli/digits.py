"""scikit-learn's 8x8 handwritten digits as a stimulus set.

The 1,797 images and labels of :func:`sklearn.datasets.load_digits` (the UCI "Optical
Recognition of Handwritten Digits" test set) ship with the package as ``data/digits.npz``
(pixel counts 0..16 as uint8, 45 kB), so reading them costs milliseconds and no import of
scikit-learn; ``tests/record/test_digits_data.py`` checks them equal to scikit-learn's.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np

from .base import StimulusSet

__all__ = ["DigitsSet", "digits_split", "load_digits_array"]


@lru_cache(maxsize=1)
def load_digits_array() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as float32 images in [0, 1], shape (1797, 1, 8, 8), and int64 labels.

    Read from the package's copy of scikit-learn's digits (``neurorecord/data/digits.npz``);
    pixel values are scikit-learn's counts (0..16) divided by 16.

    >>> images, labels = load_digits_array()
    >>> images.shape, images.dtype, float(images.max()), labels[:5].tolist()
    ((1797, 1, 8, 8), dtype('float32'), 1.0, [0, 1, 2, 3, 4])
    """
    with resources.files("neurorecord").joinpath("data", "digits.npz").open("rb") as file, np.load(file) as data:
        counts, target = data["images"], data["labels"]
    images = (counts.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    images.setflags(write=False)
    labels = target.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def digits_split(split: Literal["train", "test", "all"]) -> np.ndarray:
    """Indices into the digits dataset for a split.

    The split is fixed and stratified: within each class, every fourth image in dataset order
    (the 1st, 5th, 9th, ...) is ``test``, the others ``train``.

    >>> len(digits_split("test")), len(digits_split("train")), len(digits_split("all"))
    (454, 1343, 1797)
    """
    _, labels = load_digits_array()
    if split == "all":
        return np.arange(len(labels))
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank_in_class[where] = np.arange(len(where))
    is_test = rank_in_class % 4 == 0
    return np.flatnonzero(is_test if split == "test" else ~is_test)


class DigitsSet(StimulusSet):
    """The digits of one split; coordinates ``stimulus_id`` (``digits-0042``: the image's
    index in scikit-learn's dataset), ``label`` (the digit) and ``digit_index``.

    >>> s = DigitsSet("digits", "test")
    >>> len(s), s.image_shape, s.parameters()["stimulus_id"][0]
    (454, (1, 8, 8), 'digits-0000')
    """

    def __init__(self, name: str, split: Literal["train", "test", "all"] = "test") -> None:
        self.name = name
        self.split = split
        self._index = digits_split(split)
        self.image_shape = (1, 8, 8)

    def __len__(self) -> int:
        return len(self._index)

    def parameters(self) -> dict[str, np.ndarray]:
        _, labels = load_digits_array()
        ids = np.array([f"digits-{i:04d}" for i in self._index], dtype=object)
        return {"stimulus_id": ids, "label": labels[self._index], "digit_index": self._index.copy()}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": "sklearn.datasets.load_digits", "split": self.split, "scaling": "pixel / 16"}

    def images(self, index: np.ndarray) -> np.ndarray:
        images, _ = load_digits_array()
        return images[self._index[np.asarray(index)]]
