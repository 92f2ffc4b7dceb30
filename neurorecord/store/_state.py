"""A run's state in the store's root, the output folder's checks and the writer's lock."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import zarr

from ..errors import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from ._layout import RUN_ATTR


@dataclass
class RunState:
    """Progress of a run, as kept in the root attribute ``run``.

    ``stage`` is ``creating`` (store skeleton being written), ``recording``, ``analysing``
    (the protocol's ``analyses:`` being run), ``lesioning`` (its ``lesions:``; ``lesions_done``
    counts each sweep's finished lesions, -1 once its results are written), ``studying`` (its ``study:``
    entries, recomputed whole on resume) or ``complete``; ``batches_done`` batches of ``batch_size`` presentations are on disk,
    written ``batches_per_chunk`` batches (one chunk of each array) at a time.
    """

    protocol_name: str
    protocol_sha256: str
    stage: str
    presentations: int = 0
    batch_size: int = 0
    batches_total: int = 0
    batches_done: int = 0
    lesions_done: dict[str, int] = field(default_factory=dict)
    batches_per_chunk: int = 1  # (stores written before it was kept: one batch per chunk)

    @property
    def complete(self) -> bool:
        return self.stage == "complete"

    def describe(self) -> str:
        if self.complete:
            return f"complete ({self.presentations} presentations)"
        lesions = ""
        if self.lesions_done:
            lesions = " lesions: " + ", ".join(f"{name} {'written' if n == -1 else f'{n} lesions done'}"
                                               for name, n in self.lesions_done.items()) + ";"
        return (
            f"INCOMPLETE: stage {self.stage!r}, {self.batches_done} of {self.batches_total} batches written "
            f"({min(self.batches_done * self.batch_size, self.presentations)} of {self.presentations} presentations);{lesions} "
            "finish it with `neurorecord run PROTOCOL --out DIR --resume`"
        )


def read_run_state(path: str | os.PathLike[str]) -> RunState | None:
    """The run state of a store folder, or None if the folder is not a neurorecord store."""
    file = Path(path) / "zarr.json"
    if not file.is_file():
        return None
    try:
        attrs = json.loads(file.read_text()).get("attributes", {})
        return RunState(**attrs[RUN_ATTR]) if RUN_ATTR in attrs else None
    except (ValueError, TypeError) as exc:
        raise StoreError(f"{file}: unreadable run state ({exc})") from None


def write_run_state(group: zarr.Group, state: RunState) -> None:
    """Record the run state in the root group's attributes (zarr writes ``zarr.json`` atomically)."""
    group.attrs.update({RUN_ATTR: asdict(state)})


def not_a_store(path: Path) -> StoreError:
    """The error for a folder that holds no neurorecord store."""
    what = "does not exist" if not path.exists() else f"is not a neurorecord store (no zarr.json with a '{RUN_ATTR}' attribute)"
    return StoreError(f"{path}: {what}")


def check_output(out: Path, protocol_name: str, protocol_sha256: str, resume: bool, overwrite: bool,
                 holding_lock: bool = False) -> None:
    """Refuse an output folder a run must not write into, before any work starts.

    A folder may be new or empty; otherwise it must hold a neurorecord store: of the same
    protocol to ``resume``, of any protocol to ``overwrite``.

    Raises
    ------
    StoreError
        ``out`` is a file; holds other files; holds a different run (without ``overwrite``);
        holds this run complete or unfinished (without ``resume``/``overwrite``).
    """
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: --out must be a folder, found a file")
    if not out.exists() or not _foreign_entries(out) and not (out / "zarr.json").exists():
        return
    state = read_run_state(out)
    if state is None:
        raise StoreError(
            f"{out}: output folder is not empty and holds no neurorecord recording (no zarr.json with a '{RUN_ATTR}' attribute); "
            "neurorecord will not write into or delete it: choose another --out"
        )
    if overwrite:
        foreign = _foreign_entries(out)
        if foreign:
            if not state.complete and not holding_lock:
                with exclusive(out):  # a node another process is creating looks foreign for a moment: say who writes
                    pass
            raise StoreError(
                f"{out}: --overwrite replaces the recording in this folder, but the folder also holds what the store did not "
                f"write: {', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}; move those away, or choose another --out"
            )
        return
    if state.protocol_sha256 != protocol_sha256:
        raise StoreError(
            f"{out}: output folder already holds a different run (protocol {state.protocol_name!r}, sha256 "
            f"{state.protocol_sha256[:12]}; this protocol {protocol_name!r} has sha256 {protocol_sha256[:12]}); "
            "use --overwrite to replace it, or another --out"
        )
    if not state.complete and not holding_lock:
        with exclusive(out):  # an unfinished store may be one being written now: say so, not "use --resume"
            pass
    if resume:
        return
    if state.complete:
        raise StoreError(f"{out}: already holds a complete recording of this protocol; use --overwrite to record it again")
    raise StoreError(f"{out}: holds an unfinished recording of this protocol ({state.describe()}); use --resume or --overwrite")


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on the store folder, so one process at a time writes a store.

    The folder itself is never deleted or replaced (overwriting a store deletes the store's
    entries inside it), so every writer locks the same folder, whatever the timing.

    Raises
    ------
    StoreError
        Another process holds the lock.
    """
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{out}: another neurorecord process is writing this store; wait for it to end or stop it") from None
        yield
    finally:
        os.close(fd)


def create_store(out: Path, attributes: dict[str, Any], state: RunState) -> zarr.Group:
    """Delete the store's own entries in ``out`` (only those) and create the root group with its
    provenance ``attributes`` and run ``state``. Call it holding :func:`exclusive`."""
    for entry in _store_entries(out):
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    return zarr.create_group(out, zarr_format=3, attributes={**attributes, RUN_ATTR: asdict(state)})


def _store_entries(out: Path) -> list[Path]:
    """What a store wrote in ``out``: its ``zarr.json`` and its node folders (each with a ``zarr.json``)."""
    return [e for e in sorted(out.iterdir()) if e.name == "zarr.json" or (e.is_dir() and not e.is_symlink() and (e / "zarr.json").is_file())]


def _foreign_entries(out: Path) -> list[str]:
    """Names in ``out`` that the store did not write."""
    own = {e.name for e in _store_entries(out)}
    return [e.name for e in sorted(out.iterdir()) if e.name not in own]


def open_writable(out: Path) -> zarr.Group:
    """The root group of an existing store, for a run to continue writing (consolidated metadata,
    if any, is ignored and dropped at the next attribute write; :func:`consolidate` writes it again)."""
    return zarr.open_group(out, mode="r+", use_consolidated=False)


def root_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The root node's attributes (provenance), read without opening any array."""
    return dict(zarr.open_group(Path(path), mode="r").attrs)
