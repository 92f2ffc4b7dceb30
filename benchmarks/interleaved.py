"""Interleaved timing rounds, shared by the benchmark scripts (benchmarks/ is on sys.path when they run)."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_interleaved(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Run every case once per round, rounds after rounds, and return each case's wall times (s):
    on a shared machine the load drifts, and interleaving spreads the drift over every case.

    >>> times = time_interleaved({"a": lambda: None, "b": lambda: None}, 2)
    >>> {k: len(v) for k, v in times.items()}
    {'a': 2, 'b': 2}
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
