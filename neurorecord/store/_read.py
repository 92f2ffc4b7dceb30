"""Reading a store: opening it as a DataTree, its attributes, consolidation, result nodes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import zarr

from .._validation import check_choice
from ..errors import DamagedStoreError, IncompleteRecordingError, StoreError
from ._layout import BEHAVIOUR_NODE, RUN_ATTR, _sync_all
from ._manifest import check_files, check_format
from ._state import not_a_store, read_run_state, root_attrs

if TYPE_CHECKING:
    import xarray as xr


def open_recording(path: str | os.PathLike[str], allow_incomplete: bool = False, verify: str = "sizes",
                   dask: bool = True) -> xr.DataTree:
    """Open a recording lazily (dask-backed) as an ``xarray.DataTree``.

    Parameters
    ----------
    path
        The folder given to ``neurorecord run --out``.
    allow_incomplete
        Open a store whose run did not finish; unwritten presentations read as NaN.
    verify
        How a complete store is checked against the manifest written when it was completed:
        ``"sizes"`` (default: every file there, with its size; a directory listing and a
        ``stat`` per file), ``"checksums"`` (also the CRC-32 of every file: reads the whole
        store), or ``"none"``.
    dask
        Data variables as dask arrays in the store's chunks (default), which run on any dask
        scheduler; or, with False, as xarray's lazily indexed arrays, read whole on first use
        (``.load()``, ``.values``) without importing dask: the faster choice for a region that
        fits in memory.

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
    DamagedStoreError
        A file of a complete store is missing or changed (each one named), or the store was
        written by a newer neurorecord.

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
    check_choice("verify", verify, ("sizes", "checksums", "none"), error=StoreError)
    attrs = root_attrs(path)
    check_format(path, attrs)
    if state.complete and verify != "none":
        problems = check_files(path, attrs, checksums=verify == "checksums")
        if problems:
            raise DamagedStoreError(f"{path}: the store is damaged: {'; '.join(problems[:10])}"
                                    + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""))
    import xarray as xr

    tree = xr.open_datatree(path, engine="zarr", chunks=None, consolidated=is_consolidated(path))
    regions = [r for r in [*tree.attrs.get("regions", []), BEHAVIOUR_NODE] if r in tree.children]
    order = {f"/{r}": i for i, r in enumerate(regions)}
    nodes = sorted(tree.subtree, key=lambda node: (order.get("/" + node.path.strip("/").split("/")[0], len(order)), node.path))
    datasets = {node.path: node.to_dataset(inherit=False) for node in nodes}
    coords = _load_coords(list(datasets.values()))
    token = _store_token(path)
    return xr.DataTree.from_dict({node: index_labels(_chunked(ds.assign_coords(loaded), f"{token}{node}") if dask
                                                     else ds.assign_coords(loaded))
                                  for (node, ds), loaded in zip(datasets.items(), coords)})


def _load_coords(datasets: list[xr.Dataset]) -> list[dict[str, xr.Variable]]:
    """The coordinates of every node in memory (they are small), read together: one trip to zarr's
    event loop for the whole store (xarray's ``load_async``), where a dask computation per node
    cost several times more (benchmarks/record_overhead.py prints the opening's cost)."""
    loaded = _sync_all([ds.coords.to_dataset().load_async() for ds in datasets])
    return [{name: _plain_strings(coords[name].variable) for name in ds.coords} for ds, coords in zip(datasets, loaded)]


def _chunked(ds: xr.Dataset, token: str) -> xr.Dataset:
    """The data variables as dask arrays in the store's chunks, named like ``open_dataset``'s own."""
    from dask.base import tokenize

    variables = {name: ds.variables[name] for name in ds.data_vars}
    return ds.assign({name: var.chunk(var.encoding.get("preferred_chunks", {}), name=f"open_dataset-{name}-{tokenize(token, name)}")
                      for name, var in variables.items()})


def _store_token(path: Path) -> str:
    """What identifies a store's current content for dask: its folder and when its root was last written."""
    return f"{path.resolve()}:{(path / 'zarr.json').stat().st_mtime_ns}:"


def index_labels(ds: xr.Dataset) -> xr.Dataset:
    """Index ``stimulus_id`` and ``neuroid_id`` so that ``.sel(neuroid_id="fc1.3")`` works."""
    for label in ("stimulus_id", "neuroid_id"):
        if label in ds.coords and ds[label].ndim == 1 and ds[label].dims[0] not in ds.indexes:
            ds = ds.set_xindex(label)
    return ds


def _plain_strings(variable: xr.Variable) -> xr.Variable:
    """Text as object arrays of ``str`` (xarray's usual form) rather than numpy's ``StringDType``."""
    return variable.astype(object) if variable.dtype.kind == "T" else variable


def is_consolidated(path: str | os.PathLike[str]) -> bool:
    """Whether the store is complete and its root ``zarr.json`` holds consolidated metadata (written
    on completion; that of a store being written again is not trusted)."""
    try:
        root = json.loads((Path(path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    run = root.get("attributes", {}).get(RUN_ATTR)
    return bool(root.get("consolidated_metadata")) and isinstance(run, dict) and run.get("stage") == "complete"


def consolidate(out: str | os.PathLike[str]) -> None:
    """Write the metadata of every node into the root ``zarr.json`` (``zarr.consolidate_metadata``).

    Called when a run completes, after its last write: ``xarray.open_datatree(out, engine="zarr")``
    then opens the store from one file, without warnings. Only the root ``zarr.json`` changes
    (replaced atomically), so the manifest stays valid; a store written to again must be
    consolidated again (a store whose run is incomplete is not consolidated).
    """
    import warnings

    with warnings.catch_warnings():  # "not part of the Zarr format 3 specification": xarray reads it
        warnings.simplefilter("ignore", category=zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(Path(out))


def load_result_node(store: str | os.PathLike[str] | xr.DataTree, node: str) -> xr.Dataset:
    """Read the result node ``node`` from a store (path or opened tree), loaded in memory.

    Raises
    ------
    StoreError
        No such node; the message lists the result nodes under the same root.
    """
    import xarray as xr

    tree = (store if isinstance(store, xr.DataTree)
            else xr.open_datatree(Path(store), engine="zarr", consolidated=is_consolidated(store)))
    try:
        found = tree[node]
    except KeyError:
        root = node.split("/")[0]
        depth = node.count("/") + 1
        listed = [n.path.lstrip("/") for n in tree.subtree if n.path.lstrip("/").startswith(root + "/")
                  and n.path.strip("/").count("/") + 1 == depth]
        raise StoreError(f"no result {node!r} in the store; results there: {', '.join(listed) or 'none'}") from None
    return found.to_dataset(inherit=False).load()
