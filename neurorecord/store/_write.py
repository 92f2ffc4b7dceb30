"""Writing a store's nodes through zarr alone (skeletons, batches of rows, result nodes).

xarray is imported only by the functions given xarray objects: a recording needs zarr alone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ..errors import StoreError

from ._layout import CHUNK_KEYS, UNIT_CHUNK, _sync_all, float_codecs
from ._read import consolidate, is_consolidated

if TYPE_CHECKING:
    import xarray as xr


#: A node of :func:`create_nodes`: ``(variables, coords, attrs)``; ``variables`` maps a name to
#: ``(dims, shape, dtype, attrs)``, ``coords`` a name to ``(dims, values[, attrs])``.
NodeSpec = tuple[dict[str, tuple[tuple[str, ...], tuple[int, ...], Any, dict[str, Any]]], dict[str, tuple], dict[str, Any]]


def create_node(out: Path, node: str, variables: dict[str, tuple[tuple[str, ...], tuple[int, ...], Any, dict[str, Any]]],
                coords: dict[str, tuple], attrs: dict[str, Any], chunk_rows: int, compression: str = "lz4",
                compression_level: int | None = None, unit_chunk: int = UNIT_CHUNK) -> None:
    """Write node ``node``'s skeleton: :func:`create_nodes` of one node."""
    create_nodes(out, {node: (variables, coords, attrs)}, chunk_rows, compression, compression_level, unit_chunk)


def create_nodes(out: Path, nodes: dict[str, NodeSpec], chunk_rows: int, compression: str = "lz4",
                 compression_level: int | None = None, unit_chunk: int = UNIT_CHUNK) -> None:
    """Write the skeleton of each node: every coordinate and attribute, and unwritten data variables.

    ``nodes`` maps a node's path to ``(variables, coords, attrs)``. ``variables`` maps a name to
    ``(dims, shape, dtype, attrs)``, ``presentation`` first; each is stored ``chunk_rows``
    presentations at a time (whole along every other dim: one file per batch), compressed with
    :func:`float_codecs` of ``compression`` and ``compression_level`` when float (the node's
    attribute ``compression`` says how), and filled later through :func:`row_writer`. An array
    wider than ``unit_chunk`` (:data:`UNIT_CHUNK`) along its second dim is sharded: each such file
    holds inner chunks of that many units, so a block of units is read without reading whole rows.
    ``coords`` maps a name to ``(dims, values[, attrs])``; a coordinate given to several nodes as
    the same tuple (a run's presentation coordinates) is encoded once.

    Each node holds what xarray's ``to_zarr`` writes for the same Dataset with dask-backed
    variables (``tests/record/test_skeleton.py`` compares the bytes), made without xarray (a
    recording needs zarr only): coordinates one chunk each with zarr's default codecs, text as
    variable-length UTF-8 with fill ``""``, floats with fill NaN and xarray's ``_FillValue``
    attribute. Everything is built in a zarr ``MemoryStore`` in two trips to zarr's event loop,
    then written as plain files (:func:`_write_node_files`).
    """
    codecs = float_codecs(compression, compression_level)
    compressed = {"codec": compression, "level": codecs[0].clevel if codecs else None}
    files: dict[str, Any] = {}
    memory = zarr.storage.MemoryStore(files)
    # the groups first, then every array in one trip: an array written beside its group's creation would
    # create the group itself (zarr makes missing parents), and the group's creation would then fail
    _sync_all([zarr.api.asynchronous.create_group(store=memory, path=node, zarr_format=3,
                                                  attributes={**attrs, "compression": compressed})
               for node, (_, _, attrs) in nodes.items()])
    encoded: dict[int, str] = {}  # id of a coordinate's tuple -> where it is encoded in memory
    creations = []
    for node, (variables, coords, _) in nodes.items():
        for name, spec in coords.items():
            if id(spec) not in encoded:
                encoded[id(spec)] = key = f"{_ENCODED}/{len(encoded)}"
                creations.append(_array_of_values(memory, key, name, spec))
        coord_dims = {name: _dims(spec) for name, spec in coords.items()}
        indexes = set().union(*coord_dims.values())  # a coordinate named after a dimension is an index: named by none
        for name, (dims, shape, dtype, var_attrs) in variables.items():
            shard = (min(chunk_rows, shape[0]), *shape[1:])
            chunks, shards = shard, None
            if len(shape) > 1 and shape[1] > unit_chunk:
                chunks = (shard[0], unit_chunk, *shard[2:])
                shards = (shard[0], -(-shape[1] // unit_chunk) * unit_chunk, *shard[2:])
            named = sorted(k for k, d in coord_dims.items() if k not in indexes and set(d) <= set(dims))
            floating = np.dtype(dtype).kind == "f"
            extra = {"_FillValue": NAN_FILL_VALUE} if floating else {}
            creations.append(zarr.api.asynchronous.create_array(
                memory, name=f"{node}/{name}", shape=shape, dtype=dtype, chunks=chunks, shards=shards,
                compressors=codecs if floating else "auto", fill_value=np.nan if floating else None,
                dimension_names=dims, attributes={**var_attrs, "coordinates": " ".join(named), **extra}, zarr_format=3,
                chunk_key_encoding=CHUNK_KEYS))
    _sync_all(creations)
    made = {key: value.to_bytes() for key, value in files.items() if not key.startswith(_ENCODED + "/")}
    for node, (_, coords, _) in nodes.items():
        node_files = dict(made)
        for name, spec in coords.items():
            prefix = encoded[id(spec)] + "/"
            node_files.update({f"{node}/{name}/{key.removeprefix(prefix)}": value.to_bytes()
                               for key, value in files.items() if key.startswith(prefix)})
        _write_node_files(Path(out), node, node_files)


#: Where :func:`create_nodes` encodes coordinates in memory (no node can have the name: zarr reserves "__").
_ENCODED = "__encoded__"
#: xarray's ``_FillValue`` attribute of float arrays whose missing values are NaN (base64 of a little-endian double).
NAN_FILL_VALUE = "AAAAAAAA+H8="


def _dims(spec: tuple) -> tuple[str, ...]:
    return (spec[0],) if isinstance(spec[0], str) else tuple(spec[0])


async def _array_of_values(memory: Any, key: str, name: str, spec: tuple, coordinates: str | None = None) -> None:
    """Write variable ``name`` = ``(dims, values[, attrs])`` at ``key`` of ``memory`` as xarray's
    ``to_zarr`` would: one chunk, zarr's default codecs, text as variable-length UTF-8 with fill
    ``""``, floats with fill NaN and the ``_FillValue`` attribute; a data variable's
    ``coordinates`` attribute (the names of its non-index coordinates) comes before it."""
    values, attrs = np.asarray(spec[1]), dict(spec[2] if len(spec) > 2 else {})
    if coordinates:
        attrs["coordinates"] = coordinates
    kind = values.dtype.kind
    if kind in "OUT":  # text: variable-length UTF-8, as xarray writes object arrays
        values, dtype, fill = values.astype(object), zarr.dtype.VariableLengthUTF8(), ""
    elif kind == "f":
        dtype, fill = values.dtype, np.nan
        attrs["_FillValue"] = NAN_FILL_VALUE
    elif kind in "iub":
        dtype, fill = values.dtype, values.dtype.type(0)
    else:
        raise StoreError(f"variable {name!r}: expected numbers, booleans or text, found dtype {values.dtype}")
    array = await zarr.api.asynchronous.create_array(memory, name=key, shape=values.shape, dtype=dtype, chunks=values.shape,
                                                     fill_value=fill, attributes=attrs, dimension_names=_dims(spec), zarr_format=3,
                                                     chunk_key_encoding=CHUNK_KEYS)
    await array.setitem(Ellipsis, values)


def _dataset_files(datasets: dict[str, xr.Dataset]) -> dict[str, bytes]:
    """The files of the nodes holding ``datasets`` (node path -> Dataset, loaded; variables
    numbers, booleans or text), byte for byte those xarray's ``to_zarr`` writes
    (``tests/record/test_skeleton.py``), built without its per-variable round trips to zarr's
    loop: every node's groups in one trip, then all their arrays in one."""
    files: dict[str, Any] = {}
    memory = zarr.storage.MemoryStore(files)
    groups, writes = [], []
    for node, ds in datasets.items():
        non_index = [name for name in ds.coords if name not in ds.dims]
        named_by_data = set()
        for name, var in ds.variables.items():
            coordinates = None
            if name in ds.data_vars:
                named = sorted(c for c in non_index if set(ds.variables[c].dims) <= set(var.dims))
                named_by_data.update(named)
                coordinates = " ".join(named)
            writes.append(_array_of_values(memory, f"{node}/{name}", name, (var.dims, var.values, var.attrs), coordinates))
        unnamed = sorted(set(non_index) - named_by_data)  # coordinates no data variable names: listed by the group
        attrs = {**ds.attrs, **({"coordinates": " ".join(unnamed)} if unnamed else {})}
        groups.append(zarr.api.asynchronous.create_group(store=memory, path=node, zarr_format=3, attributes=attrs))
    _sync_all(groups)  # before their arrays
    _sync_all(writes)
    return {key: buffer.to_bytes() for key, buffer in files.items()}


def _write_node_files(out: Path, node: str, files: dict[str, bytes]) -> None:
    """Write node ``node`` of the store at ``out`` from the files a zarr ``MemoryStore`` holds
    (key -> bytes), replacing the node's folder; the groups above it get their ``zarr.json``
    only where they have none (the root's, with the run state, is never touched).

    Why: xarray's ``to_zarr`` and zarr's array creation go through zarr's asynchronous store,
    which costs several milliseconds per file on a local disk. The same calls on a
    ``MemoryStore`` and one plain write per file give the same bytes in about half the time
    (benchmarks/record_overhead.py prints the store's creation; the result nodes of an analysis
    are written the same way).
    """
    folder = out / node
    if folder.exists():
        shutil.rmtree(folder)
    parts = node.split("/")
    for depth in range(len(parts)):  # the groups above the node: created if missing, never rewritten
        meta = out.joinpath(*parts[:depth], "zarr.json")
        key = "/".join([*parts[:depth], "zarr.json"])
        if not meta.exists() and key in files:
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_bytes(files[key])
    mine = {key: data for key, data in files.items() if key.startswith(node + "/")}
    folder.mkdir(parents=True, exist_ok=True)
    if f"{node}/zarr.json" in mine:  # first: a folder without it is not the store's (check_output, _foreign_entries)
        (folder / "zarr.json").write_bytes(mine.pop(f"{node}/zarr.json"))
    for parent in sorted({(out / key).parent for key in mine}):  # each folder once, parents first: a mkdir is slow here
        parent.mkdir(parents=True, exist_ok=True)
    for key, data in mine.items():
        (out / key).write_bytes(data)


def create_progress_node(out: Path, node: str, arrays: dict[str, tuple[tuple[int, ...], Any, tuple[str, ...]]],
                         block: int, attrs: dict[str, Any]) -> None:
    """Create (or replace) node ``node`` of unwritten arrays that a stage fills block by block.

    ``arrays`` maps a name to ``(shape, dtype, dimension names)``, chunked ``block`` rows at a
    time along the first dim; the dimension names make the node readable by xarray while the
    run is unfinished.
    """
    group = zarr.open_group(out, mode="a").require_group(node)
    group.attrs.update(attrs)
    for name, (shape, dtype, dims) in arrays.items():
        group.create_array(name, shape=shape, chunks=(block, *shape[1:]), dtype=dtype, dimension_names=dims, overwrite=True)


def open_node(out: Path, node: str) -> zarr.Group:
    """Node ``node`` of an existing store, writable."""
    return zarr.open_group(out, mode="r+")[node]


def delete_node(out: Path, node: str) -> None:
    """Delete node ``node`` (and everything under it) if it exists."""
    folder = Path(out) / node
    if (folder / "zarr.json").is_file():
        consolidated = is_consolidated(out)
        shutil.rmtree(folder)
        if consolidated:
            consolidate(out)


class RowWriter:
    """Writes a batch's rows into several arrays of a store at once (:func:`row_writer`).

    ``arrays`` maps a name (``"fc1/activity"``) to its zarr array; :meth:`write` sends every
    array's rows to zarr's event loop in one trip, so their chunks are encoded and written
    concurrently (one synchronous zarr call per array costs about a millisecond more each;
    benchmarks/record_loop.py measures the loop).
    """

    def __init__(self, arrays: dict[str, zarr.Array]) -> None:
        self.arrays = arrays

    def __getitem__(self, name: str) -> zarr.Array:
        return self.arrays[name]

    def write(self, start: int, stop: int, rows: dict[str, np.ndarray]) -> None:
        """Write ``rows[name]`` into rows ``start:stop`` of each named array."""
        _sync_all([self.arrays[name].async_array.setitem(slice(start, stop), values) for name, values in rows.items()])


def row_writer(group: zarr.Group, arrays: list[str]) -> RowWriter:
    """The named arrays of a store (``"fc1/activity"``), ready for row writes of whole chunks."""
    # every chunk gets real data, so skip zarr's scan of each chunk for "all fill value"
    return RowWriter({name: group[name].with_config({"write_empty_chunks": True}) for name in arrays})


def save_result_node(store: str | os.PathLike[str], node: str, result: xr.Dataset) -> None:
    """Write a result Dataset as the store node ``node`` (replacing whatever was there):
    :func:`save_result_nodes` of one node.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> folder = tempfile.mkdtemp()
    >>> save_result_node(folder, "analyses/fc1/mean", xr.Dataset({"m": ("neuroid", np.ones(3))}, attrs={"n": np.int64(3)}))
    >>> from neurorecord.store import load_result_node
    >>> load_result_node(folder, "analyses/fc1/mean").attrs["n"]
    3
    """
    save_result_nodes(store, {node: result})


def save_result_nodes(store: str | os.PathLike[str], results: dict[str, xr.Dataset]) -> None:
    """Write each result Dataset as the store node its key names (replacing whatever was there).

    Attributes are made JSON-serialisable (numpy scalars and arrays to lists, NaN to ``"nan"``).
    The nodes are encoded together (one trip to zarr's event loop for all their arrays: a
    protocol's analyses are saved at once) and written node by node; a store that was
    consolidated is consolidated again, once.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> folder = tempfile.mkdtemp()
    >>> save_result_nodes(folder, {f"analyses/fc1/{name}": xr.Dataset({"m": ("neuroid", np.full(3, k))})
    ...                            for k, name in enumerate(["low", "high"])})
    >>> from neurorecord.store import load_result_node
    >>> load_result_node(folder, "analyses/fc1/high")["m"].values.tolist()
    [1, 1, 1]
    """
    consolidated = is_consolidated(store)
    plain, files = {}, {}
    for node, result in results.items():
        clean = _storable(result)
        if all(var.dtype.kind in "fiubO" for var in clean.variables.values()):
            plain[node] = clean
        else:  # other dtypes (dates, complex numbers): xarray's own encoding
            memory: dict[str, Any] = {}
            clean.to_zarr(zarr.storage.MemoryStore(memory), group=node, mode="w", zarr_format=3, consolidated=False,
                          encoding={name: {"chunk_key_encoding": CHUNK_KEYS} for name in clean.variables})
            files[node] = {key: buffer.to_bytes() for key, buffer in memory.items()}
    if plain:
        encoded = _dataset_files(plain)
        files.update({node: encoded for node in plain})  # each node's writer takes its own keys and its parents'
    for node in results:
        _write_node_files(Path(store), node, files[node])
    if consolidated:  # results added to a finished store: its consolidated metadata must list them too
        consolidate(store)


def _storable(result: xr.Dataset) -> xr.Dataset:
    """``result`` computed, with JSON-serialisable attributes, text as objects and only dimension indexes."""
    result = result.compute()  # (an xarray object: xarray is imported)
    clean = result.copy()
    clean.attrs = {k: _jsonable(v) for k, v in result.attrs.items()}
    for var in list(clean.variables):
        clean[var].attrs = {k: _jsonable(v) for k, v in clean[var].attrs.items()}
        if clean[var].dtype.kind in "TU":  # numpy text -> object, which zarr stores as variable-length text
            clean[var] = clean[var].astype(object)
    return clean.drop_indexes([i for i in clean.indexes if i not in clean.dims])


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and np.isnan(value):
        return "nan"
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
