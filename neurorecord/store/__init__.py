"""The recording store: a zarr (v3) folder holding an ``xarray.DataTree``; all store I/O is here.

Layout: the root node carries provenance attributes; each recorded region is a child node
whose Dataset holds ``activity`` (``presentation x neuroid``, float32, one shard per batch of
presentations, cut into chunks of :data:`UNIT_CHUNK` units) with the presentation and neuroid
coordinates; ``behaviour`` holds the subject's own output per presentation; results live under ``analyses/<region>/<name>`` and
``lesions/<name>``. The root attribute ``run`` tracks the run: which protocol made it, how many
batches are written, and whether it is complete; a complete store's metadata is consolidated
into the root ``zarr.json``. zarr replaces ``zarr.json`` atomically (write to
a temporary file, then rename), so a killed run always leaves a state that ``--resume`` can trust.

This package needs no torch: stores of biological recordings are read and analysed without it.

All store I/O is in this package: ``_layout`` (names, constants, codecs), ``_state`` (the run's
state, the output folder's checks, the lock), ``_write`` (nodes and rows through zarr alone),
``_read`` (opening, consolidation, result nodes) and ``_manifest`` (the manifest and its checks).
Everything is used through ``neurorecord.store``.
"""

from __future__ import annotations

from ._layout import (  # noqa: F401 (re-exported: everything is used as neurorecord.store.NAME)
    ANALYSES_NODE,
    BEHAVIOUR_NODE,
    CHUNK_KEYS,
    COMPRESSIONS,
    FORMAT,
    LESIONS_NODE,
    MANIFEST_ATTR,
    PROGRESS_NODE,
    RUN_ATTR,
    UNIT_CHUNK,
    float_codecs,
)
from ._manifest import (  # noqa: F401 (re-exported: everything is used as neurorecord.store.NAME)
    check_files,
    check_format,
    manifest,
    package_versions,
)
from ._read import (  # noqa: F401 (re-exported: everything is used as neurorecord.store.NAME)
    consolidate,
    index_labels,
    is_consolidated,
    load_result_node,
    open_recording,
    _plain_strings,
)
from ._state import (  # noqa: F401 (re-exported: everything is used as neurorecord.store.NAME)
    RunState,
    check_output,
    create_store,
    exclusive,
    not_a_store,
    open_writable,
    read_run_state,
    root_attrs,
    write_run_state,
)
from ._write import (  # noqa: F401 (re-exported: everything is used as neurorecord.store.NAME)
    NAN_FILL_VALUE,
    NodeSpec,
    RowWriter,
    create_node,
    create_nodes,
    create_progress_node,
    delete_node,
    open_node,
    row_writer,
    save_result_node,
    save_result_nodes,
    _storable,
    _write_node_files,
)

__all__ = [
    "CHUNK_KEYS",
    "NAN_FILL_VALUE",
    "NodeSpec",
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
    "row_writer",
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
    "save_result_nodes",
    "write_run_state",
]
