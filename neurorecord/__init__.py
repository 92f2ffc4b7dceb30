"""neurorecord: in-silico electrophysiology of PyTorch networks.

A protocol file names a subject (a network), stimulus sets and regions; :func:`run` records
every region's units into a labelled zarr store that :func:`open_recording` opens as an
``xarray.DataTree``.

>>> import neurorecord, tempfile
>>> protocol = neurorecord.load_protocol(neurorecord.default_protocol_path())
>>> tree = neurorecord.run(protocol, tempfile.mkdtemp() + "/digits", quiet=True)
>>> tree["fc1"]["activity"].sizes["presentation"]
454
"""

from __future__ import annotations

from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from typing import TYPE_CHECKING, Any

from .errors import (
    DamagedStoreError,
    IncompleteRecordingError,
    NeurorecordError,
    ProtocolError,
    RegionError,
    StimulusError,
    StoreError,
    SubjectError,
)
from .protocol import Protocol, load_protocol
from .store import open_recording

if TYPE_CHECKING:
    from .session import prepare, run

try:
    __version__ = version("neurorecord")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "default_protocol_path",
    "load_protocol",
    "open_recording",
    "prepare",
    "run",
    "Protocol",
    "NeurorecordError",
    "ProtocolError",
    "SubjectError",
    "RegionError",
    "StimulusError",
    "StoreError",
    "IncompleteRecordingError",
    "DamagedStoreError",
]


def default_protocol_path() -> Path:
    """Path of the embedded default protocol (``digits.yaml``), shipped inside the package."""
    return Path(str(resources.files("neurorecord") / "protocols" / "digits.yaml"))


def __getattr__(name: str) -> Any:
    """``run`` and ``prepare`` import torch: load them on first use, so that reading stores and
    analysing recordings (biological ones included) never needs torch."""
    if name in ("run", "prepare"):
        from . import session

        return getattr(session, name)
    raise AttributeError(f"module 'neurorecord' has no attribute {name!r}")
