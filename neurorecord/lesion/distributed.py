"""A protocol's ``lesions:`` on a ``dask.distributed`` cluster: blocks of lesions spread over workers.

Lesions are independent: each block of :data:`~neurorecord.lesion.experiment.BLOCK` lesions has
its own seed and its own rows (its own chunk) of the entry's progress arrays. The unfinished
blocks of an entry go to the workers in contiguous ranges, one task per worker. A task gets the
subject (pickled and scattered to every worker once per run, unpickled once per worker), builds
the entry's upstream frontier once (:func:`~neurorecord.lesion.sweep.prepared_sweep`), runs its
blocks and writes their rows to the store itself; writers never share a chunk. The pass sizes
measured by the entry's first block are kept in the progress node, as in one process; the other
ranges measure their own (the predictions do not depend on them; float sums over downstream
units may differ in their last bits, as between two single-process runs, whose sizes are
measured from timings too). The client alone writes the run state: ``lesions_done`` counts the finished blocks from
the start of the entry, so after a killed run or a lost worker the blocks past the first gap run
again, with the same seeds, into the same rows (nothing lost, nothing counted twice). The
statistics are computed by the client, as in a single process, from the finished arrays.
The client in scope and the subject's trip to the workers: :mod:`neurorecord.cluster`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import store as store_io
from ..cluster import current_client, pickled_subject, shared, subject_on_worker, worker_threads
from ..errors import NeurorecordError
from ..protocol.schema import Protocol
from ..stimuli.base import StimulusSet
from . import experiment as ex
from .specs import Lesion
from .sweep import prepared_sweep

__all__ = ["run_lesion_sweeps_distributed", "lesion_sweeps_runner"]


def lesion_sweeps_runner() -> Callable[..., None]:
    """:func:`run_lesion_sweeps_distributed` when a client is in scope, else the single-process
    :func:`~neurorecord.lesion.experiment.run_lesion_sweeps` (same arguments)."""
    return run_lesion_sweeps_distributed if current_client() is not None else ex.run_lesion_sweeps


def _run_blocks(subject: tuple[str, bytes], x: torch.Tensor, region: str, means: Any, downstream: list[str] | None,
                shortcut: bool, how: dict, lesions: list[Lesion], starts: list[int], seeds: list[int],
                labels: np.ndarray, store: str, node: str) -> dict[str, Any]:
    """On a worker: the entry's frontier once, then each block of ``lesions`` (starting at
    ``starts``), its rows written to the progress arrays. Returns the blocks' starts, how the
    passes ran (sizes measured by the first block unless ``how`` has them) and the intact pass
    (predictions, logits, downstream activity without lesion), without the lesioned rows."""
    arrays = store_io.open_node(Path(store), node)
    ran = dict(how)
    with subject_on_worker(*subject) as model:
        threads = torch.get_num_threads()
        torch.set_num_threads(worker_threads())  # the worker's share of the cores (restored: a thread worker shares the process)
        try:
            with prepared_sweep(model, x, region, means=means, device="cpu", downstream=downstream or None, shortcut=shortcut,
                                batch_size=how.get("upstream_batch")) as sweep:
                for start, seed in zip(starts, seeds):
                    stop = min(len(lesions), start + ex.BLOCK)
                    result = ex._run_block(sweep, lesions[start:stop], seed, ran.get("pack_size"), ran.get("stimulus_chunk"))
                    ex.write_block(arrays, start, result, labels)
                    ran = ex._how(result, ran)
        finally:
            torch.set_num_threads(threads)
    return {"starts": starts, "how": ran, "intact": ex.intact_of(result)}


def run_lesion_sweeps_distributed(protocol: Protocol, model: torch.nn.Module, sets: list[StimulusSet], device: torch.device,
                                  store: Path, done: dict[str, int], save_progress: Callable[[], None], quiet: bool) -> None:
    """:func:`~neurorecord.lesion.experiment.run_lesion_sweeps` with the blocks of lesions run on
    the workers of the client in scope (same arguments, same store, same resume rules).

    Raises
    ------
    NeurorecordError
        No client is in scope, or the run's device is not the CPU (the workers run on theirs).
    """
    from distributed import as_completed

    client = current_client()
    if client is None:
        raise NeurorecordError("no dask.distributed client in scope: create one (Client(...)) or use run_lesion_sweeps")
    if torch.device(device).type != "cpu":
        raise NeurorecordError(f"device: lesion sweeps on a cluster run on the workers' CPUs; found device {device}")
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    model_future = None
    run = uuid.uuid4().hex[:8]  # task keys unique to this call: a finished key of another run is never reused
    for index, spec in enumerate(protocol.lesions):
        if done.get(spec.name) == -1:
            continue
        entry = ex.open_entry(protocol, index, model, sets, device, store, done, save_progress)
        arrays, lesions, labels, n_lesions = entry.arrays, entry.lesions, entry.labels, len(entry.lesions)
        means, x = entry.means, entry.x

        how = dict(arrays.attrs.get("how", {}))  # a resumed entry reuses the pass sizes its first block measured
        if done[spec.name] >= n_lesions:
            rest = [0]  # every block was done before an interruption: one block again, for the intact pass
        else:
            rest = list(range(done[spec.name], n_lesions, ex.BLOCK))
        if model_future is None:
            model_future = shared(client, pickled_subject(model), "subject")  # sent once per run
        x_future = shared(client, x, f"stimuli-{spec.name}")
        ranges = [r.tolist() for r in np.array_split(np.asarray(rest), min(len(rest), n_workers)) if len(r)]
        futures = [client.submit(_run_blocks, model_future, x_future, spec.region, means, list(spec.downstream), spec.shortcut,
                                 how, lesions, starts, [entry.seed(protocol, s) for s in starts], labels, str(store), entry.node,
                                 key=f"lesion-blocks-{spec.name}-{starts[0]}-{run}")
                   for starts in ranges]
        finished: set[int] = set()
        intact = None
        for future in as_completed(futures):
            out = future.result()
            future.release()  # done: were its worker lost now, the scheduler must not run it again
            finished.update(out["starts"])
            if out["starts"][0] == rest[0]:  # the entry's first block measured the pass sizes: kept, as in one process
                intact = out["intact"]
                if not how:
                    arrays.attrs["how"] = out["how"]
            while done[spec.name] < n_lesions and done[spec.name] in finished:
                done[spec.name] = min(n_lesions, done[spec.name] + ex.BLOCK)
            save_progress()
        ex.finish_entry(entry, protocol, store, intact, done, save_progress)
    store_io.delete_node(store, store_io.PROGRESS_NODE)
