"""Planning a sweep by measuring it: stimuli per upstream batch, lesions per pack, stimuli per chunk.

How fast a downstream pass runs per (lesion, stimulus) row depends on its size in ways no byte
count predicts: small passes pay each operation's fixed cost (a network of small layers, such
as the digits MLP, wants thousands of rows per pass), large ones fall out of the caches (a
convolution may run fastest on a few hundred rows), and both depend on the machine. So the sweep
measures, on its own first passes, over the real data:

- **Downstream**: the first chunk of stimuli (:data:`FIRST_CHUNK`) runs its lesions in packs of
  1, 4, 16, ... lesions (each size on two passes; the faster counts), growing while a pass's
  time per row falls by more than :data:`GAIN`; the best size ``p`` finishes the chunk. The
  rest of the sweep then runs passes of the same number of rows, ``p x FIRST_CHUNK``, cut into
  as many stimuli per chunk and as few lesions per pack as that allows (fewer chunks, fewer
  intact passes). Every probe pass is part of the sweep: nothing is computed twice.
- **Upstream**: the stimuli go through the upstream part in batches of 64, 256, 1024, ...
  (each size on two batches where the stimuli allow), growing while the time per stimulus falls
  by more than :data:`GAIN`; the rest at the best size.

Every pass also fits the memory budget: ``pack x chunk`` rows times the bytes per row measured on
a probe pass, plus the chunk's frontier. A size the caller fixes (``pack_size``,
``stimulus_chunk``, ``batch_size``) is not measured. On a GPU nothing is measured: passes are
as large as the budget allows (its throughput grows with the batch).

The plan changes how the work is cut, never what is computed: predictions do not depend on it
(tests check that), logits and downstream sums only by float rounding.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["FIRST_CHUNK", "GAIN", "Plan", "PassPlanner", "available_bytes", "pass_budget", "upstream_batches"]

#: stimuli in the first chunk, where the pack sizes are measured
FIRST_CHUNK = 64
#: relative fall of the time per row that makes the next, larger size worth trying
GAIN = 0.05
#: pack sizes (and upstream batches) grow by this factor from one measured size to the next
STEP = 4
#: upstream batch sizes start here
FIRST_BATCH = 64


@dataclass
class Plan:
    """How a sweep was cut into passes, and what was measured to decide it.

    Attributes
    ----------
    pack_size
        Lesions per downstream pass, after the measured first chunk.
    stimulus_chunk
        Stimuli per chunk after the first one (each pass has ``pack_size * stimulus_chunk`` rows).
    upstream_batch
        Stimuli per upstream batch, after the measured first batches.
    probes
        What was measured: ``(part, pack, stimuli, seconds per row)``, ``part`` ``"downstream"``
        (a pass of ``pack`` lesions over ``stimuli`` stimuli) or ``"upstream"`` (a batch of
        ``stimuli``, ``pack`` 1), in the order measured. Empty when nothing was measured.
    """

    pack_size: int
    stimulus_chunk: int
    upstream_batch: int
    probes: list[tuple[str, int, int, float]] = field(default_factory=list)


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: the GPU's free memory, or the host's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 2 << 30


def pass_budget(device: torch.device, memory_budget: int | None) -> int:
    """Bytes one pass may allocate: ``memory_budget``, else a quarter of the host's available
    memory (half of the GPU's free memory on ``cuda``)."""
    if memory_budget is not None:
        return memory_budget
    return available_bytes(device) // (2 if device.type == "cuda" else 4)


class PassPlanner:
    """Chooses the pack size and the chunk size while the sweep runs (see the module docstring).

    The sweep asks :meth:`chunk` for the size of its next chunk of stimuli and :meth:`pack` for
    the size of its next pack of lesions, and reports each pass's time with :meth:`observe`.
    """

    def __init__(self, n_stimulus: int, n_lesion: int, row_bytes: float, frontier_bytes: float, budget: int, *,
                 pack_size: int | None = None, stimulus_chunk: int | None = None, measure: bool = True) -> None:
        self.n, self.n_lesion = n_stimulus, n_lesion
        self.row_bytes, self.frontier_bytes, self.budget = max(row_bytes, 1.0), frontier_bytes, budget
        self.probes: list[tuple[str, int, int, float]] = []
        self.measuring = measure and pack_size is None
        if stimulus_chunk is not None:
            chunk = min(self.n, stimulus_chunk)
        elif self.measuring:
            chunk = min(self.n, FIRST_CHUNK, self._fit_chunk(1))
        else:  # as many stimuli per chunk as fit with the fixed (or a single-lesion) pack
            chunk = min(self.n, self._fit_chunk(pack_size or 1))
        self.first_chunk = chunk
        self._fixed_chunk = stimulus_chunk is not None
        self._candidate = 1  # the pack size being measured in the first chunk
        self._times: dict[int, list[float]] = {}  # seconds per row of each measured pack size
        self._best: int | None = None if self.measuring else min(self.n_lesion, pack_size or self._fit_pack(chunk))
        self._steady: tuple[int, int] | None = None  # (pack, chunk) after the first chunk

    def _fit_pack(self, chunk: int) -> int:
        """Lesions per pack that fit the budget with ``chunk`` stimuli (at least 1)."""
        return int(max(1, min(self.n_lesion, (self.budget - chunk * self.frontier_bytes) // (chunk * self.row_bytes))))

    def _fit_chunk(self, pack: int) -> int:
        """Stimuli per chunk that fit the budget with ``pack`` lesions (at least 1)."""
        return int(max(1, min(self.n, self.budget // (pack * self.row_bytes + self.frontier_bytes))))

    def chunk(self, start: int) -> int:
        """Stimuli in the chunk that starts at stimulus ``start``."""
        return self.first_chunk if start == 0 else min(self.n - start, self.steady()[1])

    def pack(self, start: int, done: int) -> int:
        """Lesions in the next pack of the chunk that starts at ``start``, ``done`` of its lesions run."""
        left = self.n_lesion - done
        if start != 0:
            return min(left, self.steady()[0])
        return min(left, self._best if self._best is not None else self._candidate)

    def observe(self, start: int, pack: int, chunk: int, seconds: float, done: int) -> None:
        """The time of one downstream pass of ``pack`` lesions over ``chunk`` stimuli, after
        which ``done`` lesions of the chunk have run."""
        if start != 0 or self._best is not None:
            return
        per_row = seconds / (pack * chunk)
        self.probes.append(("downstream", pack, chunk, per_row))
        size = self._candidate
        times = self._times.setdefault(size, [])
        times.append(per_row)
        left = self.n_lesion - done
        if len(times) < 2 and left >= size:  # a second pass of this size: the faster of two counts
            return
        before = min((min(t) for p, t in self._times.items() if p != size), default=math.inf)
        faster = min(times) < (1 - GAIN) * before
        nxt = size * STEP
        if faster and left > 0 and nxt <= self._fit_pack(self.first_chunk):
            self._candidate = nxt
            return
        self._best = min(self._times, key=lambda p: min(self._times[p]))

    def steady(self) -> tuple[int, int]:
        """(pack, chunk) for the chunks after the first: passes of the rows found fastest, as many
        stimuli and as few lesions per pass as those rows allow."""
        if self._steady is None:
            if self._best is None:
                self._best = min(self._times, key=lambda p: min(self._times[p])) if self._times else 1
            best = self._best
            if self._fixed_chunk or not self.measuring:
                chunk, pack = self.first_chunk, best
            else:
                rows = best * self.first_chunk
                chunk = min(self.n, rows, self._fit_chunk(1))
                pack = min(self.n_lesion, max(1, rows // chunk), self._fit_pack(chunk))
            self._steady = (max(1, pack), max(1, chunk))
        return self._steady

    def plan(self, upstream_batch: int, upstream_probes: list[tuple[str, int, int, float]]) -> Plan:
        """The plan as it ran: the (pack, chunk) after the first chunk (of the first chunk, where
        it was the only one)."""
        pack, chunk = self.steady() if self.n > self.first_chunk else (self._best or 1, self.first_chunk)
        return Plan(min(pack, self.n_lesion), chunk, upstream_batch, upstream_probes + self.probes)


def upstream_batches(n: int, batch_size: int | None, cap: int, run: Callable[[int, int], Any],
                     measure: bool = True) -> tuple[int, list[tuple[str, int, int, float]]]:
    """Run ``run(start, stop)`` over stimuli ``0 .. n - 1`` in batches; return the batch size
    used after the measured ones, and the measurements.

    ``batch_size`` fixes the size; else the sizes 64, 256, ... are measured (two batches each,
    where the stimuli allow) while the time per stimulus falls by more than :data:`GAIN`, never
    above ``cap`` stimuli (memory); without ``measure``, batches of ``cap``.
    """
    if batch_size is not None or not measure:
        size = min(n, batch_size if batch_size is not None else cap)
        for start in range(0, n, size):
            run(start, min(n, start + size))
        return size, []
    probes: list[tuple[str, int, int, float]] = []
    best: dict[int, float] = {}
    size, start, chosen = min(n, FIRST_BATCH, cap), 0, None
    while start < n:
        if chosen is not None:
            stop = min(n, start + chosen)
            run(start, stop)
            start = stop
            continue
        for _ in range(2):
            if start >= n:
                break
            stop = min(n, start + size)
            t0 = time.perf_counter()
            run(start, stop)
            per = (time.perf_counter() - t0) / (stop - start)
            if stop - start == size:
                probes.append(("upstream", 1, size, per))
                best[size] = min(best.get(size, math.inf), per)
            start = stop
            if n - start < size:  # no room for another batch of this size
                break
        before = min((t for s, t in best.items() if s != size), default=math.inf)
        nxt = size * STEP
        if size in best and best[size] < (1 - GAIN) * before and nxt <= cap and n - start >= nxt:
            size = nxt
        else:
            chosen = min(best, key=best.__getitem__) if best else size
    return chosen if chosen is not None else size, probes
