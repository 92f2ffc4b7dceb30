"""The recording store: a zarr (v3) folder holding an ``xarray.DataTree``.

Layout: the root node carries provenance attributes; each recorded region is a child node
whose Dataset holds ``activity`` (``presentation x neuroid``, float32, chunked along
``presentation``) with the presentation and neuroid coordinates. The root attribute ``run``
tracks the run: which protocol made it, how many batches are written, and whether it is
complete. zarr replaces ``zarr.json`` atomically (write to a temporary file, then rename), so a
killed run always leaves a state that ``--resume`` can trust.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import xarray as xr
import zarr

from ..errors import IncompleteRecordingError, StoreError

__all__ = ["RUN_ATTR", "RunState", "index_labels", "package_versions", "read_run_state", "write_run_state", "open_recording", "root_attrs", "not_a_store"]

#: Root attribute holding the :class:`RunState`.
RUN_ATTR = "run"


@dataclass
class RunState:
    """Progress of a run, as kept in the root attribute ``run``.

    ``stage`` is ``creating`` (store skeleton being written), ``recording``, ``analysing``
    (the protocol's ``analyses:`` being run), ``lesioning`` (its ``lesions:``; ``lesions_done``
    counts each sweep's finished lesions, -1 once its results are written) or ``complete``; ``batches_done`` batches of ``batch_size`` presentations are on disk.
    """

    protocol_name: str
    protocol_sha256: str
    stage: str
    presentations: int = 0
    batch_size: int = 0
    batches_total: int = 0
    batches_done: int = 0
    lesions_done: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.stage == "complete"

    def describe(self) -> str:
        if self.complete:
            return f"complete ({self.presentations} presentations)"
        return (
            f"INCOMPLETE: stage {self.stage!r}, {self.batches_done} of {self.batches_total} batches written "
            f"({min(self.batches_done * self.batch_size, self.presentations)} of {self.presentations} presentations); "
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


def open_recording(path: str | os.PathLike[str], allow_incomplete: bool = False) -> xr.DataTree:
    """Open a recording lazily (dask-backed) as an ``xarray.DataTree``.

    Parameters
    ----------
    path
        The folder given to ``neurorecord run --out``.
    allow_incomplete
        Open a store whose run did not finish; unwritten presentations read as NaN.

    Returns
    -------
    xarray.DataTree
        One child per region (in protocol order), each with ``activity`` (presentation x
        neuroid, dask-backed) and its coordinates (loaded in memory; ``stimulus_id`` and
        ``neuroid_id`` are indexed, so ``.sel(neuroid_id="fc1.3")`` works); provenance in the
        root's ``attrs``.

    Raises
    ------
    StoreError
        ``path`` is not a neurorecord store.
    IncompleteRecordingError
        The run was interrupted and ``allow_incomplete`` is False.

    Examples
    --------
    >>> import neurorecord, tempfile
    >>> out = tempfile.mkdtemp() + "/digits"
    >>> _ = neurorecord.run(neurorecord.default_protocol_path(), out, quiet=True)
    >>> tree = neurorecord.open_recording(out)
    >>> tree["fc1"]["activity"].dims, tree["fc1"]["activity"].shape
    (('presentation', 'neuroid'), (454, 100))
    """
    path = Path(path)
    state = read_run_state(path)
    if state is None:
        raise not_a_store(path)
    if state.stage == "creating":
        raise IncompleteRecordingError(f"{path}: the store skeleton was never finished; re-run with --resume")
    if not state.complete and not allow_incomplete:
        raise IncompleteRecordingError(f"{path}: recording is {state.describe()}; or open it with allow_incomplete=True")
    tree = xr.open_datatree(path, engine="zarr", chunks={}, consolidated=False)
    regions = [r for r in tree.attrs.get("regions", []) if r in tree.children]
    order = {f"/{r}": i for i, r in enumerate(regions)}
    nodes = sorted(tree.subtree, key=lambda node: (order.get("/" + node.path.strip("/").split("/")[0], len(order)), node.path))
    return xr.DataTree.from_dict({node.path: _with_loaded_coords(node.to_dataset(inherit=False)) for node in nodes})


def _with_loaded_coords(ds: xr.Dataset) -> xr.Dataset:
    """Coordinates in memory (they are small) and label indexes, so groupby/sel work directly."""
    return index_labels(ds.assign_coords({name: _plain_strings(ds[name].variable.load()) for name in ds.coords}))


def index_labels(ds: xr.Dataset) -> xr.Dataset:
    """Index ``stimulus_id`` and ``neuroid_id`` so that ``.sel(neuroid_id="fc1.3")`` works."""
    for label in ("stimulus_id", "neuroid_id"):
        if label in ds.coords and ds[label].ndim == 1 and ds[label].dims[0] not in ds.indexes:
            ds = ds.set_xindex(label)
    return ds


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` for a missing one), for provenance."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _plain_strings(variable: xr.Variable) -> xr.Variable:
    """Text as object arrays of ``str`` (xarray's usual form) rather than numpy's ``StringDType``."""
    return variable.astype(object) if variable.dtype.kind == "T" else variable


def root_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The root node's attributes (provenance), read without opening any array."""
    return dict(zarr.open_group(Path(path), mode="r").attrs)
