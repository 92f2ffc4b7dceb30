"""Streaming a presentation plan through the subject: batches in order, activity out.

:func:`stream_batches` runs the batches not yet done through the subject with the regions
tapped (hooks only inside the call), reduces each region's output to what is stored, and hands
each finished batch to a writer callback in a background thread, so writing overlaps the next
forward pass. Two host buffers per region are reused (one being filled, one being written).
Each batch seeds torch from ``(seed, batch)``, so a resumed run draws exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..subjects.base import eval_mode
from .plan import PresentationPlan
from .regions import RegionTap, reduce_output, reduce_time_output
from .trials import TrialVariability

__all__ = ["BatchWriter", "CHUNK_BYTES", "MAX_BATCHES_PER_CHUNK", "batches_per_chunk", "stream_batches", "behaviour_of", "batch_rows"]

#: ``batches_per_chunk: auto`` makes chunks of at least this many bytes in the store's widest
#: array: zarr costs about a millisecond per array per write whatever its size, so narrow regions
#: written a batch at a time make the writer the bottleneck (benchmarks/record_overhead.py, the
#: digits MLP case) ...
CHUNK_BYTES = 2**20
#: ... from at most this many batches: an interrupted run records up to these again.
MAX_BATCHES_PER_CHUNK = 8

#: ``write(batch, start, stop, buffers)``: store rows ``start:stop`` from ``buffers[name][:stop - start]``.
BatchWriter = Callable[[int, int, int, dict[str, np.ndarray]], None]


def batches_per_chunk(asked: str | int, batch_size: int, row_bytes: int, n_batches: int) -> int:
    """Batches per stored chunk: ``asked`` (``record.batches_per_chunk``) when a number; for
    ``"auto"``, the fewest batches whose rows of the widest array (``row_bytes`` each) reach
    :data:`CHUNK_BYTES`, at most :data:`MAX_BATCHES_PER_CHUNK`. Never more than the plan's
    ``n_batches``.

    >>> batches_per_chunk("auto", 256, 400, 36)  # 100 float32 units: 100 kB a batch
    8
    >>> batches_per_chunk("auto", 256, 57344, 8)  # full conv maps: 14.7 MB a batch
    1
    >>> batches_per_chunk(3, 100, 400, 2)
    2
    """
    if asked == "auto":
        asked = min(MAX_BATCHES_PER_CHUNK, -(-CHUNK_BYTES // max(1, batch_size * row_bytes)))
    return max(1, min(int(asked), n_batches))


def behaviour_of(output: torch.Tensor) -> dict[str, torch.Tensor]:
    """The subject's behaviour for one batch: its output vector and its choice (the argmax).

    >>> import torch
    >>> b = behaviour_of(torch.tensor([[0.1, 2.0, -1.0]]))
    >>> b["predicted"].tolist(), b["output"].shape
    ([1], torch.Size([1, 3]))
    """
    return {"output": output.float(), "predicted": output.argmax(dim=1)}


def batch_rows(names: list[str], labels: np.ndarray | None, start: int, stop: int,
               buffers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One batch's rows ``start:stop`` for each of the store's arrays ``names`` (``"fc1/activity"``,
    ``"behaviour/output"``, ...): each region's activity and the behaviour, ``behaviour/correct``
    scored against ``labels`` (float class indices, NaN where a presentation has none).

    Examples
    --------
    >>> import numpy as np
    >>> buffers = {"fc1": np.ones((3, 2)), "behaviour/predicted": np.array([1, 0, 2])}
    >>> rows = batch_rows(["fc1/activity", "behaviour/predicted", "behaviour/correct"], np.array([1.0, 1.0, np.nan, 0.0]),
    ...                   0, 2, buffers)
    >>> rows["behaviour/correct"].tolist(), rows["fc1/activity"].shape
    ([1.0, 0.0], (2, 2))
    """
    rows = {}
    for name in names:
        if name == "behaviour/correct":
            label = labels[start:stop]
            predicted = buffers["behaviour/predicted"][: stop - start]
            rows[name] = np.where(np.isnan(label), np.nan, predicted == label).astype(np.float32)
        else:
            rows[name] = buffers[name.removesuffix("/activity")][: stop - start]
    return rows


def _write_when_copied(write: BatchWriter, copied: Any, batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
    """In the writer thread: wait for the batch's device-to-host copies (a CUDA event), then write it."""
    if copied is not None:
        copied.synchronize()
    write(batch, start, stop, buffers)


def stream_batches(
    model: nn.Module,
    plan: PresentationPlan,
    regions: dict[str, tuple[int, ...]],
    reduce: str,
    variability: TrialVariability,
    device: torch.device,
    seed: int,
    batch_size: int,
    first_batch: int,
    write: BatchWriter,
    behaviour: int | None = None,
    quiet: bool = False,
    desc: str = "recording",
    stop_batch: int | None = None,
    dtype: str = "float32",
    batches_per_chunk: int = 1,
) -> None:
    """Record the batches ``first_batch .. stop_batch - 1`` of ``plan``, handing each stored chunk
    (``batches_per_chunk`` batches) to ``write``.

    Parameters
    ----------
    model
        The subject's module; put in eval mode for the call and left as it was found (mode,
        hooks, parameters), also when the call raises.
    plan
        The presentations, in order.
    regions
        Region name -> stored shape of one presentation (``(n_neuroid,)``, or
        ``(n_neuroid, n_time_bin)`` when time-resolved).
    reduce
        How conv outputs are reduced over space (``record.reduce``).
    variability
        Trial-to-trial variability (jitter, input noise, dropout).
    device
        Where the subject runs.
    seed
        The protocol's seed; batch ``b`` seeds torch from ``(seed, b)``.
    batch_size
        Presentations per batch (per forward pass).
    first_batch
        The first batch not yet on disk: the first of a chunk (a multiple of ``batches_per_chunk``).
    write
        Called (in a background thread) once per chunk with ``(batch, start, stop, buffers)``:
        ``batch`` the chunk's last batch, ``start:stop`` its presentations; ``buffers`` holds one
        array per region, and ``behaviour/output`` and ``behaviour/predicted`` when ``behaviour``
        is given.
    behaviour
        The number of output units of the subject when its behaviour is recorded (the whole
        forward pass runs); None to stop each pass after the deepest region.
    quiet
        No progress bar.
    desc
        Progress bar label.
    stop_batch
        One past the last batch to record: the end of a chunk or of the plan; None: to the end of
        the plan (a worker of a cluster records its own range, :mod:`neurorecord.record.distributed`).
    dtype
        ``float32``, or ``bfloat16``: the forward pass under :func:`torch.autocast` (the weights
        are not touched); the stored values are float32 either way.
    batches_per_chunk
        Batches per stored chunk (:func:`batches_per_chunk`): the rows of that many batches are
        gathered and written at once.

    Notes
    -----
    Inputs and outputs go through two reused host buffers each (fresh memory's first touch is
    slow). On a CUDA device they are pinned and every copy is asynchronous: the next batch's
    images are prepared on the CPU while the GPU runs this one, and the writer thread waits for a
    batch's device-to-host copies (a CUDA event) before writing it, so transfers and store writes
    overlap the forward passes.
    """
    n = len(plan)
    n_batches = -(-n // batch_size) if stop_batch is None else stop_batch
    if first_batch % batches_per_chunk or (n_batches % batches_per_chunk and n_batches * batch_size < n):
        raise ValueError(f"batches {first_batch}..{n_batches - 1}: expected whole chunks of {batches_per_chunk} batches")
    steps = plan.time.steps if plan.time is not None else None
    rows = min(batch_size * batches_per_chunk, n)  # buffers as large as what is presented, not as asked
    cuda = device.type == "cuda"
    shapes = {r: ((rows, *shape), torch.float32) for r, shape in regions.items()}
    if behaviour is not None:
        shapes.update({"behaviour/output": ((rows, behaviour), torch.float32), "behaviour/predicted": ((rows,), torch.int64)})
    # two slots (one filled, one written); pinned on CUDA, so device-to-host copies run asynchronously
    host = [{k: torch.zeros(shape, dtype=dt, pin_memory=cuda) for k, (shape, dt) in shapes.items()} for _ in range(2)]
    buffers = [{k: t.numpy() for k, t in slot.items()} for slot in host]
    # the inputs too: two reused (pinned) slots; on CUDA one is filled while the other is copied to the device
    inputs = [torch.zeros((rows, *plan.input_shape), dtype=torch.float32, pin_memory=cuda) for _ in range(2)]
    uploaded: list[Any] = [None, None]  # CUDA events: the slot's last host-to-device copy is done
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
    pending: deque[Future[None]] = deque()
    bar = tqdm(total=n, initial=min(first_batch * batch_size, n), unit="stim", desc=desc,
               disable=quiet, file=sys.stderr, dynamic_ncols=True)
    devices = [device.index or 0] if cuda else []
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neurorecord-writer") as pool, eval_mode(model), \
                torch.random.fork_rng(devices=devices), variability.neural_noise(model), RegionTap(model, list(regions)) as tap:
            for batch in range(first_batch, n_batches):
                start, stop = batch * batch_size, min(n, (batch + 1) * batch_size)
                torch.manual_seed(int(np.random.SeedSequence([seed, batch]).generate_state(1)[0]))
                staged = inputs[batch % 2][: stop - start]
                if uploaded[batch % 2] is not None:
                    uploaded[batch % 2].synchronize()  # its copy two batches ago has left it
                plan.images(start, stop, out=staged.numpy())
                x = staged.to(device, non_blocking=cuda)
                if cuda:
                    uploaded[batch % 2] = torch.cuda.Event()
                    uploaded[batch % 2].record()
                x = variability.apply(x, start)
                with torch.inference_mode():
                    with autocast:
                        if behaviour is None:
                            outputs, result = tap(x), None
                        else:
                            outputs, result = tap.with_output(x)
                    chunk = batch // batches_per_chunk
                    first_row = chunk * batches_per_chunk * batch_size
                    if batch % batches_per_chunk == 0 and len(pending) == 2:
                        pending.popleft().result()  # the chunk two chunks ago has left this slot
                    slot = host[chunk % 2]
                    rows_ = slice(start - first_row, stop - first_row)
                    for region, output in outputs.items():
                        stored = reduce_output(output, reduce) if steps is None else reduce_time_output(output, reduce, steps)
                        slot[region][rows_].copy_(stored, non_blocking=cuda)
                    if result is not None:
                        for key, value in behaviour_of(result).items():
                            slot[f"behaviour/{key}"][rows_].copy_(value, non_blocking=cuda)
                    last = batch % batches_per_chunk == batches_per_chunk - 1 or batch == n_batches - 1
                    copied = torch.cuda.Event() if cuda and last else None
                    if copied is not None:
                        copied.record()  # after every copy of the chunk (one stream)
                del outputs, result
                if last:
                    pending.append(pool.submit(_write_when_copied, write, copied, batch, first_row, stop, buffers[chunk % 2]))
                bar.update(stop - start)
            while pending:
                pending.popleft().result()
    finally:
        bar.close()
