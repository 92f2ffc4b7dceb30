"""The recording store: a zarr (v3) folder holding an ``xarray.DataTree``; all store I/O is here.

Layout: the root node carries provenance attributes; each recorded region is a child node
whose Dataset holds ``activity`` (``presentation x neuroid``, float32, one shard per batch of
presentations, cut into chunks of :data:`UNIT_CHUNK` units) with the presentation and neuroid
coordinates; ``behaviour`` holds the subject's own output per presentation; results live under ``analyses/<region>/<name>`` and
``lesions/<name>``. The root attribute ``run`` tracks the run: which protocol made it, how many
batches are written, and whether it is complete; a complete store's metadata is consolidated
into the root ``zarr.json``. zarr replaces ``zarr.json`` atomically (write to
a temporary file, then rename), so a killed run always leaves a state that ``--resume`` can trust.

This module needs no torch: stores of biological recordings are read and analysed without it.

(Over 500 lines, one job: the design asks for all store I/O in one place, so creating, writing,
checking, consolidating and reading a store stay together. At about 840 lines, the next step is a
``store`` sub-package with one module each for writing nodes through zarr, the run's state and
lock, reading, and the manifest's checks.)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from ._validation import check_choice
from .errors import DamagedStoreError, IncompleteRecordingError, StoreError

if TYPE_CHECKING:  # xarray is imported where a store is read or a result written: recording needs zarr only
    import xarray as xr

__all__ = [
    "COMPRESSIONS",
    "float_codecs",
    "ANALYSES_NODE",
    "FORMAT",
    "MANIFEST_ATTR",
    "check_files",
    "check_format",
    "manifest",
    "BEHAVIOUR_NODE",
    "LESIONS_NODE",
    "PROGRESS_NODE",
    "create_progress_node",
    "delete_node",
    "UNIT_CHUNK",
    "open_node",
    "RUN_ATTR",
    "RowWriter",
    "RunState",
    "check_output",
    "consolidate",
    "create_store",
    "is_consolidated",
    "create_node",
    "create_nodes",
    "exclusive",
    "index_labels",
    "load_result_node",
    "not_a_store",
    "open_recording",
    "open_writable",
    "package_versions",
    "read_run_state",
    "root_attrs",
    "save_result_node",
    "write_run_state",
]

#: Root attribute holding the :class:`RunState`.
RUN_ATTR = "run"
#: Version of the store's layout this package writes (2: ``behaviour`` node and the manifest);
#: it reads every version up to this one.
FORMAT = 2
#: Root attribute holding the manifest: every file of the store at completion, with size and CRC-32.
MANIFEST_ATTR = "manifest"
#: Root node of the analysis results (``analyses/<region>/<name>``).
ANALYSES_NODE = "analyses"
#: Root node of the lesion results (``lesions/<name>``).
LESIONS_NODE = "lesions"
#: Root node of unfinished work of a stage (``progress/lesions/<name>``: the finished blocks of a
#: lesion sweep); it exists only while a run is incomplete.
PROGRESS_NODE = "progress"
#: Node of the subject's own output per presentation.
BEHAVIOUR_NODE = "behaviour"
#: ``record.compression`` choices: the Blosc compressor of each (None: chunks stored raw).
COMPRESSIONS = {"none": None, "lz4": "lz4", "zstd": "zstd"}


def float_codecs(compression: str = "lz4", level: int | None = None) -> list[BloscCodec]:
    """The zarr compressors of float arrays for ``record.compression`` and ``compression_level``.

    ``lz4`` and ``zstd`` go through Blosc at ``level`` (default 1), without shuffling: rectified
    activity is about half exact zeros, which compress as runs of whole values that byte or bit
    shuffling would break up (on the benchmark's VGG maps LZ4 keeps 53 % of the bytes unshuffled,
    60 % byte-shuffled and 72 % bit-shuffled, and encodes 2x faster unshuffled); ``none``
    stores chunks raw (an empty list). benchmarks/record_overhead.py prints the write speed and
    store size of each on the same recording.

    >>> [c.cname.value for c in float_codecs("zstd", 3)], float_codecs("none")
    (['zstd'], [])
    >>> float_codecs("gzip")
    Traceback (most recent call last):
    ...
    neurorecord.errors.StoreError: compression: expected one of 'none', 'lz4', 'zstd', found 'gzip'
    """
    check_choice("compression", compression, tuple(COMPRESSIONS), error=StoreError)
    cname = COMPRESSIONS[compression]
    return [] if cname is None else [BloscCodec(cname=cname, clevel=1 if level is None else level, shuffle="noshuffle")]
#: How chunk files are named: ``c.<i>.<j>`` beside the array's ``zarr.json`` (zarr v3's default
#: encoding with ``.`` as separator), not ``c/<i>/<j>``: a folder less per array and per batch,
#: and making a folder costs as much as writing a small file on the disks measured here.
CHUNK_KEYS = {"name": "default", "separator": "."}
#: Units per stored chunk of a wide array (zarr v3 sharding): a shard is one batch of
#: presentations x every unit (what a writer writes at once, one file), cut into inner chunks of
#: the batch x this many units (what a per-unit analysis reads: a block of units of every
#: presentation reads one inner chunk per shard, not whole rows). See docs/store.md.
UNIT_CHUNK = 512


@dataclass
class RunState:
    """Progress of a run, as kept in the root attribute ``run``.

    ``stage`` is ``creating`` (store skeleton being written), ``recording``, ``analysing``
    (the protocol's ``analyses:`` being run), ``lesioning`` (its ``lesions:``; ``lesions_done``
    counts each sweep's finished lesions, -1 once its results are written), ``studying`` (its ``study:``
    entries, recomputed whole on resume) or ``complete``; ``batches_done`` batches of ``batch_size`` presentations are on disk.
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


def open_recording(path: str | os.PathLike[str], allow_incomplete: bool = False, verify: str = "sizes") -> xr.DataTree:
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
    return xr.DataTree.from_dict({node: index_labels(_chunked(ds.assign_coords(loaded), f"{token}{node}"))
                                  for (node, ds), loaded in zip(datasets.items(), coords)})


def _load_coords(datasets: list[xr.Dataset]) -> list[dict[str, xr.Variable]]:
    """The coordinates of every node in memory (they are small), read together: one trip to zarr's
    event loop for the whole store (xarray's ``load_async``), where a dask computation per node
    cost several times more (benchmarks/record_overhead.py prints the opening's cost)."""
    from zarr.core.sync import sync

    async def load_all() -> list[xr.Dataset]:
        return list(await asyncio.gather(*(ds.coords.to_dataset().load_async() for ds in datasets)))

    return [{name: _plain_strings(loaded[name].variable) for name in ds.coords} for ds, loaded in zip(datasets, sync(load_all()))]


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


def root_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The root node's attributes (provenance), read without opening any array."""
    return dict(zarr.open_group(Path(path), mode="r").attrs)


# ------------------------------------------------------------------ writing a run's store


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


#: A node of :func:`create_nodes`: ``(variables, coords, attrs)``; ``variables`` maps a name to
#: ``(dims, shape, dtype, attrs)``, ``coords`` a name to ``(dims, values[, attrs])``.
NodeSpec = tuple[dict[str, tuple[tuple[str, ...], tuple[int, ...], Any, dict[str, Any]]], dict[str, tuple], dict[str, Any]]


def create_node(out: Path, node: str, variables: dict[str, tuple[tuple[str, ...], tuple[int, ...], Any, dict[str, Any]]],
                coords: dict[str, tuple], attrs: dict[str, Any], chunk_rows: int, compression: str = "lz4",
                compression_level: int | None = None) -> None:
    """Write node ``node``'s skeleton: :func:`create_nodes` of one node."""
    create_nodes(out, {node: (variables, coords, attrs)}, chunk_rows, compression, compression_level)


def create_nodes(out: Path, nodes: dict[str, NodeSpec], chunk_rows: int, compression: str = "lz4",
                 compression_level: int | None = None) -> None:
    """Write the skeleton of each node: every coordinate and attribute, and unwritten data variables.

    ``nodes`` maps a node's path to ``(variables, coords, attrs)``. ``variables`` maps a name to
    ``(dims, shape, dtype, attrs)``, ``presentation`` first; each is stored ``chunk_rows``
    presentations at a time (whole along every other dim: one file per batch), compressed with
    :func:`float_codecs` of ``compression`` and ``compression_level`` when float (the node's
    attribute ``compression`` says how), and filled later through :func:`row_writer`. An array
    wider than :data:`UNIT_CHUNK` along its second dim is sharded: each such file holds inner
    chunks of :data:`UNIT_CHUNK` units, so a block of units is read without reading whole rows.
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
                creations.append(_coordinate_array(memory, key, name, spec))
        coord_dims = {name: _dims(spec) for name, spec in coords.items()}
        indexes = set().union(*coord_dims.values())  # a coordinate named after a dimension is an index: named by none
        for name, (dims, shape, dtype, var_attrs) in variables.items():
            shard = (min(chunk_rows, shape[0]), *shape[1:])
            chunks, shards = shard, None
            if len(shape) > 1 and shape[1] > UNIT_CHUNK:
                chunks = (shard[0], UNIT_CHUNK, *shard[2:])
                shards = (shard[0], -(-shape[1] // UNIT_CHUNK) * UNIT_CHUNK, *shard[2:])
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


async def _coordinate_array(memory: Any, key: str, name: str, spec: tuple, coordinates: str | None = None) -> None:
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


def _dataset_files(ds: xr.Dataset, node: str) -> dict[str, bytes]:
    """The files of node ``node`` holding ``ds`` (loaded; its variables numbers, booleans or text),
    byte for byte those xarray's ``to_zarr`` writes (``tests/record/test_skeleton.py``), built
    without its per-variable round trips to zarr's loop: all arrays in one trip."""
    files: dict[str, Any] = {}
    memory = zarr.storage.MemoryStore(files)
    non_index = [name for name in ds.coords if name not in ds.dims]
    named_by_data = set()
    writes = []
    for name, var in ds.variables.items():
        coordinates = None
        if name in ds.data_vars:
            named = sorted(c for c in non_index if set(ds.variables[c].dims) <= set(var.dims))
            named_by_data.update(named)
            coordinates = " ".join(named)
        writes.append(_coordinate_array(memory, f"{node}/{name}", name, (var.dims, var.values, var.attrs), coordinates))
    unnamed = sorted(set(non_index) - named_by_data)  # coordinates no data variable names: listed by the group
    attrs = {**ds.attrs, **({"coordinates": " ".join(unnamed)} if unnamed else {})}
    _sync_all([zarr.api.asynchronous.create_group(store=memory, path=node, zarr_format=3, attributes=attrs)])  # before its arrays
    _sync_all(writes)
    return {key: buffer.to_bytes() for key, buffer in files.items()}


def _sync_all(coroutines: list[Any]) -> list[Any]:
    """Run zarr coroutines together on zarr's own event loop: one round trip to its thread instead
    of one per call (each costs about a millisecond; a store skeleton makes dozens)."""
    from zarr.core.sync import sync

    async def gather() -> list[Any]:
        return list(await asyncio.gather(*coroutines))

    return sync(gather())


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
    for folder in sorted({(out / key).parent for key in mine}):  # each folder once, parents first: a mkdir is slow here
        folder.mkdir(parents=True, exist_ok=True)
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
    """Write a result Dataset as the store node ``node`` (replacing whatever was there).

    Attributes are made JSON-serialisable (numpy scalars and arrays to lists, NaN to ``"nan"``).

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> folder = tempfile.mkdtemp()
    >>> save_result_node(folder, "analyses/fc1/mean", xr.Dataset({"m": ("neuroid", np.ones(3))}, attrs={"n": np.int64(3)}))
    >>> load_result_node(folder, "analyses/fc1/mean").attrs["n"]
    3
    """
    consolidated = is_consolidated(store)
    clean = _storable(result)
    if all(var.dtype.kind in "fiubO" for var in clean.variables.values()):
        files = _dataset_files(clean, node)
    else:  # other dtypes (dates, complex numbers): xarray's own encoding
        memory: dict[str, Any] = {}
        clean.to_zarr(zarr.storage.MemoryStore(memory), group=node, mode="w", zarr_format=3, consolidated=False,
                      encoding={name: {"chunk_key_encoding": CHUNK_KEYS} for name in clean.variables})
        files = {key: buffer.to_bytes() for key, buffer in memory.items()}
    _write_node_files(Path(store), node, files)
    if consolidated:  # a result added to a finished store: its consolidated metadata must list it too
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


# ------------------------------------------------------------------ what a complete store holds


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
    >>> (out / "fc2" / "activity" / "c.1.0").unlink()
    >>> check_files(out)
    ['fc2/activity/c.1.0 is missing (chunk of array fc2/activity)']
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
