"""Image preprocessing: resize, channel conversion and normalisation, batch by batch.

The steps of a protocol's ``preprocess`` key run in this order, on float32 images whose last
three dims are (channels, height, width) (any leading dims: stimuli, and frames of a sequence):

1. ``resize: [height, width]``: bilinear interpolation of each channel with pixel centres
   aligned (``align_corners=False``), antialiased when shrinking; the same numbers as Pillow's
   ``Image.resize(..., BILINEAR)`` on float images (``torch.nn.functional.interpolate`` with
   ``antialias=True``).
2. ``channels``: 3 -> 1 is the ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``; 1 -> 3
   replicates the grey channel. Other channel counts (4: RGBA) cannot be converted: an error.
3. ``normalize``: ``(x - mean) / std`` per channel; a list gives one value per channel (after
   step 2) and must have exactly that many.

:class:`PreprocessedSet` applies them to any :class:`~neurorecord.stimuli.base.StimulusSet`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import StimulusError
from ..protocol._base import Preprocess
from .base import StimulusSet

__all__ = ["LUMA", "resize_images", "convert_channels", "normalize_images", "PreprocessedSet"]

#: Weights of R, G, B in the grey (luma) value: ITU-R BT.601.
LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize images to ``size`` = (height, width) pixels, bilinear, antialiased when shrinking.

    Parameters
    ----------
    images
        float32 array of shape (..., channels, height, width).
    size
        (height, width) of the result, in pixels.

    Returns
    -------
    numpy.ndarray
        float32, shape (..., channels, size[0], size[1]); ``images`` itself when it already has
        that size.

    Examples
    --------
    >>> x = np.full((2, 3, 8, 8), 0.5, dtype=np.float32)
    >>> y = resize_images(x, (4, 2))
    >>> y.shape, bool(np.allclose(y, 0.5))
    ((2, 3, 4, 2), True)
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    import torch  # here, so that reading stimuli metadata does not need torch

    lead = images.shape[:-2]
    flat = np.ascontiguousarray(images, dtype=np.float32).reshape(-1, 1, *images.shape[-2:])
    out = torch.nn.functional.interpolate(
        torch.from_numpy(flat), size=tuple(size), mode="bilinear", align_corners=False, antialias=True
    )
    return out.numpy().reshape(*lead, *size)


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert images to ``channels`` channels: 3 -> 1 by luma (:data:`LUMA`), 1 -> 3 by replication.

    Parameters
    ----------
    images
        float32 array of shape (..., channels, height, width) with 1 or 3 channels (any count
        when it already equals ``channels``).
    channels
        1 or 3.

    Returns
    -------
    numpy.ndarray
        float32, shape (..., channels, height, width); ``images`` itself when nothing changes.

    Raises
    ------
    ValueError
        The images have a channel count that cannot be converted (e.g. 4, RGBA).

    Examples
    --------
    >>> red = np.zeros((1, 3, 1, 1), dtype=np.float32); red[0, 0] = 1.0
    >>> round(float(convert_channels(red, 1)[0, 0, 0, 0]), 6)
    0.299
    """
    have = images.shape[-3]
    if have == channels:
        return images
    if (have, channels) == (1, 3):
        return np.repeat(images, 3, axis=-3)
    if (have, channels) == (3, 1):
        grey = np.einsum("...chw,c->...hw", images, np.asarray(LUMA, dtype=np.float32))
        return grey[..., None, :, :].astype(np.float32, copy=False)
    raise ValueError(f"cannot convert {have}-channel images to {channels} channel(s): only grey (1) <-> RGB (3)")


def normalize_images(images: np.ndarray, mean: float | list[float], std: float | list[float]) -> np.ndarray:
    """``(images - mean) / std`` per channel.

    Parameters
    ----------
    images
        float32 array of shape (..., channels, height, width).
    mean, std
        One value for every channel, or a list of one value per channel.

    Returns
    -------
    numpy.ndarray
        float32, same shape.

    Examples
    --------
    >>> x = np.ones((1, 2, 1, 1), dtype=np.float32)
    >>> normalize_images(x, [0.5, 1.0], [0.5, 2.0]).ravel().tolist()
    [1.0, 0.0]
    """
    n = images.shape[-3]
    m = np.broadcast_to(np.asarray(mean, dtype=np.float32), (n,)).reshape(n, 1, 1)
    s = np.broadcast_to(np.asarray(std, dtype=np.float32), (n,)).reshape(n, 1, 1)
    return ((images - m) / s).astype(np.float32, copy=False)


class PreprocessedSet(StimulusSet):
    """A stimulus set seen through a protocol's ``preprocess`` steps (resize, channels, normalize).

    Keeps the inner set's ``name``, ``time_steps``, length and :meth:`parameters`; applies the
    steps to each batch :meth:`images` returns, for static sets (n, C, H, W) and sequence sets
    (n, T, C, H, W) alike. :meth:`describe` adds the steps, in order and with their values, and
    the image shape before them to the inner set's description.

    Parameters
    ----------
    inner
        The set whose images are preprocessed.
    preprocess
        The steps (the protocol's ``preprocess`` model).

    Raises
    ------
    StimulusError
        ``channels`` asked of a set whose channel count cannot be converted, or a ``normalize``
        list whose length is not the channel count.

    Examples
    --------
    >>> from neurorecord.protocol.schema import Preprocess
    >>> from neurorecord.stimuli import DigitsSet
    >>> s = PreprocessedSet(DigitsSet("digits"), Preprocess(resize=(16, 16), channels=3))
    >>> s.image_shape, s.images(np.arange(2)).shape
    ((3, 16, 16), (2, 3, 16, 16))
    >>> [step["step"] for step in s.describe()["preprocess"]]
    ['resize', 'channels']
    """

    def __init__(self, inner: StimulusSet, preprocess: Preprocess) -> None:
        self.inner = inner
        self.preprocess = preprocess
        self.name = inner.name
        self.time_steps = inner.time_steps
        channels, height, width = inner.image_shape
        if preprocess.resize is not None:
            height, width = preprocess.resize
        target = preprocess.channels
        if target is not None and channels != target and channels not in (1, 3):
            raise StimulusError(
                f"stimuli '{inner.name}': preprocess.channels: converts grey (1) or RGB (3) images, "
                f"the set's images have {channels} channels"
            )
        channels = target if target is not None else channels
        norm = preprocess.normalize
        for key in ("mean", "std"):
            value = getattr(norm, key) if norm is not None else None
            if isinstance(value, list) and len(value) != channels:
                raise StimulusError(
                    f"stimuli '{inner.name}': preprocess.normalize.{key}: {len(value)} values given, the images have "
                    f"{channels} channel(s); give one value per channel or a single value for all"
                )
        self.image_shape = (channels, height, width)

    def __len__(self) -> int:
        return len(self.inner)

    def parameters(self) -> dict[str, np.ndarray]:
        return self.inner.parameters()

    def coordinate_attrs(self) -> dict[str, dict[str, Any]]:
        return self.inner.coordinate_attrs()

    def images(self, index: np.ndarray) -> np.ndarray:
        out = self.inner.images(index)
        pre = self.preprocess
        if pre.resize is not None:
            out = resize_images(out, pre.resize)
        if pre.channels is not None:
            out = convert_channels(out, pre.channels)
        if pre.normalize is not None:
            out = normalize_images(out, pre.normalize.mean, pre.normalize.std)
        return out

    def describe(self) -> dict[str, Any]:
        described = self.inner.describe()
        described["image_shape_before_preprocess"] = described["image_shape"]
        described["image_shape"] = list(self.image_shape)
        described["preprocess"] = self.steps()
        return described

    def steps(self) -> list[dict[str, Any]]:
        """The steps applied, in order, each with its values and method (JSON-serialisable)."""
        pre = self.preprocess
        steps: list[dict[str, Any]] = []
        if pre.resize is not None:
            steps.append({"step": "resize", "size": list(pre.resize), "method": "bilinear, antialiased when shrinking"})
        if pre.channels is not None:
            method = "ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B" if pre.channels == 1 else "grey replicated"
            steps.append({"step": "channels", "channels": pre.channels, "method": method})
        if pre.normalize is not None:
            n = self.image_shape[0]
            mean, std = (np.broadcast_to(np.asarray(v, dtype=float), (n,)).tolist() for v in (pre.normalize.mean, pre.normalize.std))
            steps.append({"step": "normalize", "mean": mean, "std": std, "method": "(x - mean) / std per channel"})
        return steps
