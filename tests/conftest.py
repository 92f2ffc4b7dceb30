"""Shared fixtures: an isolated zoo cache, protocol writers, and small helpers."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep zoo weights out of the user's cache unless NEURORECORD_CACHE is set (CI sets it)."""
    if not os.environ.get("NEURORECORD_CACHE"):
        os.environ["NEURORECORD_CACHE"] = str(tmp_path_factory.mktemp("zoo-cache"))
    return Path(os.environ["NEURORECORD_CACHE"])


@pytest.fixture
def write_protocol(tmp_path: Path):
    """Write a protocol file from YAML text (dedented) and return its path."""

    def write(text: str, name: str = "protocol.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture(scope="session")
def raw_ecker():
    """The V1 file as its README says to read it (squeeze_me=True): an independent reference."""
    import scipy.io

    from neurorecord.interop import ecker2010_path
    from tests.helpers import ECKER_FILE

    path = ecker2010_path() or ECKER_FILE
    if not path.is_file():
        pytest.skip(f"Ecker 2010 data file not found at {path}")
    return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["data"]
