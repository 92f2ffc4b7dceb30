"""Per-unit tests at scale: ANOVA, Kruskal-Wallis, the Rayleigh null and the FDR step of ``neurorecord.analysis.stats``.

Measured in one run, on the same seeded data: 2,000 trials (presentations) x 100,000 units of
random float32 responses (standard normal; 800 MB), in 10 conditions of 200 trials each, in
random order. Compared:

* **ours**: ``stats.anova(activity, "label")`` and ``stats.kruskal(activity, "label")`` on the
  numpy-backed DataArray, everything included (checks, blocks of units, the tests, the FDR step
  per region). Blocks of units run one after the other in the calling thread; BLAS may use
  several threads in the matrix products (``ours s`` column); the ``1 thr s`` column is the same
  call with BLAS limited to one thread (``threadpoolctl``).
* **scipy, vectorised**: ``scipy.stats.f_oneway(*groups, axis=0)`` and ``kruskal(..., axis=0)``
  on a slice of ``--scipy-units`` units (default 10,000) of the same data, cast to float64 and
  split into the 10 groups beforehand (not timed), scaled linearly to all units. scipy runs on
  one core.
* **scipy, per unit**: a Python loop calling ``f_oneway`` / ``kruskal`` on each unit's 10 groups,
  timed on an evenly spaced sample of ``--loop-units`` units (default 300) and scaled.
* **FDR**: ``_units.fdr`` (statsmodels ``multipletests``, Benjamini-Hochberg) on the 100,000 p
  values alone; it is also inside the "ours" times.
* **dask-backed**: the array written to a temporary zarr store chunked along presentation like a
  recording (256 presentations x all units per chunk), opened with xarray (dask), and tested in
  a child process, whose time and peak resident memory are reported: that is the case of a
  recording larger than memory. Then the same with chunks split along neuroid too (256 x the
  units of one block), to show what bounds the memory.

* **kernels**: each fast kernel against the plain computation it replaces, on one block of
  units (as ``map_unit_blocks`` hands them: all trials x 16 MiB of float64), one thread:
  ``rank_sums`` on float32 activity (float32 keys), on Poisson counts (counting) and on float64
  values (argsort) against ``scipy.stats.rankdata(axis=0)`` followed by the group sums; each
  result checked equal. (The ANOVA is the plain centred computation itself since its cached
  row-slice pass gained at most 1.3x: ``benchmarks/README.md``.)
* **Rayleigh**: ``stats.rayleigh`` (tuning-curve resultant, permutation null, 1,000 shuffles) on
  2,000 Poisson units over 8 directions with 6 to 13 trials each, against the same null computed
  by ``stats.permutation_test`` with a resultant function vectorised over units (one shuffle at a
  time), and against the per-unit loop (timed on ``--loop-units`` / 10 units, scaled); p values
  checked equal.

Also reported: the peak resident memory (``resource.getrusage``) of this process above the data,
the agreement of our statistics with scipy's on the slice, the load average, and the CPU time of
our calls (CPU/wall > 1 means BLAS threads ran in parallel). The machine may be shared (other
test runs): every timing is the fastest of its rounds (``--repeats`` interleaved rounds of ours,
two of each scipy baseline), the usual reading of a timing on a machine whose other load only
ever slows a round down; read the load averages printed with them.

Targets: ANOVA >= 10x faster than scipy's vectorised call, Kruskal-Wallis >= 3x; both >= 50x
faster than the per-unit loop; memory bounded by blocks of units; each fast kernel faster than
the plain computation it replaces (else it goes); the Rayleigh null on 2,000 units x 1,000
shuffles in seconds. Figures from runs on the development machine: ``benchmarks/README.md``.

Run from the repository root::

    python benchmarks/unit_stats.py                 # 100,000 units (several minutes, ~3 GB)
    python benchmarks/unit_stats.py --quick         # 5,000 units, seconds
    python benchmarks/unit_stats.py --units 20000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.stats
import xarray as xr

from neurorecord.analysis import _units, stats

TARGETS = {"anova": (10.0, 50.0), "kruskal": (3.0, 50.0)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB.

    ``VmHWM`` of ``/proc/self/status`` where there is one (Linux): the peak of this process's own
    memory, which :func:`reset_peak` can reset to phase the measurement. ``getrusage``'s
    ``ru_maxrss`` is the fallback: on Linux a child process inherits its parent's value at fork.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def reset_peak() -> bool:
    """Reset the peak resident memory to the current one (Linux ``clear_refs``); False if impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall time, CPU time (user + system, all threads) and the result of ``fn()``."""
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), out


def make_data(n_trials: int, n_units: int, n_conditions: int, seed: int, counts: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float32 responses (trials x units), generated in blocks of units, and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_trials) % n_conditions)
    x = np.empty((n_trials, n_units), dtype=np.float32)
    for start in range(0, n_units, 8192):
        stop = min(n_units, start + 8192)
        block_rng = np.random.default_rng([seed, start])
        if counts:
            x[:, start:stop] = block_rng.poisson(3.0, size=(n_trials, stop - start))
        else:
            x[:, start:stop] = block_rng.standard_normal((n_trials, stop - start), dtype=np.float32)
    return x, labels


def as_activity(x: np.ndarray, labels: np.ndarray) -> xr.DataArray:
    n_trials, n_units = x.shape
    return xr.DataArray(
        x,
        dims=("presentation", "neuroid"),
        coords={
            "stimulus_id": ("presentation", [f"s{i:05d}" for i in range(n_trials)]),
            "label": ("presentation", labels),
            "neuroid_id": ("neuroid", [f"layer.{i}" for i in range(n_units)]),
            "region": ("neuroid", np.full(n_units, "layer")),
        },
    )


def ours(test: str, activity: xr.DataArray, one_thread: bool = False) -> xr.Dataset:
    from threadpoolctl import threadpool_limits

    fn = getattr(stats, test)
    if one_thread:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(activity, "label")
    return fn(activity, "label")


def best_of(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    """Fastest wall time of ``rounds`` calls of ``fn`` and its (last) result."""
    times, out = [], None
    for _ in range(max(1, rounds)):
        wall, _, out = timed(fn)
        times.append(wall)
    return min(times), out


def kernels(n_trials: int, n_conditions: int, seed: int, rounds: int) -> list[tuple[str, float, float, str]]:
    """(kernel, ours s, plain s, agreement) on one block of units, one thread."""
    from threadpoolctl import threadpool_limits

    from neurorecord.analysis import _ranks

    width = max(1, _units.BLOCK_BYTES // (8 * n_trials))
    x32, labels = make_data(n_trials, width, n_conditions, seed)
    counts, _ = make_data(n_trials, width, n_conditions, seed + 1, counts=True)
    x64 = x32.astype(np.float64) * (1 + 2.0**-40)  # float64 values that are not float32: the argsort path
    one_hot = np.zeros((n_conditions, n_trials))
    one_hot[labels, np.arange(n_trials)] = 1.0

    def plain_ranks(block: np.ndarray) -> np.ndarray:
        return one_hot @ scipy.stats.rankdata(block, axis=0)

    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for name, block in (("rank_sums, float32 keys", x32), ("rank_sums, counting (Poisson)", counts),
                            ("rank_sums, argsort (float64)", x64)):
            fast_s, fast = best_of(lambda: _ranks.rank_sums(block, labels, n_conditions), rounds)
            slow_s, slow = best_of(lambda: plain_ranks(block), rounds)
            rows.append((name, fast_s, slow_s, "rank sums equal" if np.array_equal(fast[0], slow) else "DIFFER"))
    return rows


def rayleigh_bench(seed: int, loop_units: int) -> dict[str, Any]:
    """The Rayleigh null on 2,000 Poisson units, 8 directions, 6 to 13 trials each, 1,000 shuffles."""
    rng = np.random.default_rng(seed)
    per_direction = np.array([6, 13, 8, 11, 7, 12, 9, 10])
    codes = np.repeat(np.arange(8), per_direction)[rng.permutation(per_direction.sum())]
    x = rng.poisson(30.0, size=(len(codes), 2000)).astype(np.float32)
    act = xr.DataArray(x, dims=("presentation", "neuroid"), coords={"direction": ("presentation", codes * 45.0)})
    theta = np.deg2rad(np.arange(8) * 45.0)

    def resultant(values: np.ndarray, labels: np.ndarray, levels: np.ndarray) -> np.ndarray:
        means = np.stack([values[labels == k].mean(axis=0) for k in range(len(levels))])
        return np.hypot(np.cos(theta) @ means, np.sin(theta) @ means) / means.sum(axis=0)

    ours_s, res = best_of(lambda: stats.rayleigh(act, "direction", period=360.0, n_permutations=1000), 2)
    generic_s, generic = best_of(lambda: stats.permutation_test(act, "direction", resultant, n_permutations=1000), 1)
    sample = max(1, loop_units // 10)
    loop_s, _ = best_of(lambda: [stats.permutation_test(act.isel(neuroid=[j]), "direction", resultant, n_permutations=1000)
                                 for j in range(sample)], 1)
    return {"ours": ours_s, "generic": generic_s, "loop": loop_s * x.shape[1] / sample, "sample": sample,
            "equal": bool(np.array_equal(res["p"].values, generic["p"].values)),
            "fpr": float((res["p"].values < 0.05).mean())}


def scipy_vectorised(test: str, groups: list[np.ndarray]) -> Any:
    fn = {"anova": scipy.stats.f_oneway, "kruskal": scipy.stats.kruskal}[test]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*groups, axis=0)


def scipy_loop(test: str, columns: np.ndarray, index: list[np.ndarray]) -> None:
    fn = {"anova": scipy.stats.f_oneway, "kruskal": scipy.stats.kruskal}[test]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(columns.shape[1]):
            column = columns[:, j]
            fn(*[column[i] for i in index])


def write_store(x: np.ndarray, labels: np.ndarray, path: Path, chunk: int, unit_chunk: int) -> None:
    ds = xr.Dataset({"activity": as_activity(x, labels)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: fixed-length strings have no v3 specification yet
        ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False,
                   encoding={"activity": {"chunks": (chunk, unit_chunk)}})


def dask_child(path: str) -> None:
    """Run in a fresh process: open the store (dask), test, print times and peak memory as JSON."""
    activity = xr.open_zarr(path, consolidated=False)["activity"]
    out: dict[str, Any] = {"chunks": [list(c[:2]) for c in activity.chunks], "rss_before_mb": peak_rss_mb()}
    for test in ("anova", "kruskal"):
        reset_peak()
        wall, cpu, _ = timed(lambda: getattr(stats, test)(activity, "label"))
        out[test] = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--conditions", type=int, default=10)
    parser.add_argument("--scipy-units", type=int, default=10_000, help="units of the slice given to scipy's vectorised calls")
    parser.add_argument("--loop-units", type=int, default=300, help="units timed in the per-unit scipy loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5,000 units, small slices, one round")
    parser.add_argument("--no-dask", action="store_true", help="skip the zarr store / dask-backed part")
    parser.add_argument("--child-dask", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_dask:
        dask_child(args.child_dask)
        return
    if args.quick:
        args.units, args.scipy_units, args.loop_units, args.repeats = 5000, 2000, 60, 1
    n, u, k = args.trials, args.units, args.conditions
    scipy_units = min(u, args.scipy_units)

    print(f"unit_stats: {u:,} units x {n:,} trials in {k} conditions, float32 (seed {args.seed})")
    print(f"machine: {os.cpu_count()} CPUs, load average {load()} (1/5/15 min); numpy {np.__version__}, "
          f"scipy {scipy.__version__}, block {_units.BLOCK_BYTES // 2**20} MiB of float64 "
          f"({max(1, _units.BLOCK_BYTES // (8 * n)):,} units)")

    t0 = time.perf_counter()
    x, labels = make_data(n, u, k, args.seed)
    activity = as_activity(x, labels)
    base_rss = peak_rss_mb()
    print(f"data: {x.nbytes / 2**20:,.0f} MiB float32, generated in {time.perf_counter() - t0:.1f} s; "
          f"peak RSS so far {base_rss:,.0f} MiB")

    # ---------------------------------------------------------------- ours, interleaved rounds
    warm = activity.isel(neuroid=slice(0, 2 * max(1, _units.BLOCK_BYTES // (8 * n))))
    for test in ("anova", "kruskal"):  # untimed warm-up: imports, dask, first allocations
        ours(test, warm)
    can_reset = reset_peak()
    base_rss = peak_rss_mb()
    times: dict[str, list[tuple[float, float]]] = {}
    results: dict[str, xr.Dataset] = {}
    loads = []
    for _ in range(args.repeats):
        loads.append(load())
        for test in ("anova", "kruskal"):
            for mode in ("blas", "1 thread"):
                wall, cpu, res = timed(lambda: ours(test, activity, one_thread=mode == "1 thread"))
                times.setdefault(f"{test}/{mode}", []).append((wall, cpu))
                results[test] = res
    ours_rss = peak_rss_mb()
    p = results["anova"]["p"].values
    fdr_wall = min(timed(lambda: _units.fdr(p, activity))[0] for _ in range(max(1, args.repeats)))

    # counts (ties everywhere): Kruskal-Wallis on Poisson spike counts, for information
    counts, _ = make_data(n, min(u, 20_000), k, args.seed + 1, counts=True)
    count_activity = as_activity(counts, labels)
    count_wall = min(timed(lambda: ours("kruskal", count_activity))[0] for _ in range(args.repeats))
    count_units = counts.shape[1]
    del counts, count_activity

    # ---------------------------------------------------------------- scipy
    index = [np.flatnonzero(labels == g) for g in range(k)]
    sl = np.asarray(x[:, :scipy_units], dtype=np.float64)
    groups = [sl[i] for i in index]
    vec: dict[str, float] = {}
    agree: dict[str, float] = {}
    for test in ("anova", "kruskal"):
        runs = [timed(lambda: scipy_vectorised(test, groups)) for _ in range(min(2, args.repeats))]
        vec[test] = min(r[0] for r in runs)
        statistic = runs[0][2][0]
        mine = results[test]["F" if test == "anova" else "H"].values[:scipy_units]
        agree[test] = float(np.max(np.abs(mine - statistic) / np.abs(statistic)))
    del groups, sl
    sample = np.linspace(0, u - 1, min(u, args.loop_units)).astype(int)
    columns = np.asarray(x[:, sample], dtype=np.float64)
    loop = {test: min(timed(lambda: scipy_loop(test, columns, index))[0] for _ in range(2)) for test in ("anova", "kruskal")}

    # ---------------------------------------------------------------- kernels, Rayleigh
    kernel_rows = kernels(n, k, args.seed + 2, max(2, args.repeats))
    ray = rayleigh_bench(args.seed + 3, args.loop_units)

    # ---------------------------------------------------------------- dask-backed, in a child
    children: list[tuple[float, dict[str, Any]]] = []
    if not args.no_dask:
        width = max(1, _units.BLOCK_BYTES // (8 * n))
        for unit_chunk in (u, min(u, width)):  # as the recorder writes; split along neuroid too
            folder = Path(tempfile.mkdtemp(prefix="unit_stats-"))
            try:
                store_s, _, _ = timed(lambda: write_store(x, labels, folder / "rec.zarr", 256, unit_chunk))
                proc = subprocess.run([sys.executable, __file__, "--child-dask", str(folder / "rec.zarr")],
                                      capture_output=True, text=True, check=False)
                if proc.returncode == 0:
                    children.append((store_s, json.loads(proc.stdout.strip().splitlines()[-1])))
                else:
                    print("dask-backed run failed:\n" + proc.stderr[-3000:])
            finally:
                shutil.rmtree(folder, ignore_errors=True)

    # ---------------------------------------------------------------- report
    scale = u / scipy_units
    print(f"\nload averages at the start of each round of ours: {', '.join(loads)}; now {load()}")
    print(f"scipy vectorised: timed on {scipy_units:,} units (x{scale:g} to {u:,}); "
          f"per-unit loop: timed on {len(sample)} units (x{u / len(sample):,.0f})\n")
    header = (f"{'test':<16}{'ours s':>8}{'cpu s':>7}{'1 thr s':>9}{'scipy vec s':>13}{'x vec':>7}{'target':>8}"
              f"{'':>6}{'scipy loop s':>14}{'x loop':>8}{'target':>8}{'':>6}")
    print(header)
    print("-" * len(header))
    verdicts = []
    for test, name in (("anova", "ANOVA"), ("kruskal", "Kruskal-Wallis")):
        wall, cpu = min(times[f"{test}/blas"])  # the fastest round, as for scipy's calls
        single = min(w for w, _ in times[f"{test}/1 thread"])
        v, lp = vec[test] * scale, loop[test] * u / len(sample)
        t_vec, t_loop = TARGETS[test]
        ok_vec, ok_loop = v / wall >= t_vec, lp / wall >= t_loop
        verdicts += [ok_vec, ok_loop]
        print(f"{name:<16}{wall:>8.2f}{cpu:>7.2f}{single:>9.2f}{v:>13.1f}{v / wall:>7.1f}{'>= ' + str(int(t_vec)):>8}"
              f"{'PASS' if ok_vec else 'MISS':>6}{lp:>14.1f}{lp / wall:>8.0f}{'>= ' + str(int(t_loop)):>8}"
              f"{'PASS' if ok_loop else 'MISS':>6}")
    print(f"{'FDR (BH)':<16}{fdr_wall:>8.3f}   (statsmodels multipletests on {u:,} p values; inside the times above)")
    print(f"\nKruskal-Wallis on Poisson counts (ties everywhere), {count_units:,} units: {count_wall:.2f} s "
          f"({count_wall * u / count_units:.1f} s scaled to {u:,})")
    for test in ("anova", "kruskal"):
        print(f"agreement with scipy on the slice ({test}): max relative difference {agree[test]:.1e}")
    print(f"\nmemory (peak RSS{'' if can_reset else ', never reset: includes earlier phases'}): "
          f"data {x.nbytes / 2**20:,.0f} MiB; {base_rss:,.0f} MiB with the data, "
          f"{ours_rss:,.0f} MiB during our tests (+{ours_rss - base_rss:,.0f} MiB), {peak_rss_mb():,.0f} MiB "
          f"by the end (scipy, counts)")
    width = max(1, _units.BLOCK_BYTES // (8 * n))
    print(f"\nkernels on one block ({n:,} trials x {width:,} units), one thread: ours vs the plain computation")
    for name, fast_s, slow_s, agreement in kernel_rows:
        print(f"  {name:<32}{fast_s:>8.3f} s {slow_s:>8.3f} s  x{slow_s / fast_s:>5.1f}  ({agreement})")
    verdicts += [slow_s > fast_s for _, fast_s, slow_s, _ in kernel_rows]
    print(f"\nRayleigh, 2,000 Poisson units, 8 directions with 6 to 13 trials, 1,000 shuffles: ours {ray['ours']:.2f} s; "
          f"permutation_test (one shuffle at a time) {ray['generic']:.1f} s (p {'equal' if ray['equal'] else 'DIFFER'}); "
          f"per-unit loop {ray['loop']:.0f} s (timed on {ray['sample']} units, scaled); "
          f"untuned units with p < 0.05: {ray['fpr']:.3f}")
    verdicts.append(ray["ours"] < 10.0)
    for store_s, child in children:
        print(f"dask-backed, zarr chunks of {child['chunks'][0][0]} presentations x {child['chunks'][1][0]:,} units "
              f"(store written in {store_s:.1f} s; fresh process, {child['rss_before_mb']:,.0f} MiB at start):")
        for test in ("anova", "kruskal"):
            c = child[test]
            print(f"  {test:<8} {c['wall_s']:6.2f} s (cpu {c['cpu_s']:.2f} s), peak RSS {c['peak_rss_mb']:,.0f} MiB")
    print(f"\n{sum(verdicts)} of {len(verdicts)} speed targets met")


if __name__ == "__main__":
    main()
