"""Recording on a ``dask.distributed`` cluster: the presentation plan's batches spread over workers.

A chunk of ``batches_per_chunk`` batches of presentations is one chunk (one shard file) of every
region's ``activity`` and of the behaviour arrays, and each batch seeds torch from ``(seed, batch)``,
so chunks can be recorded anywhere, in any order, and give what one process gives. The chunks not
yet on disk are cut into contiguous ranges (about four per worker, so a lost worker costs little and the run state
advances while the run goes on); each task gets the subject (pickled and scattered once per run,
unpickled once per worker, :mod:`neurorecord.cluster`; a future the scheduler can compute again if
the workers holding it are lost), the plan and the trial variability,
streams its range with :func:`~neurorecord.record.stream.stream_batches` and writes its rows to
the store itself: writers never share a chunk. The client alone writes the run state:
``batches_done`` counts the batches finished from the start of the plan, so after a killed run the
batches past the first gap are recorded again into the same rows. A lost worker's task runs again
on another worker (dask reschedules it) and rewrites the same rows with the same values.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import store as store_io
from ..cluster import pickled_subject, shared, subject_on_worker, worker_threads
from .plan import PresentationPlan
from .stream import batch_rows, stream_batches
from .trials import TrialVariability

__all__ = ["record_distributed", "TASKS_PER_WORKER"]

#: Ranges of batches per worker: enough that a lost worker's task is a small part of the run and
#: the run state advances often, few enough that each task's fixed cost (hooks, buffers) is small.
TASKS_PER_WORKER = 4


def _record_range(subject: tuple[str, bytes], plan: PresentationPlan, variability: TrialVariability,
                  shapes: dict[str, tuple[int, ...]], reduce: str, seed: int, batch_size: int, first: int, stop: int,
                  behaviour: int | None, labels: np.ndarray | None, store: str, names: list[str], dtype: str,
                  batches_per_chunk: int) -> tuple[int, int]:
    """On a worker: record batches ``first .. stop - 1`` and write their rows; returns the range."""
    writer = store_io.row_writer(store_io.open_writable(Path(store)), names)

    def write(batch: int, start: int, stop_: int, buffers: dict[str, np.ndarray]) -> None:
        writer.write(start, stop_, batch_rows(names, labels, start, stop_, buffers))

    with subject_on_worker(*subject) as model:
        threads = torch.get_num_threads()
        torch.set_num_threads(worker_threads())  # the worker's share of the cores (restored: a thread worker shares the process)
        try:
            stream_batches(model, plan, shapes, reduce, variability, torch.device("cpu"), seed, batch_size, first, write,
                           behaviour=behaviour, quiet=True, stop_batch=stop, dtype=dtype, batches_per_chunk=batches_per_chunk)
        finally:
            torch.set_num_threads(threads)
    return first, stop


def record_distributed(client: Any, model: torch.nn.Module, plan: PresentationPlan, shapes: dict[str, tuple[int, ...]],
                       reduce: str, variability: TrialVariability, seed: int, batch_size: int, first_batch: int,
                       behaviour: int | None, labels: np.ndarray | None, store: str, names: list[str],
                       advance: Callable[[int], None], quiet: bool = False, desc: str = "recording",
                       dtype: str = "float32", batches_per_chunk: int = 1) -> None:
    """Record the batches ``first_batch ..`` of ``plan`` on the workers of ``client``.

    Parameters
    ----------
    client
        A ``dask.distributed.Client``; its workers see ``store`` at the same path.
    model, plan, shapes, reduce, variability, seed, batch_size, first_batch, behaviour
        As :func:`~neurorecord.record.stream.stream_batches` (the workers run on their CPUs).
    labels
        Float class indices per presentation (NaN: unlabelled), to score ``behaviour/correct``.
    store
        The store's folder.
    names
        The arrays written (``"fc1/activity"``, ``"behaviour/output"``, ...).
    advance
        Called in this process with the number of batches finished from the start of the plan,
        each time it grows (the run state is written there).
    quiet, desc
        Progress bar.
    dtype, batches_per_chunk
        As :func:`~neurorecord.record.stream.stream_batches` (``record.dtype``; the store's chunks:
        ``first_batch`` is the first batch of one, and every range is whole chunks).
    """
    from distributed import as_completed

    n = len(plan)
    n_batches = -(-n // batch_size)
    if first_batch >= n_batches:
        return
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    k, first_chunk, n_chunks = batches_per_chunk, first_batch // batches_per_chunk, -(-n_batches // batches_per_chunk)
    bounds = np.linspace(first_chunk, n_chunks, min(n_chunks - first_chunk, TASKS_PER_WORKER * n_workers) + 1).round()
    ranges = [(int(a) * k, min(int(b) * k, n_batches)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]  # whole chunks
    run = uuid.uuid4().hex[:8]  # task keys unique to this call: a finished key of another run is never reused
    subject = shared(client, pickled_subject(model), "subject")
    plan_, variability_ = shared(client, plan, "presentation-plan"), shared(client, variability, "trial-variability")
    futures = [client.submit(_record_range, subject, plan_, variability_, shapes, reduce, seed, batch_size, a, b, behaviour,
                             labels, store, names, dtype, k, key=f"record-batches-{a}-{b}-{run}") for a, b in ranges]
    finished: set[int] = set()
    done = first_batch
    with tqdm(total=n, initial=min(first_batch * batch_size, n), unit="stim", desc=desc, disable=quiet, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for future in as_completed(futures):
            a, b = future.result()
            future.release()  # done: were its worker lost now, the scheduler must not run it again
            finished.update(range(a, b))
            bar.update(min(n, b * batch_size) - a * batch_size)
            before = done
            while done in finished:
                done += 1
            if done > before:
                advance(done)
