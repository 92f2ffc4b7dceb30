"""Stimuli loaded from array files: ``.npy`` (memory-mapped), ``.npz`` archives, zarr arrays.

Values are converted to float32 batch by batch and not scaled (``preprocess.normalize`` scales
them: ``{mean: 0, std: 255}`` maps 8-bit values to [0, 1]). Also the pieces the loaded kinds
share: per-image coordinate tables (CSV), their checks, and sha256 of files and folders.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StimulusError, did_you_mean
from .base import RESERVED_COORDS, StimulusSet

__all__ = ["NpySet", "NpzSet", "ZarrSet", "check_values", "index_ids", "read_table", "check_coords", "file_sha256", "tree_sha256"]

#: Presentation coordinates the recorder adds itself: no stimulus set may define them.


def index_ids(name: str, n: int) -> np.ndarray:
    """Ids ``<name>-<index>`` for n stimuli, the index zero-padded to one width (so they sort in order).

    >>> index_ids("noise", 12)[[0, 11]].tolist()
    ['noise-00', 'noise-11']
    """
    width = len(str(max(n - 1, 0)))
    return np.array([f"{name}-{i:0{width}d}" for i in range(n)], dtype=object)


class _ArraySet(StimulusSet):
    """A set read row by row from an array (``_array``: n x image), with per-image coordinates
    ``_coords``; ``stimulus_id`` is ``<set name>-<index>`` unless ``_coords`` holds one."""

    _array: Any
    _coords: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self._array.shape[0])

    def parameters(self) -> dict[str, np.ndarray]:
        return {"stimulus_id": index_ids(self.name, len(self)), **self._coords}

    def images(self, index: np.ndarray) -> np.ndarray:
        return _read_rows(self._array, np.asarray(index), self.image_shape)


class NpySet(_ArraySet):
    """Images from a ``.npy`` array of shape (n, C, H, W) or (n, H, W), any real dtype.

    Images are converted to float32 batch by batch; nothing is scaled. ``stimulus_id`` is
    ``<set name>-<index>``; with ``labels`` the ``label`` coordinate holds those integers.
    :meth:`describe` records the files and their sha256.

    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp(); np.save(os.path.join(d, "x.npy"), np.zeros((3, 4, 4)))
    >>> s = NpySet("noise", os.path.join(d, "x.npy"))
    >>> len(s), s.image_shape, s.images(np.array([0, 2])).shape
    (3, (1, 4, 4), (2, 1, 4, 4))
    """

    def __init__(self, name: str, path: Path | str, labels: Path | str | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.labels_path = Path(labels) if labels is not None else None
        self._array = _open_npy(self.path, f"stimuli '{name}': path")
        self.image_shape = _image_shape(self._array.shape, self._array.dtype, self.path, name)
        self._coords: dict[str, np.ndarray] = {}
        if self.labels_path is not None:
            lab = np.asarray(_open_npy(self.labels_path, f"stimuli '{name}': labels"))
            if lab.shape != (len(self._array),) or not np.issubdtype(lab.dtype, np.integer):
                raise StimulusError(
                    f"{labels}: stimuli '{name}': labels: expected {len(self._array)} integers (one per image), "
                    f"found dtype {lab.dtype} and shape {lab.shape}"
                )
            self._coords["label"] = lab.astype(np.int64)

    def describe(self) -> dict[str, Any]:
        described = {**super().describe(), "path": str(self.path), "sha256": file_sha256(self.path)}
        if self.labels_path is not None:
            described.update(labels=str(self.labels_path), labels_sha256=file_sha256(self.labels_path))
        return described


class NpzSet(_ArraySet):
    """Images from one array of a ``.npz`` archive, read into memory whole when the set is built.

    The ``images`` array has shape (n, C, H, W) or (n, H, W), any real dtype; images are
    converted to float32 unscaled. Coordinates: the ``labels`` array (n integers), if named,
    becomes ``label``; every other 1-D array of length n becomes a coordinate named after its
    key (numbers and booleans as they are, strings as strings; a 1-D array named ``label`` must
    hold integers); arrays of other shapes are ignored (listed by :meth:`describe`). An array
    named ``stimulus_id`` gives the ids (converted to strings, unique); otherwise they are
    ``<set name>-<index>``. For sets larger than memory use ``.npy`` or zarr, which stream.

    Parameters
    ----------
    name
        The set's name.
    path
        The ``.npz`` file.
    images
        Key of the image array.
    labels
        Key of the label array, or None.

    Raises
    ------
    StimulusError
        A missing or unreadable file, a missing key (the message lists the archive's keys), an
        array of the wrong shape or dtype.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "set.npz")
    >>> np.savez(f, images=np.zeros((4, 3, 5, 5), np.uint8), y=np.array([0, 1, 0, 1]), size=np.array([1.0, 2.0, 3.0, 4.0]))
    >>> s = NpzSet("toys", f, labels="y")
    >>> s.image_shape, sorted(s.parameters()), s.parameters()["stimulus_id"][3]
    ((3, 5, 5), ['label', 'size', 'stimulus_id'], 'toys-3')
    """

    def __init__(self, name: str, path: Path | str, images: str = "images", labels: str | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.images_key = images
        self.labels_key = labels
        what = f"{self.path}: stimuli '{name}'"
        if not self.path.is_file():
            raise StimulusError(f"{what}: path: {'is a folder, expected' if self.path.is_dir() else 'file not found, expected'} a .npz archive")
        try:
            archive = np.load(self.path, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise StimulusError(f"{what}: path: not a readable .npz archive ({exc})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise StimulusError(f"{what}: path: is a single .npy array, not a .npz archive; use kind: npy")
        with archive:
            keys = list(archive.files)
            for option, key in (("images", images), ("labels", labels)):
                if key is not None and key not in keys:
                    raise StimulusError(
                        f"{what}: {option}: no array {key!r} in the archive{did_you_mean(key, keys)}; "
                        f"its arrays: {', '.join(keys) or 'none'}"
                    )
            arrays = {key: _npz_array(archive, key, what) for key in keys}
        self._array = arrays.pop(images)
        self.image_shape = _image_shape(self._array.shape, self._array.dtype, self.path, name, f"array {images!r} ")
        n = len(self._array)
        coords: dict[str, np.ndarray] = {}
        if labels is not None:
            lab = arrays.pop(labels)
            if lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer):
                raise StimulusError(
                    f"{what}: labels: array {labels!r} must hold {n} integers (one per image), "
                    f"found dtype {lab.dtype} and shape {lab.shape}"
                )
            coords["label"] = lab.astype(np.int64)
        self.ignored = [key for key, value in arrays.items() if value.shape != (n,)]
        for key, value in arrays.items():
            if value.shape != (n,):
                continue
            if key in coords:
                raise StimulusError(f"{what}: array {key!r} and labels {labels!r} would both be the {key!r} coordinate; rename one")
            if value.dtype.kind not in "biufU":
                raise StimulusError(
                    f"{what}: array {key!r} (one value per image, so a coordinate) has dtype {value.dtype}; "
                    "expected numbers, booleans or strings"
                )
            coords[key] = value.astype(object) if value.dtype.kind == "U" else value
        self._coords = check_coords(coords, what)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "path": str(self.path),
            "sha256": file_sha256(self.path),
            "images": self.images_key,
            "labels": self.labels_key,
            "coords": sorted(self._coords),
            "ignored": self.ignored,
        }


class ZarrSet(_ArraySet):
    """Images from a zarr array (format 3, or 2) of shape (n, C, H, W) or (n, H, W), read batch by batch.

    Images are converted to float32 unscaled; only the chunks a batch needs are read. ``table``
    is a CSV file, one row per image in the array's order, whose columns become coordinates
    (see :func:`read_table`); a ``stimulus_id`` column gives the ids, otherwise they are
    ``<set name>-<index>``. :meth:`describe` records the array folder and table with their
    sha256 (for the folder: see :func:`tree_sha256`).

    Parameters
    ----------
    name
        The set's name.
    path
        Folder of the zarr array.
    table
        CSV file of per-image coordinates, or None.

    Raises
    ------
    StimulusError
        A missing path or table, a folder that is not a zarr array (a group: its arrays are
        listed), a non-numeric dtype or a wrong shape, a table whose row count is not n.

    Examples
    --------
    >>> import zarr, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> zarr.create_array(os.path.join(d, "x.zarr"), shape=(3, 4, 4), dtype="uint8")[:] = 7
    >>> _ = open(os.path.join(d, "x.csv"), "w").write("stimulus_id,contrast\\na,0.5\\nb,1\\nc,1\\n")
    >>> s = ZarrSet("z", os.path.join(d, "x.zarr"), os.path.join(d, "x.csv"))
    >>> s.image_shape, s.parameters()["contrast"].tolist(), float(s.images(np.array([2]))[0, 0, 0, 0])
    ((1, 4, 4), [0.5, 1.0, 1.0], 7.0)
    """

    def __init__(self, name: str, path: Path | str, table: Path | str | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.table = Path(table) if table is not None else None
        what = f"{self.path}: stimuli '{name}'"
        if not self.path.exists():
            raise StimulusError(f"{what}: path: not found, expected the folder of a zarr array")
        import zarr  # here, not at the top: protocols without zarr stimuli (and `validate`) do without it

        try:
            self._array = zarr.open_array(self.path, mode="r")
        except (ValueError, OSError) as exc:
            try:
                arrays = sorted(zarr.open_group(self.path, mode="r").array_keys())
            except (ValueError, OSError):
                raise StimulusError(f"{what}: path: not a zarr array ({exc})") from None
            raise StimulusError(
                f"{what}: path: is a zarr group, not an array; give the array's folder, one of: "
                + (", ".join(str(self.path / a) for a in arrays) or "(the group holds no arrays)")
            ) from None
        self.image_shape = _image_shape(self._array.shape, self._array.dtype, self.path, name)
        n = len(self)
        self._coords: dict[str, np.ndarray] = {}
        if self.table is not None:
            columns = read_table(self.table, f"{self.table}: stimuli '{name}': table")
            rows = len(next(iter(columns.values())))
            if rows != n:
                raise StimulusError(
                    f"{self.table}: stimuli '{name}': table: {rows} rows, but the array {self.path} holds {n} images; "
                    "expected one row per image"
                )
            self._coords = check_coords(columns, f"{self.table}: stimuli '{name}': table")

    def describe(self) -> dict[str, Any]:
        files = sorted(
            Path(folder, f).relative_to(self.path).as_posix() for folder, _, names in os.walk(self.path) for f in names
        )
        described = {
            **super().describe(),
            "path": str(self.path),
            "zarr_format": self._array.metadata.zarr_format,
            "dtype": str(self._array.dtype),
            "sha256": tree_sha256(self.path, files),
        }
        if self.table is not None:
            described.update(table=str(self.table), table_sha256=file_sha256(self.table), coords=sorted(self._coords))
        return described


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def read_table(path: Path | str, what: str = "table") -> dict[str, np.ndarray]:
    """Read a CSV file (header row, one row per stimulus) into one array per column.

    Cells are stripped of surrounding spaces. A column whose every cell is an integer holds
    int64; else one whose cells are numbers or empty (at least one number) holds float64, NaN
    where empty; any other column holds strings (an object array). A ``stimulus_id`` column is
    always strings.

    Parameters
    ----------
    path
        The CSV file (UTF-8, comma-separated, optionally quoted).
    what
        Prefix of error messages (which file, which set).

    Returns
    -------
    dict of str to numpy.ndarray
        Columns in file order, each of length n_rows.

    Raises
    ------
    StimulusError
        The file is missing or empty, a header name is empty or repeated, a row has the wrong
        number of cells.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(f, "w").write("label,contrast,kind\\n1,0.5,cat\\n2,,dog\\n")
    >>> {k: v.tolist() for k, v in read_table(f).items()}
    {'label': [1, 2], 'contrast': [0.5, nan], 'kind': ['cat', 'dog']}
    """
    path = Path(path)
    if not path.is_file():
        raise StimulusError(f"{what}: {'is a folder' if path.is_dir() else 'file not found'}, expected a CSV file")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        rows = [[cell.strip() for cell in row] for row in reader if row]
        if not header:
            raise StimulusError(f"{what}: the file is empty; expected a header row naming the columns, then one row per image")
        bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
        if bad:
            raise StimulusError(f"{what}: data row {bad[0] + 1} has {len(rows[bad[0]])} cells, the header has {len(header)}")
    if "" in header:
        raise StimulusError(f"{what}: column {header.index('') + 1} of the header has no name")
    repeated = [h for i, h in enumerate(header) if h in header[:i]]
    if repeated:
        raise StimulusError(f"{what}: column {repeated[0]!r} appears twice in the header")
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        cells = [row[j] for row in rows]
        if name != "stimulus_id" and cells and all(_INT.fullmatch(c) for c in cells):
            columns[name] = np.array([int(c) for c in cells], dtype=np.int64)
        elif name != "stimulus_id" and any(cells) and all(_FLOAT.fullmatch(c) or not c for c in cells):
            columns[name] = np.array([float(c) if c else np.nan for c in cells], dtype=np.float64)
        else:
            columns[name] = np.array(cells, dtype=object)
    return columns


def check_coords(coords: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """Check per-stimulus coordinates read from a file and return them, ``stimulus_id`` as strings.

    Names the recording gives its own coordinates (:data:`~neurorecord.stimuli.base.RESERVED_COORDS`)
    are refused; ``label`` must hold
    integers; ``stimulus_id`` values must be unique and non-empty. ``what`` prefixes messages.

    >>> check_coords({"stimulus_id": np.array([3, 4]), "label": np.array([0, 1])}, "t.csv")["stimulus_id"].tolist()
    ['3', '4']
    >>> check_coords({"label": np.array([0.5, 1])}, "t.csv")
    Traceback (most recent call last):
    ...
    neurorecord.errors.StimulusError: t.csv: label: expected integers (class indices), found float64 values such as 0.5
    """
    out = dict(coords)
    for key in sorted(RESERVED_COORDS):
        if key in out:
            raise StimulusError(f"{what}: {key!r} is a coordinate the recorder adds itself; rename it")
    if "label" in out and not np.issubdtype(out["label"].dtype, np.integer):
        shown = next((v for v in out["label"].tolist() if isinstance(v, str) or v != v or v % 1), None)
        found = "text" if out["label"].dtype.kind in "OU" else out["label"].dtype
        raise StimulusError(
            f"{what}: label: expected integers (class indices), found {found} values"
            + (f" such as {shown!r}" if shown is not None else "")
        )
    if "stimulus_id" in out:
        ids = np.array([str(v) for v in out["stimulus_id"]], dtype=object)
        values, counts = np.unique(ids.astype(str), return_counts=True)
        if "" in values:
            raise StimulusError(f"{what}: stimulus_id: empty at position {int(np.flatnonzero(ids == '')[0])}; every stimulus needs an id")
        dup = values[counts > 1]
        if len(dup):
            shown = ", ".join(repr(str(d)) for d in dup[:5]) + (f" and {len(dup) - 5} more" if len(dup) > 5 else "")
            raise StimulusError(f"{what}: stimulus_id: values must be unique, found repeated: {shown}")
        out["stimulus_id"] = ids
    return out


def file_sha256(path: Path | str) -> str:
    """sha256 (hex) of a file's content, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tree_sha256(root: Path | str, files: Iterable[str]) -> str:
    """sha256 (hex) of files under a folder: over one line ``<relative path>\\0<file sha256>\\n`` per
    file, in the order given; so it changes when a file is added, removed, renamed or edited, and
    not when the folder is copied or moved.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); _ = open(os.path.join(d, "a.txt"), "w").write("x")
    >>> tree_sha256(d, ["a.txt"]) == tree_sha256(d, ["a.txt"]) != tree_sha256(d, [])
    True
    """
    digest = hashlib.sha256()
    for rel in files:
        digest.update(f"{rel}\0{file_sha256(Path(root, rel))}\n".encode("utf-8"))
    return digest.hexdigest()


def check_values(stimuli: StimulusSet, chunk: int = 1024) -> None:
    """Refuse a set with no images, or a set read from a float array holding NaN or inf.

    Generated sets and decoded image files cannot hold non-finite values; float arrays read from
    ``.npy``, ``.npz`` or zarr files are scanned ``chunk`` images at a time (the files are read
    whole anyway, for their sha256).

    Raises
    ------
    StimulusError
        Naming the file and the set, the number of bad images and the first one's index and
        ``stimulus_id``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp(); x = np.zeros((3, 4, 4)); x[1, 0, 0] = np.nan; np.save(os.path.join(d, "x.npy"), x)
    >>> check_values(NpySet("noise", os.path.join(d, "x.npy")))
    Traceback (most recent call last):
    ...
    neurorecord.errors.StimulusError: .../x.npy: stimuli 'noise': 1 of 3 images hold NaN or inf values, the first image 1 (stimulus_id 'noise-1'); stimuli must be finite numbers
    """
    where = f"{stimuli.path}: " if hasattr(stimuli, "path") else ""
    if len(stimuli) == 0:
        raise StimulusError(f"{where}stimuli '{stimuli.name}': expected at least one image, found none")
    if not isinstance(stimuli, _ArraySet) or not np.issubdtype(stimuli._array.dtype, np.floating):
        return
    bad: list[int] = []
    n = len(stimuli)
    for start in range(0, n, chunk):
        block = np.asarray(stimuli._array[start : start + chunk])
        bad += (start + np.flatnonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))).tolist()
    if bad:
        first = bad[0]
        raise StimulusError(
            f"{where}stimuli '{stimuli.name}': {len(bad)} of {n} images hold NaN or inf values, the first image {first} "
            f"(stimulus_id {str(stimuli.parameters()['stimulus_id'][first])!r}); stimuli must be finite numbers"
        )


def _image_shape(shape: tuple[int, ...], dtype: Any, path: Path, name: str, array: str = "") -> tuple[int, int, int]:
    """(C, H, W) of an (n, C, H, W) or (n, H, W) numeric array; a clear error otherwise."""
    numeric = isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)
    if len(shape) not in (3, 4) or not numeric:
        raise StimulusError(
            f"{path}: stimuli '{name}': {array}expected a real numeric array of shape (n, C, H, W) or (n, H, W), "
            f"found dtype {dtype} and shape {tuple(shape)}"
        )
    rest = tuple(int(v) for v in shape[1:])
    return rest if len(rest) == 3 else (1, *rest)  # type: ignore[return-value]


def _read_rows(array: Any, index: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Rows ``index`` of an array (a contiguous run as one slice), as float32 (len(index), C, H, W)."""
    if len(index) and np.all(np.diff(index) == 1):
        block = array[index[0] : index[-1] + 1]
    else:
        block = array[index]
    return np.asarray(block, dtype=np.float32).reshape((len(index), *image_shape))


def _npz_array(archive: Any, key: str, what: str) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as exc:
        raise StimulusError(
            f"{what}: array {key!r} cannot be read without pickle ({exc}); save strings as a fixed-width "
            "string array (numpy dtype 'U')"
        ) from None


def _open_npy(path: Path, what: str) -> np.ndarray:
    if not path.exists():
        raise StimulusError(f"{path}: {what}: file not found")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise StimulusError(f"{path}: {what}: not a readable .npy file ({exc})") from None
