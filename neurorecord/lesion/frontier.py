"""The frontier of every stimulus, computed once by the upstream part and read back chunk by chunk.

It is kept in memory, or, when it is larger than the cache budget, in temporary zarr arrays
(removed when the cache is closed) read back one chunk of stimuli at a time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import numpy as np
import torch

__all__ = ["FrontierCache", "stored_dtype"]


class FrontierCache:
    """The frontier of every stimulus: in memory, or in temporary zarr arrays read back by chunk."""

    def __init__(self, specs: dict[str, tuple[tuple[int, ...], torch.dtype, torch.memory_format]], n: int, chunk_rows: int, on_disk: bool) -> None:
        self.specs = specs
        self.on_disk = on_disk
        self.n = n
        self.folder: str | None = None
        self.arrays: dict[str, Any] = {}
        if not on_disk:  # in memory: made at the first write (see write)
            return
        import zarr

        self.folder = tempfile.mkdtemp(prefix="neurorecord-lesion-")
        for i, (key, (shape, dtype, _)) in enumerate(specs.items()):
            stored = stored_dtype(dtype)
            self.arrays[key] = zarr.create_array(store=os.path.join(self.folder, f"frontier-{i}"), shape=(n, *shape),
                                                 chunks=(chunk_rows, *shape), dtype=torch.empty(0, dtype=stored).numpy().dtype,
                                                 compressors=None)

    def write(self, start: int, values: dict[str, torch.Tensor]) -> None:
        """Keep the frontier ``values`` of stimuli ``start .. start + len``."""
        if not self.on_disk and not self.arrays:
            # kept in the layout the network produced (channels-last convs stay so)
            self.arrays = {k: torch.empty((self.n, *shape), dtype=dtype, memory_format=fmt) for k, (shape, dtype, fmt) in self.specs.items()}
        for key, v in values.items():
            stop = start + v.shape[0]
            if self.on_disk:
                self.arrays[key][start:stop] = v.detach().cpu().view(stored_dtype(v.dtype)).numpy()
            else:
                self.arrays[key][start:stop] = v.detach().cpu()

    def read(self, start: int, stop: int, device: torch.device) -> dict[str, torch.Tensor]:
        if not self.on_disk:
            return {k: a[start:stop].to(device) for k, a in self.arrays.items()}
        out = {}
        for k, a in self.arrays.items():
            _, dtype, fmt = self.specs[k]
            out[k] = torch.from_numpy(np.asarray(a[start:stop])).view(dtype).to(device).contiguous(memory_format=fmt)
        return out

    def close(self) -> None:
        self.arrays = {}
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def stored_dtype(dtype: torch.dtype) -> torch.dtype:
    """A dtype numpy knows with the same item size (bfloat16 is stored as int16)."""
    try:
        torch.empty(0, dtype=dtype).numpy()
        return dtype
    except TypeError:
        return {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[torch.empty(0, dtype=dtype).element_size()]

