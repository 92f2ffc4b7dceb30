"""What a complete store holds: its manifest, the checks against it, and the versions of its writers."""

from __future__ import annotations

import os
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import DamagedStoreError
from ._layout import FORMAT, MANIFEST_ATTR
from ._state import root_attrs


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` for a missing one), for provenance."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def manifest(out: Path) -> dict[str, list[int]]:
    """Every file of the store except the root ``zarr.json``: relative path -> [bytes, CRC-32].

    Written into the root's attributes when a run completes (in the same atomic write that marks
    it complete), so a deleted, truncated or overwritten chunk is found later by
    :func:`check_files`.
    """
    files = {}
    buffer = bytearray(1 << 20)  # reused and grown: fresh memory for every file is slower (benchmarks/record_overhead.py, finish)
    for folder, dirs, names in os.walk(out):
        dirs.sort()
        for name in sorted(names):
            file = Path(folder, name)
            rel = file.relative_to(out).as_posix()
            if rel == "zarr.json":
                continue
            with open(file, "rb", buffering=0) as f:
                size = os.fstat(f.fileno()).st_size
                if size > len(buffer):
                    buffer = bytearray(size)
                data = memoryview(buffer)[: f.readinto(memoryview(buffer)[:size])]
                files[rel] = [len(data), zlib.crc32(data)]
    return files


def check_format(path: Path, attrs: dict[str, Any]) -> None:
    """Refuse a store written by a newer neurorecord, naming both versions."""
    found = attrs.get("neurorecord_format", 1)
    if not isinstance(found, int) or found > FORMAT:
        raise DamagedStoreError(
            f"{path}: store format {found!r} was written by a newer neurorecord; this version ({_version()}) reads "
            f"formats 1 to {FORMAT}: upgrade neurorecord to read it"
        )


def check_files(path: Path, attrs: dict[str, Any] | None = None, checksums: bool = False) -> list[str]:
    """Compare a complete store with its manifest; return one line per missing or changed file.

    Stores of format 1 have no manifest: nothing to compare (an empty list).

    Examples
    --------
    >>> import neurorecord, tempfile
    >>> out = Path(tempfile.mkdtemp()) / "digits"
    >>> _ = neurorecord.run(neurorecord.default_protocol_path(), out, quiet=True)
    >>> (out / "fc2" / "activity" / "c.0.0").unlink()
    >>> check_files(out)
    ['fc2/activity/c.0.0 is missing (chunk of array fc2/activity)']
    """
    attrs = root_attrs(path) if attrs is None else attrs
    expected = attrs.get(MANIFEST_ATTR)
    if not expected:
        return []
    problems = []
    for rel, (size, crc) in expected.items():
        file = path / rel
        what = _what(rel)
        try:
            found = file.stat().st_size
        except FileNotFoundError:
            problems.append(f"{rel} is missing{what}")
            continue
        if found != size:
            problems.append(f"{rel} has {found} bytes, expected {size}{what}")
        elif checksums and zlib.crc32(file.read_bytes()) != crc:
            problems.append(f"{rel} has changed (CRC-32 differs){what}")
    return problems


def _what(rel: str) -> str:
    parts = rel.split("/")
    if "c" in parts:  # chunk keys c/<i>/<j> (stores before CHUNK_KEYS)
        return f" (chunk of array {'/'.join(parts[: parts.index('c')])})"
    if parts[-1].startswith("c."):
        return f" (chunk of array {'/'.join(parts[:-1])})"
    return " (metadata)" if parts[-1] == "zarr.json" else ""


def _version() -> str:
    try:
        return metadata.version("neurorecord")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was not installed
        return "unknown"
