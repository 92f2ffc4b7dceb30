"""The presentation plan: which stimulus is shown at each presentation, in order."""

from __future__ import annotations

import numpy as np

from ..errors import StimulusError
from ..stimuli.base import StimulusSet

__all__ = ["PresentationPlan"]


class PresentationPlan:
    """Presentations of several stimulus sets, repeated ``repetitions`` times.

    Order: repetition 0 shows every stimulus of every set (sets in protocol order), then
    repetition 1, and so on, so presentation ``p`` is stimulus ``p % n_stimuli`` of the
    concatenated sets in repetition ``p // n_stimuli``.

    >>> from neurorecord.stimuli import DigitsSet
    >>> plan = PresentationPlan([DigitsSet("digits", "test")], repetitions=2)
    >>> len(plan), plan.coords()["repetition"][[0, 454]].tolist()
    (908, [0, 1])
    """

    def __init__(self, sets: list[StimulusSet], repetitions: int = 1) -> None:
        shapes = {s.name: tuple(s.image_shape) for s in sets}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{k}: {v}" for k, v in shapes.items())
            raise StimulusError(f"stimuli: every set must have the same image shape (channels, height, width); found {listed}", loc=("stimuli",))
        self.sets = sets
        self.repetitions = repetitions
        self.image_shape = next(iter(shapes.values()))
        sizes = np.array([len(s) for s in sets], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.n_stimuli = int(self._offsets[-1])

    def __len__(self) -> int:
        return self.n_stimuli * self.repetitions

    def coord_names(self) -> set[str]:
        """Names of the coordinates :meth:`coords` gives, without building them."""
        return {"stimulus_id", "repetition", "stimulus_set"} | {k for s in self.sets for k in s.parameters()}

    def coords(self) -> dict[str, np.ndarray]:
        """Coordinates on ``presentation``: ``stimulus_id``, ``repetition``, ``stimulus_set`` and
        every stimulus parameter (a parameter missing from some set is NaN, or ``""`` for text)."""
        params = [s.parameters() for s in self.sets]
        names = list(dict.fromkeys(k for p in params for k in p))
        columns: dict[str, np.ndarray] = {}
        for name in names:
            parts = []
            sample = next(p[name] for p in params if name in p)
            text = sample.dtype == object or sample.dtype.kind in "US"
            for p, s in zip(params, self.sets):
                if name in p:
                    parts.append(np.asarray(p[name], dtype=object) if text else np.asarray(p[name]))
                else:
                    parts.append(np.full(len(s), "", dtype=object) if text else np.full(len(s), np.nan))
            columns[name] = np.concatenate(parts)
        set_names = np.concatenate([np.full(len(s), s.name, dtype=object) for s in self.sets])
        out = {
            "stimulus_id": np.tile(columns.pop("stimulus_id"), self.repetitions),
            "repetition": np.repeat(np.arange(self.repetitions, dtype=np.int64), self.n_stimuli),
            "stimulus_set": np.tile(set_names, self.repetitions),
        }
        out.update({k: np.tile(v, self.repetitions) for k, v in columns.items()})
        return out

    def images(self, start: int, stop: int) -> np.ndarray:
        """Images of presentations ``start`` to ``stop`` (exclusive): float32 (n, C, H, W)."""
        stim = np.arange(start, stop, dtype=np.int64) % self.n_stimuli
        which = np.searchsorted(self._offsets, stim, side="right") - 1
        out = np.empty((stop - start, *self.image_shape), dtype=np.float32)
        for k in np.unique(which):
            sel = which == k
            out[sel] = self.sets[k].images(stim[sel] - self._offsets[k])
        return out
