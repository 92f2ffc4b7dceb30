"""The ``dask.distributed`` client a run uses, and the subject sent to its workers once.

neurorecord has no parallel machinery of its own: with a client in scope, the recording's
batches (:mod:`neurorecord.record.distributed`) and the lesion sweeps' blocks
(:mod:`neurorecord.lesion.distributed`) run as tasks on its workers, and the analyses' kernels
on dask's active scheduler. :func:`current_client` finds that client; :func:`cluster_client`
makes one for ``neurorecord run --scheduler ADDRESS`` / ``--workers N``; :func:`pickled_subject`
and :func:`subject_on_worker` ship the subject to the workers and unpickle it once per worker.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import NeurorecordError

__all__ = ["cluster_client", "current_client", "pickled_subject", "shared", "subject_on_worker", "worker_threads"]


def current_client() -> Any | None:
    """The ``dask.distributed`` client in scope (``Client(...)`` made the default), or None.

    Examples
    --------
    >>> current_client() is None
    True
    """
    import sys

    if "distributed" not in sys.modules:  # no client can exist, and importing distributed costs ~0.4 s
        return None
    try:
        from distributed import default_client
    except ImportError:  # a module of that name that is not dask's
        return None
    try:
        return default_client()
    except ValueError:
        return None


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any | None]:
    """A client for ``neurorecord run``: connected to ``scheduler`` (an address such as
    ``tcp://host:8786`` or a scheduler file path), or to a new local cluster of ``workers``
    single-threaded worker processes; neither: no client (yields None).

    Raises
    ------
    NeurorecordError
        Both given, ``workers`` below 1, or ``distributed`` not installed (names the extra).

    Examples
    --------
    >>> with cluster_client() as client:
    ...     client is None
    True
    """
    if scheduler is None and workers is None:
        yield None
        return
    if scheduler is not None and workers is not None:
        raise NeurorecordError(f"scheduler, workers: expected at most one of them, found scheduler={scheduler!r} and workers={workers}")
    if workers is not None and workers < 1:
        raise NeurorecordError(f"workers: expected a number of worker processes >= 1, found {workers}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise NeurorecordError('scheduler/workers: dask.distributed is not installed; pip install "neurorecord[distributed]"') from None
    if scheduler is not None:
        kwargs = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
        with Client(**kwargs) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def pickled_subject(model: Any) -> tuple[str, bytes]:
    """The subject as bytes (cloudpickle: a model class defined in a script travels too) and their
    sha256, the key under which each worker keeps it unpickled.

    Examples
    --------
    >>> import torch
    >>> digest, blob = pickled_subject(torch.nn.Linear(2, 1))
    >>> with subject_on_worker(digest, blob) as first:
    ...     pass
    >>> with subject_on_worker(digest, blob) as second:
    ...     second is first
    True
    """
    import hashlib

    import cloudpickle

    local = _modules_off_path(model)
    for module in local:  # an entry point's module from the protocol's folder: the workers cannot import it
        cloudpickle.register_pickle_by_value(module)
    try:
        blob = cloudpickle.dumps(model)
    finally:
        for module in local:
            cloudpickle.unregister_pickle_by_value(module)
    return hashlib.sha256(blob).hexdigest(), blob


def _modules_off_path(model: Any) -> list[Any]:
    """The modules defining the subject's layers that ``import`` would not find now: an entry
    point's file imported from the protocol's folder (:func:`neurorecord.subjects.build_subject`
    puts the folder on ``sys.path`` only while importing it). They travel by value."""
    import sys

    found = {}
    layers = model.modules() if hasattr(model, "modules") else [model]
    for name in {type(layer).__module__ for layer in layers}:
        module = sys.modules.get(name)
        if module is None or name == "__main__" or getattr(module, "__file__", None) is None:
            continue
        top = name.split(".")[0]
        if not any(getattr(finder, "find_spec", None) and finder.find_spec(top, None) for finder in sys.meta_path):
            found[name] = module
    return list(found.values())


#: The subject on this process (a worker), unpickled once per run: key, the digest of its pickle.
_SUBJECTS: dict[str, Any] = {}
#: One task at a time uses the subject of a worker process: a worker with several threads would
#: otherwise run two tasks' hooks on one model at once (each task gives torch all the worker's threads).
_SUBJECT_LOCK = threading.Lock()


@contextlib.contextmanager
def subject_on_worker(digest: str, blob: bytes) -> Iterator[Any]:
    """The subject on this worker, held by this task alone: unpickled by the first task that
    needs it (recording or lesions), then reused by every later task of the run."""
    import pickle

    with _SUBJECT_LOCK:
        if digest not in _SUBJECTS:
            _SUBJECTS.clear()
            _SUBJECTS[digest] = pickle.loads(blob)
        yield _SUBJECTS[digest]


def worker_threads() -> int:
    """The threads this dask worker was given (``--nthreads``), for torch to use no more than its share."""
    from distributed import get_worker

    return max(1, get_worker().state.nthreads)


def _itself(value: Any) -> Any:
    return value


def shared(client: Any, value: Any, name: str) -> Any:
    """A future holding ``value`` on the cluster, for the tasks of a run to share.

    It is the result of a task that returns ``value``, not scattered data: if every worker holding
    it is lost, the scheduler computes it again from the task, where scattered data would be gone
    (and with it every task that needs it). Workers fetch it from each other, once each.
    """
    import uuid

    return client.submit(_itself, value, key=f"{name}-{uuid.uuid4().hex[:8]}")
