"""Schema of the stimulus kinds loaded from files: image folders, ``.npz`` archives, zarr arrays.

Paths are relative to the protocol file's folder. Every kind takes the ``preprocess`` key of
:class:`~neurorecord.protocol.schema.StimulusBase` (resize, channels, normalize).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ._base import StimulusBase

__all__ = ["LOADED_SPECS", "ImageFolderStimuli", "NpzStimuli", "ZarrStimuli"]


class ImageFolderStimuli(StimulusBase):
    """Images in a folder with one sub-folder per class (png, jpg/jpeg, bmp, gif, tif/tiff).

    Coordinates: ``category`` (the sub-folder's name), ``label`` (the index of the category
    among the sub-folder names in sorted order, from 0) and ``stimulus_id`` (the file's path
    relative to the folder, with ``/`` separators: ``cat/0001.png``). Images of different sizes
    need ``preprocess.resize``; a folder mixing grey and colour images needs
    ``preprocess.channels``. Pixel values are scaled to [0, 1] (8-bit / 255, 16-bit / 65535).

    >>> ImageFolderStimuli(name="photos", kind="image_folder", path="photos").path
    'photos'
    """

    kind: Literal["image_folder"] = Field(..., description="Images in class sub-folders of a folder.")
    path: str = Field(..., min_length=1, description="Folder holding one sub-folder of images per class.")


class NpzStimuli(StimulusBase):
    """Images from an array in a ``.npz`` archive (``numpy.savez``), read into memory whole.

    The ``images`` array has shape (n, channels, height, width) or (n, height, width), any real
    dtype; values are converted to float32 unscaled. Every other 1-D array of length n in the
    archive becomes a coordinate named after its key (numbers, booleans or strings); an array
    named ``stimulus_id`` gives the ids (unique), otherwise they are ``<set name>-<index>``.

    >>> NpzStimuli(name="faces", kind="npz", path="faces.npz", labels="y").images
    'images'
    """

    kind: Literal["npz"] = Field(..., description="Images from an array in a .npz archive.")
    path: str = Field(..., min_length=1, description="The .npz archive (numpy.savez or numpy.savez_compressed).")
    images: str = Field("images", min_length=1, description="Key of the image array: (n, C, H, W) or (n, H, W).")
    labels: str | None = Field(None, description="Key of an array of n integers recorded as the `label` coordinate.")


class ZarrStimuli(StimulusBase):
    """Images from a zarr array (format 3 or 2) of shape (n, C, H, W) or (n, H, W), read batch by batch.

    Values are converted to float32 unscaled. ``table`` names a CSV file with a header row and
    one row per image, in the array's order: its columns become coordinates (a column whose
    every cell is an integer holds integers, else one whose cells are numbers or empty holds
    floats with NaN for empty cells, else strings). A ``stimulus_id`` column gives the ids
    (unique), otherwise they are ``<set name>-<index>``; a ``label`` column must hold integers.

    >>> ZarrStimuli(name="movies", kind="zarr", path="frames.zarr", table="frames.csv").table
    'frames.csv'
    """

    kind: Literal["zarr"] = Field(..., description="Images from a zarr array, read batch by batch.")
    path: str = Field(..., min_length=1, description="Folder of the zarr array (not of a group).")
    table: str | None = Field(None, description="CSV file, header row and one row per image: its columns become coordinates.")


#: Spec models of the loaded kinds (besides digits and npy), joined into the protocol's stimulus union.
LOADED_SPECS: tuple[type[BaseModel], ...] = (ImageFolderStimuli, NpzStimuli, ZarrStimuli)
