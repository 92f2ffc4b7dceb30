"""Stimuli loaded from files: image folders, .npz archives, zarr arrays with a labels table.

:class:`ImageFolderSet` is here; :class:`~neurorecord.stimuli.arrays.NpzSet` and
:class:`~neurorecord.stimuli.arrays.ZarrSet` live with the ``.npy`` set in
:mod:`neurorecord.stimuli.arrays`. :data:`LOADED_BUILDERS` builds each from its protocol entry.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ..errors import StimulusError
from ..protocol.loaded import ImageFolderStimuli, NpzStimuli, ZarrStimuli
from ..protocol.schema import Protocol
from .arrays import NpzSet, ZarrSet, tree_sha256
from .base import StimulusSet
from .preprocess import convert_channels, resize_images

__all__ = ["LOADED_BUILDERS", "ImageFolderSet", "IMAGE_SUFFIXES"]

#: File name endings read as images (compared case-insensitively).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")

# Pillow modes, by what they hold.
_GREY = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_COLOUR = {"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr"}
_SIXTEEN_BIT = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


class ImageFolderSet(StimulusSet):
    """Images in a folder with one sub-folder per class, read from disk batch by batch.

    Layout: ``path/<category>/.../<file>``. Categories are the sub-folder names in sorted order;
    files are taken in sorted order within each (all depths), category by category. Hidden
    files and folders (names starting with ``.``) are ignored; any other file must be an image
    (:data:`IMAGE_SUFFIXES`, any case). GIF and TIFF files give their first frame.

    Coordinates: ``stimulus_id`` (the file's path relative to ``path``, ``/``-separated:
    ``cat/0001.png``), ``category`` (the sub-folder name) and ``label`` (the category's index
    in sorted order, from 0).

    Pixel values are float32 in [0, 1]: 8-bit images / 255, 16-bit images / 65535 (Pillow's
    32-bit integer mode ``I`` is taken as 16-bit too), 32-bit float images as stored, bilevel
    images 0 or 1. Palette, CMYK and YCbCr images become RGB. An alpha channel is composited
    over black (each colour value times its opacity; opaque images are unchanged). Images are
    grey (1 channel) or colour (3).

    Building the set reads only each file's header (size and mode); pixels are decoded when
    :meth:`images` asks for them. :meth:`describe` records the folder and a sha256 of every
    file's relative path and content (:func:`~neurorecord.stimuli.arrays.tree_sha256`),
    computed when first asked for.

    Parameters
    ----------
    name
        The set's name.
    path
        The folder.
    size
        (height, width): resize every image to it (bilinear, antialiased when shrinking). Needed
        when the images differ in size.
    channels
        1 or 3: convert every image (luma / grey replicated). Needed when grey and colour
        images are mixed.

    Raises
    ------
    StimulusError
        The folder is missing or empty, has no class sub-folders, files at its top level, an
        empty class folder, a non-image or unreadable file, images of different sizes without
        ``size``, or grey and colour images without ``channels``; each message names the files.

    Examples
    --------
    >>> import tempfile, os
    >>> from PIL import Image
    >>> d = tempfile.mkdtemp()
    >>> for cat in ("cat", "dog"):
    ...     os.mkdir(os.path.join(d, cat))
    ...     Image.new("L", (6, 4), 255).save(os.path.join(d, cat, "a.png"))
    >>> s = ImageFolderSet("pets", d)
    >>> s.image_shape, s.parameters()["stimulus_id"].tolist(), s.parameters()["label"].tolist()
    ((1, 4, 6), ['cat/a.png', 'dog/a.png'], [0, 1])
    >>> float(s.images(np.array([1])).max())
    1.0
    """

    def __init__(
        self, name: str, path: Path | str, size: tuple[int, int] | None = None, channels: int | None = None
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.size = tuple(size) if size is not None else None
        self.channels = channels
        self.categories, self._files, self._labels = _list_folder(self.path, name)
        headers = [_header(self.path, rel, name) for rel in self._files]
        sizes = {(h, w) for h, w, _ in headers}
        if self.size is None and len(sizes) > 1:
            first = headers[0][:2]
            other = next(i for i, hdr in enumerate(headers) if hdr[:2] != first)
            raise StimulusError(
                f"{self.path}: stimuli '{name}': images differ in size (height x width): {self._files[0]} is "
                f"{first[0]}x{first[1]}, {self._files[other]} is {headers[other][0]}x{headers[other][1]}; "
                "give preprocess.resize: [height, width]"
            )
        colour = [mode in _COLOUR for _, _, mode in headers]
        if channels is None and any(colour) and not all(colour):
            grey, rgb = colour.index(False), colour.index(True)
            raise StimulusError(
                f"{self.path}: stimuli '{name}': mixes grey and colour images: {self._files[grey]} is grey "
                f"(mode {headers[grey][2]}), {self._files[rgb]} is colour (mode {headers[rgb][2]}); "
                "give preprocess.channels: 1 (grey) or 3 (RGB)"
            )
        height, width = self.size if self.size is not None else sizes.pop()
        self.image_shape = (channels or (3 if colour[0] else 1), height, width)

    def __len__(self) -> int:
        return len(self._files)

    def parameters(self) -> dict[str, np.ndarray]:
        return {
            "stimulus_id": np.array(self._files, dtype=object),
            "category": np.array([self.categories[k] for k in self._labels], dtype=object),
            "label": self._labels.copy(),
        }

    def images(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), *self.image_shape), dtype=np.float32)
        for k, i in enumerate(np.asarray(index)):
            image = _decode(self.path, self._files[i], self.name)[None]
            if self.size is not None:
                image = resize_images(image, self.size)
            if self.channels is not None:
                image = convert_channels(image, self.channels)
            out[k] = image[0]
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "path": str(self.path),
            "categories": list(self.categories),
            "sha256": self.sha256,
            "sha256_of": "each image file's relative path and content, in stimulus order",
        }

    @cached_property
    def sha256(self) -> str:
        """sha256 of the images' relative paths and contents (reads every file once)."""
        return tree_sha256(self.path, self._files)


def _list_folder(root: Path, name: str) -> tuple[list[str], list[str], np.ndarray]:
    """Categories, image files (relative posix paths, in stimulus order) and their labels."""
    what = f"{root}: stimuli '{name}'"
    if not root.exists():
        raise StimulusError(f"{what}: path: folder not found, expected a folder with one sub-folder of images per class")
    if not root.is_dir():
        raise StimulusError(f"{what}: path: is a file, expected a folder with one sub-folder of images per class")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    if not entries:
        raise StimulusError(f"{what}: the folder is empty; expected one sub-folder of images per class")
    categories = [p.name for p in entries if p.is_dir()]
    stray = [p.name for p in entries if not p.is_dir()]
    if stray:
        found = "only files" if not categories else "files next to the class sub-folders"
        raise StimulusError(
            f"{what}: expected one sub-folder of images per class, found {found}: {', '.join(stray[:5])}"
            + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        )
    files: list[str] = []
    labels: list[int] = []
    for label, category in enumerate(categories):
        found = sorted(_walk(root / category))
        if not found:
            raise StimulusError(f"{what}: class folder {category!r} holds no images")
        for rel in found:
            if Path(rel).suffix.lower() not in IMAGE_SUFFIXES:
                raise StimulusError(
                    f"{what}: {category}/{rel}: not an image file; expected {', '.join(IMAGE_SUFFIXES)} (any case)"
                )
        files += [f"{category}/{rel}" for rel in found]
        labels += [label] * len(found)
    return categories, files, np.array(labels, dtype=np.int64)


def _walk(folder: Path) -> list[str]:
    """Non-hidden files under a folder, as posix paths relative to it."""
    out = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [Path(current, f).relative_to(folder).as_posix() for f in names if not f.startswith(".")]
    return out


def _header(root: Path, rel: str, name: str) -> tuple[int, int, str]:
    """(height, width, Pillow mode) of an image, from its header."""
    try:
        with Image.open(root / rel) as image:
            width, height = image.size
            mode = image.mode
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise StimulusError(f"{root / rel}: stimuli '{name}': cannot read the image ({exc})") from None
    if mode not in _GREY | _COLOUR:
        raise StimulusError(f"{root / rel}: stimuli '{name}': unsupported image mode {mode!r}; expected grey or colour images")
    return height, width, mode


def _decode(root: Path, rel: str, name: str) -> np.ndarray:
    """An image's pixels: float32 (1 or 3, H, W) in [0, 1] (see :class:`ImageFolderSet`)."""
    try:
        with Image.open(root / rel) as image:
            mode = image.mode
            if mode in ("P", "PA"):
                image = image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
            elif mode in ("CMYK", "YCbCr", "RGBX", "1"):
                image = image.convert("L" if mode == "1" else "RGB")
            pixels = np.asarray(image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise StimulusError(f"{root / rel}: stimuli '{name}': cannot read the image ({exc})") from None
    if mode in _SIXTEEN_BIT:
        values = pixels.astype(np.float32) / np.float32(65535)
    elif mode == "F":
        values = pixels.astype(np.float32)
    else:
        values = pixels.astype(np.float32) / np.float32(255)
    values = values.reshape(*values.shape[:2], -1)  # (H, W, bands)
    if values.shape[2] in (2, 4):  # grey or colour with alpha: composite over black
        values = values[:, :, :-1] * values[:, :, -1:]
    return np.ascontiguousarray(values.transpose(2, 0, 1))


def _image_folder(spec: ImageFolderStimuli, protocol: Protocol) -> StimulusSet:
    pre = spec.preprocess
    return ImageFolderSet(
        spec.name, protocol.resolve(spec.path), pre.resize if pre else None, pre.channels if pre else None
    )


#: ``{spec model: builder(spec, protocol)}`` for the loaded kinds.
LOADED_BUILDERS: dict[type, Callable[[Any, Protocol], StimulusSet]] = {
    ImageFolderStimuli: _image_folder,
    NpzStimuli: lambda spec, protocol: NpzSet(spec.name, protocol.resolve(spec.path), spec.images, spec.labels),
    ZarrStimuli: lambda spec, protocol: ZarrSet(
        spec.name, protocol.resolve(spec.path), protocol.resolve(spec.table) if spec.table else None
    ),
}
