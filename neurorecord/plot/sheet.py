"""Contact sheets: thumbnails of a protocol's stimulus sets, to see what the subject will see.

Drawn by ``neurorecord stimuli`` and by the report (:mod:`neurorecord.report`).

One block per stimulus set, titled with its name and how many of its stimuli are shown. A set
of static images is a grid of thumbnails; a sequence set (``time_steps`` not None) shows one row
per stimulus, with up to ``frames`` of its frames taken evenly from first to last. A set is shown
in at most ``max_per_set`` thumbnails (each frame counts one); a set with more stimuli than fit is
sampled evenly, first and last included.

Images are drawn as the subject receives them, after the protocol's ``preprocess:``. One channel
is drawn in grey, with black and white at the lowest and highest value among the set's shown
images (one scale per set, so contrast differences between stimuli stay visible). Three channels
are drawn as RGB, with values clipped to [0, 1]: nothing is undone, so a normalised set looks
clipped. Other channel counts are drawn as the mean over channels, in grey.

>>> from neurorecord.stimuli import DigitsSet
>>> fig = contact_sheet([DigitsSet("digits", "test")], max_per_set=10)
>>> len([ax for ax in fig.get_axes() if ax.images])
10
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure, SubFigure

from ..stimuli.base import StimulusSet

__all__ = ["contact_sheet", "sample_indices", "thumbnail_title"]

#: Thumbnails per row of a static set.
COLUMNS = 8
#: Side of one thumbnail, inches.
THUMB = 1.1


def sample_indices(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` indices spread evenly over ``range(n)``, first and last included.

    >>> sample_indices(10, 4).tolist(), sample_indices(3, 64).tolist()
    ([0, 3, 6, 9], [0, 1, 2])
    """
    if n <= k:
        return np.arange(n)
    return np.round(np.linspace(0, n - 1, k)).astype(np.int64)


def _short(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    text = str(value)
    return text if len(text) <= 12 else text[:11] + "…"


def thumbnail_title(params: dict[str, np.ndarray], i: int, varying: Sequence[str]) -> str:
    """Title of stimulus ``i``: up to two of the ``varying`` parameters, one per line, or its id.

    >>> p = {"stimulus_id": np.array(["g-1", "g-2"]), "orientation": np.array([0.0, 90.0])}
    >>> thumbnail_title(p, 1, ["orientation"]), thumbnail_title(p, 1, [])
    ('orientation 90', 'g-2')
    """
    if not varying:
        return _short(params["stimulus_id"][i])
    return "\n".join(f"{name} {_short(params[name][i])}" for name in varying[:2])


def _varying(params: dict[str, np.ndarray]) -> list[str]:
    """Parameters (besides ``stimulus_id``) that take more than one value in the set."""
    return [k for k, v in params.items() if k != "stimulus_id" and len(np.unique(np.asarray(v).astype(str))) > 1]


def _drawable(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) grey, or (H, W, 3) RGB clipped to [0, 1]."""
    if image.shape[0] == 3:
        return np.clip(np.moveaxis(image, 0, -1), 0.0, 1.0)
    return image[0] if image.shape[0] == 1 else image.mean(axis=0)


def _draw(ax, image: np.ndarray, vmin: float, vmax: float) -> None:
    drawn = _drawable(image)
    if drawn.ndim == 2:
        ax.imshow(drawn, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    else:
        ax.imshow(drawn, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _block(fig: SubFigure, stim: StimulusSet, index: np.ndarray, images: np.ndarray, frames: int) -> None:
    """Draw one set's thumbnails (``images`` are those of ``index``) into its sub-figure."""
    params = stim.parameters()
    varying = _varying(params)
    channels = stim.image_shape[0]
    vmin, vmax = float(images.min()), float(images.max())
    vmax = vmax if vmax > vmin else vmin + 1.0
    colour = {1: "grey", 3: "RGB clipped to [0, 1]"}.get(channels, f"mean of {channels} channels")
    scale = f", black {vmin:.3g} to white {vmax:.3g}" if channels != 3 else ""
    what = f"{len(index)} of {len(stim)} stimuli" + (", sampled evenly" if len(index) < len(stim) else "")
    sequence = stim.time_steps is not None
    shape = "x".join(map(str, stim.image_shape)) + (f", {stim.time_steps} frames" if sequence else "")
    fig.suptitle(f"{stim.name}: {what}; {shape}; {colour}{scale}", fontsize=9)
    if sequence:
        steps = sample_indices(stim.time_steps, frames)
        axes = fig.subplots(len(index), len(steps), squeeze=False)
        for row, i in enumerate(index):
            for col, t in enumerate(steps):
                ax = axes[row, col]
                _draw(ax, images[row, t], vmin, vmax)
                if row == 0:
                    ax.set_title(f"t={t}", fontsize=7)
            axes[row, 0].set_ylabel(thumbnail_title(params, int(i), varying), fontsize=6)
    else:
        cols = min(COLUMNS, len(index))
        axes = fig.subplots(math.ceil(len(index) / cols), cols, squeeze=False)
        for ax in axes.flat[len(index):]:
            ax.set_axis_off()
        for k, i in enumerate(index):
            ax = axes.flat[k]
            _draw(ax, images[k], vmin, vmax)
            ax.set_title(thumbnail_title(params, int(i), varying), fontsize=6)


def _most_stimuli(stim: StimulusSet, max_per_set: int, frames: int) -> int:
    """Stimuli shown of a set: ``max_per_set`` thumbnails, a sequence's frames counting one each."""
    return max_per_set if stim.time_steps is None else max(1, max_per_set // min(stim.time_steps, frames))


def contact_sheet(sets: Sequence[StimulusSet], max_per_set: int = 64, frames: int = 8) -> Figure:
    """A figure of thumbnails of every set (see the module's description); save it with ``savefig``.

    Parameters
    ----------
    sets
        Stimulus sets, e.g. ``neurorecord.stimuli.build_stimulus_sets(protocol)``.
    max_per_set
        Most thumbnails per set (each frame of a sequence counts one); larger sets are sampled evenly.
    frames
        Most frames shown per stimulus of a sequence set, taken evenly from first to last.
    """
    shown = [sample_indices(len(s), _most_stimuli(s, max_per_set, frames)) for s in sets]
    rows, widths = [], []
    for stim, index in zip(sets, shown):
        if stim.time_steps is not None:
            rows.append(len(index))
            widths.append(min(stim.time_steps, frames))
        else:
            cols = min(COLUMNS, len(index))
            rows.append(math.ceil(len(index) / cols))
            widths.append(cols)
    heights = [THUMB * 1.3 * r + 0.5 for r in rows]
    fig = Figure(figsize=(max(widths) * THUMB + 1.0, sum(heights)), layout="constrained")
    blocks = fig.subfigures(len(sets), 1, height_ratios=heights, squeeze=False)[:, 0]
    for block, stim, index in zip(blocks, sets, shown):
        _block(block, stim, index, stim.images(index), frames)
    return fig
