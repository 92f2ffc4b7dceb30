"""The presentation plan: which stimulus is shown at each presentation, in order."""

from __future__ import annotations

import numpy as np

from ..errors import StimulusError
from ..protocol.schema import TimeSpec
from ..stimuli.base import RESERVED_COORDS, StimulusSet

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

    With ``time`` (a :class:`~neurorecord.protocol.schema.TimeSpec`), every presentation is a
    sequence of ``time.steps`` frames: blank, the stimulus from ``onset`` to ``offset``, blank.

    >>> from neurorecord.protocol.schema import TimeSpec
    >>> plan = PresentationPlan([DigitsSet("digits", "test")], time=TimeSpec(steps=6, onset=1, offset=4))
    >>> x = plan.images(0, 2)
    >>> x.shape, float(x[0, 0].max()), bool((x[0, 1] == x[0, 3]).all())
    ((2, 6, 1, 8, 8), 0.0, True)
    """

    def __init__(self, sets: list[StimulusSet], repetitions: int = 1, time: TimeSpec | None = None) -> None:
        shapes = {s.name: tuple(s.image_shape) for s in sets}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{k}: {v}" for k, v in shapes.items())
            raise StimulusError(f"stimuli: every set must have the same image shape (channels, height, width); found {listed}", loc=("stimuli",))
        for i, s in enumerate(sets):
            if s.time_steps is None:
                continue
            if time is None:
                raise StimulusError(
                    f"stimuli[{i}]: set {s.name!r} is a sequence of {s.time_steps} frames per stimulus; a sequence needs a "
                    f"time-resolved recording: add record.time with offset - onset = {s.time_steps} (and a subject that takes "
                    "(batch, steps, channels, height, width), such as zoo digits-gru)",
                    loc=("stimuli", i),
                )
            if s.time_steps != time.offset - time.onset:
                raise StimulusError(
                    f"stimuli[{i}]: set {s.name!r} has {s.time_steps} frames per stimulus, but record.time shows stimuli for "
                    f"offset - onset = {time.offset} - {time.onset} = {time.offset - time.onset} steps; make them equal",
                    loc=("stimuli", i),
                )
        for i, s in enumerate(sets):
            taken = sorted(RESERVED_COORDS & set(s.parameters()))
            if taken:
                raise StimulusError(
                    f"stimuli[{i}]: set {s.name!r} has a coordinate named {taken[0]!r}, a name the recording gives its own "
                    f"coordinate; rename it (reserved: {', '.join(sorted(RESERVED_COORDS))})",
                    loc=("stimuli", i),
                )
        self.sets = sets
        self.repetitions = repetitions
        self.time = time
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

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one presentation: (C, H, W), or (steps, C, H, W) when time-resolved."""
        return self.image_shape if self.time is None else (self.time.steps, *self.image_shape)

    def time_coords(self) -> dict[str, np.ndarray]:
        """Coordinates on ``time_bin`` (empty when not time-resolved): ``time_bin`` (step index),
        ``time_bin_start`` / ``time_bin_end`` (ms after stimulus onset) and ``epoch``
        (``before``, ``stimulus`` or ``after``)."""
        if self.time is None:
            return {}
        t = self.time
        step = np.arange(t.steps, dtype=np.int64)
        epoch = np.where(step < t.onset, "before", np.where(step < t.offset, "stimulus", "after")).astype(object)
        return {
            "time_bin": step,
            "time_bin_start": (step - t.onset) * t.step_ms,
            "time_bin_end": (step + 1 - t.onset) * t.step_ms,
            "epoch": epoch,
        }

    def images(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Inputs of presentations ``start`` to ``stop`` (exclusive): float32 (n, C, H, W), or
        (n, steps, C, H, W) when time-resolved; written into ``out`` when given (a buffer reused
        batch after batch: pinned host memory on a GPU run)."""
        stim = np.arange(start, stop, dtype=np.int64) % self.n_stimuli
        which = np.searchsorted(self._offsets, stim, side="right") - 1
        if out is None:
            out = np.empty((stop - start, *self.input_shape), dtype=np.float32)
        elif out.shape != (stop - start, *self.input_shape) or out.dtype != np.float32:
            raise ValueError(f"out: expected float32 of shape {(stop - start, *self.input_shape)}, found {out.dtype} {out.shape}")
        if self.time is not None:
            on, off = self.time.onset, self.time.offset
            out[:, :on] = self.time.blank
            out[:, off:] = self.time.blank
        for k in np.unique(which):
            sel = which == k
            block = self.sets[k].images(stim[sel] - self._offsets[k])
            if self.time is None:
                out[sel] = block
            elif block.ndim == 4:  # a static image, shown on every stimulus step
                out[sel, on:off] = block[:, None]
            else:
                out[sel, on:off] = block
        return out
