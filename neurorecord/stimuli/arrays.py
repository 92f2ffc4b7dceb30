"""Stimuli loaded from ``.npy`` files (memory-mapped, so they stream)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import StimulusError
from .base import StimulusSet

__all__ = ["NpySet"]


class NpySet(StimulusSet):
    """Images from a ``.npy`` array of shape (n, C, H, W) or (n, H, W), any real dtype.

    Images are converted to float32 batch by batch; nothing is scaled. ``stimulus_id`` is
    ``<set name>-<index>``; with ``labels`` the ``label`` coordinate holds those integers.

    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp(); np.save(os.path.join(d, "x.npy"), np.zeros((3, 4, 4)))
    >>> s = NpySet("noise", os.path.join(d, "x.npy"))
    >>> len(s), s.image_shape, s.images(np.array([0, 2])).shape
    (3, (1, 4, 4), (2, 1, 4, 4))
    """

    def __init__(self, name: str, path: Path | str, labels: Path | str | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self._array = _open_npy(self.path, f"stimuli '{name}': path")
        if self._array.ndim not in (3, 4) or not np.issubdtype(self._array.dtype, np.number):
            raise StimulusError(
                f"{self.path}: stimuli '{name}': expected a numeric array of shape (n, C, H, W) or (n, H, W), "
                f"found dtype {self._array.dtype} and shape {self._array.shape}"
            )
        shape = self._array.shape[1:]
        self.image_shape = tuple(int(v) for v in (shape if len(shape) == 3 else (1, *shape)))  # type: ignore[assignment]
        self._labels = None
        if labels is not None:
            lab = np.asarray(_open_npy(Path(labels), f"stimuli '{name}': labels"))
            if lab.shape != (len(self._array),) or not np.issubdtype(lab.dtype, np.integer):
                raise StimulusError(
                    f"{labels}: stimuli '{name}': labels: expected {len(self._array)} integers (one per image), "
                    f"found dtype {lab.dtype} and shape {lab.shape}"
                )
            self._labels = lab.astype(np.int64)

    def __len__(self) -> int:
        return int(self._array.shape[0])

    def parameters(self) -> dict[str, np.ndarray]:
        width = len(str(max(len(self) - 1, 0)))
        params: dict[str, np.ndarray] = {
            "stimulus_id": np.array([f"{self.name}-{i:0{width}d}" for i in range(len(self))], dtype=object)
        }
        if self._labels is not None:
            params["label"] = self._labels
        return params

    def images(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index)
        if len(index) and np.all(np.diff(index) == 1):
            block = self._array[index[0] : index[-1] + 1]
        else:
            block = self._array[index]
        return np.asarray(block, dtype=np.float32).reshape((len(index), *self.image_shape))


def _open_npy(path: Path, what: str) -> np.ndarray:
    if not path.exists():
        raise StimulusError(f"{path}: {what}: file not found")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise StimulusError(f"{path}: {what}: not a readable .npy file ({exc})") from None
