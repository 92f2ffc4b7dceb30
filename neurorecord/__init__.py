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

import importlib
from importlib import resources
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

if TYPE_CHECKING:
    from .protocol import Protocol, load_protocol
    from .session import prepare, run
    from .store import open_recording

#: Public names loaded on first use, and the module each comes from. Importing the package costs
#: only :mod:`neurorecord.errors`: ``load_protocol`` and ``Protocol`` bring pydantic, ``open_recording``
#: xarray, zarr and dask, ``run`` and ``prepare`` torch as well (a command or a notebook pays for
#: what it uses; stores of biological recordings are read and analysed without torch).
_LAZY = {
    "load_protocol": "protocol",
    "Protocol": "protocol",
    "open_recording": "store",
    "prepare": "session",
    "run": "session",
}

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
    """Path of the embedded default protocol (``digits.yaml``), shipped inside the package.

    >>> default_protocol_path().name
    'digits.yaml'
    """
    return Path(str(resources.files("neurorecord") / "protocols" / "digits.yaml"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neurorecord")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    """Load the names of :data:`_LAZY` (and ``__version__``) on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'neurorecord' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
