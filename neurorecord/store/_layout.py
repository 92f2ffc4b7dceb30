"""The store's names and layout constants, the codecs of float arrays, and its trips to zarr's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from zarr.codecs import BloscCodec

from .._validation import check_choice
from ..errors import StoreError

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


def _sync_all(coroutines: list[Any]) -> list[Any]:
    """Run zarr coroutines together on zarr's own event loop: one round trip to its thread instead
    of one per call (each costs about a millisecond; a store skeleton makes dozens)."""
    from zarr.core.sync import sync

    async def gather() -> list[Any]:
        return list(await asyncio.gather(*coroutines))

    return sync(gather())
