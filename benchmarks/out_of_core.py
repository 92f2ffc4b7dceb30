"""Out of core: ANOVA + tuning curves + selectivity on a region larger than the memory given to
the process, and the store's chunk layout measured against the old one.

**Memory bound.** Each analysis run happens in a fresh child process (``--child``) that opens the
store with ``neurorecord.open_recording`` (dask-backed) and runs ``anova``, ``tuning_curve``
(``--n-boot`` bootstrap resamples) and ``selectivity(index="csi")`` on the default threaded
scheduler. The child reports its peak resident set size from the kernel (``VmHWM`` in
``/proc/self/status``: the high-water mark of its own address space, exact, not sampled; not
``ru_maxrss``, which Linux carries over from the parent's pages at fork and exec) and the parent
checks it against ``--bound-gib`` (default 1.5 GiB). No ``RLIMIT_AS`` is set: address-space limits count the virtual memory that
thread stacks and allocator arenas reserve but never touch, and make the figure meaningless; the
measured RSS peak is the statement. The region is ``--gib`` GiB of float32 (default 3.2: more
than twice the bound), and a region a quarter that size runs too, so the figures show the peak
does not grow with the store.

**Chunk layout** (``--layout``, default both): the store's layout (``store.create_node``: one
shard per batch of 256 presentations, inner chunks of ``store.UNIT_CHUNK`` units) against the
layout before it (one chunk of 256 presentations x every unit), on a smaller region
(``--layout-gib``, default 0.5): time to write it batch by batch (what the recorder does) and to
run the ANOVA on it (reading columns), in interleaved rounds, medians.

Run from the repository root::

    python benchmarks/out_of_core.py                  # 3.2 GiB region on /tmp (deleted after); minutes
    python benchmarks/out_of_core.py --gib 0.4 --layout-gib 0.1 --n-boot 5    # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 256  # presentations per batch (the protocol's default record.batch_size)
N_LABELS = 10


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def write_region(out: Path, n_pres: int, n_units: int, unit_chunk: int | None = None, seed: int = 0) -> float:
    """A complete one-region store of uniform responses (a tenth of the units prefer a label),
    written batch by batch through the store's own functions. Returns the write time (s)."""
    from neurorecord import store

    state = store.RunState("bench", "0", "creating", n_pres, ROWS, -(-n_pres // ROWS), 0)
    out.mkdir(parents=True)
    group = store.create_store(out, {"regions": ["r"], "neurorecord_format": store.FORMAT}, state)
    label = np.arange(n_pres) % N_LABELS
    store.create_node(
        out, "r", {"activity": (("presentation", "neuroid"), (n_pres, n_units), np.float32, {"units": "a.u."})},
        coords={"stimulus_id": ("presentation", np.array([f"s{i}" for i in range(n_pres)], dtype=object)),
                "label": ("presentation", label),
                "neuroid_id": ("neuroid", np.array([f"r.{i}" for i in range(n_units)], dtype=object)),
                "region": ("neuroid", np.array(["r"] * n_units, dtype=object))},
        attrs={"region": "r"}, chunk_rows=ROWS, unit_chunk=unit_chunk or store.UNIT_CHUNK)
    array = store.row_writer(group, ["r/activity"])["r/activity"]
    prefers = (np.arange(n_units) % 10 == 0) * (np.arange(n_units) % N_LABELS)
    start = time.perf_counter()
    for batch, row in enumerate(range(0, n_pres, ROWS)):
        stop = min(row + ROWS, n_pres)
        values = np.random.default_rng([seed, batch]).random((stop - row, n_units), dtype=np.float32)
        values += (label[row:stop, None] == prefers[None, :]) & (np.arange(n_units) % 10 == 0)
        array[row:stop] = values
    elapsed = time.perf_counter() - start
    state.stage, state.batches_done = "complete", state.batches_total
    store.write_run_state(group, state)
    store.consolidate(out)
    return elapsed


def child(path: str, what: str, n_boot: int) -> None:
    """Runs in the measured process: the analyses on the opened store; prints JSON timings."""
    import neurorecord
    from neurorecord import analysis

    activity = neurorecord.open_recording(path, verify="none")["r"]["activity"]
    times = {}
    calls = {"anova": lambda: analysis.anova(activity, "label"),
             "tuning_curve": lambda: analysis.tuning_curve(activity, "label", n_boot=n_boot, seed=0),
             "selectivity": lambda: analysis.selectivity(activity, "label", "csi")}
    for name in what.split(","):
        start = time.perf_counter()
        result = calls[name]()
        times[name] = time.perf_counter() - start
        assert result.sizes["neuroid"] == activity.sizes["neuroid"]
    hwm = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")]
    times["peak_rss_gib"] = int(hwm[0].split()[1]) / 2**20 if hwm else float("nan")
    print(json.dumps(times))


def measured(path: Path, what: str, n_boot: int) -> tuple[dict[str, float], float]:
    """Run :func:`child` in a fresh process; its timings and its peak RSS (GiB, its VmHWM)."""
    proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--what", what, "--n-boot", str(n_boot)],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"child failed with exit code {proc.returncode}")
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    return times, times.pop("peak_rss_gib")


def shape_for(gib: float) -> tuple[int, int]:
    n_pres = 4096
    return n_pres, max(1, int(gib * 2**30 / (4 * n_pres)))


def out_of_core(args: argparse.Namespace, root: Path) -> bool:
    ok = True
    print(f"out of core: ANOVA + tuning_curve (n_boot {args.n_boot}) + selectivity (csi), each region in a fresh process, "
          f"default threaded scheduler; peak RSS bound {args.bound_gib} GiB")
    for gib in (args.gib / 4, args.gib):
        n_pres, n_units = shape_for(gib)
        path = root / f"region-{gib:g}"
        written = write_region(path, n_pres, n_units)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**30
        times, rss = measured(path, "anova,tuning_curve,selectivity", args.n_boot)
        data = n_pres * n_units * 4 / 2**30
        within = rss <= args.bound_gib
        ok &= within
        print(f"  region {n_pres:,} presentations x {n_units:,} units = {data:.2f} GiB float32 ({size:.2f} GiB on disk, "
              f"written in {written:.1f} s; {data / args.bound_gib:.1f}x the bound)")
        print("    " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
              + f"; total {sum(times.values()):.1f} s ({sum(times.values()) / data:.1f} s/GiB); "
              f"peak RSS {rss:.2f} GiB {'<=' if within else '>'} {args.bound_gib} GiB {'PASS' if within else 'MISS'}; load {load()}")
        shutil.rmtree(path)
    return ok


def layouts(args: argparse.Namespace, root: Path) -> None:
    from neurorecord import store

    n_pres, n_units = shape_for(args.layout_gib)
    print(f"\nchunk layout: {n_pres:,} presentations x {n_units:,} units ({n_pres * n_units * 4 / 2**30:.2f} GiB), "
          f"batches of {ROWS}; {args.rounds} interleaved rounds, medians")
    names = {"sharded": None, "rows": n_units + 1}  # rows: a unit chunk wider than the region = no sharding
    write: dict[str, list[float]] = {k: [] for k in names}
    anova: dict[str, list[float]] = {k: [] for k in names}
    rss: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(args.rounds):
        for name, unit_chunk in names.items():
            path = root / f"layout-{name}"
            write[name].append(write_region(path, n_pres, n_units, unit_chunk))
            times, peak = measured(path, "anova", args.n_boot)
            anova[name].append(times["anova"])
            rss[name].append(peak)
            shutil.rmtree(path)
    med = {k: (statistics.median(write[k]), statistics.median(anova[k]), max(rss[k])) for k in names}
    print(f"  {'layout':<46} {'write s':>8} {'anova s':>8} {'peak RSS GiB':>13}")
    print(f"  {f'sharded: shards {ROWS} x all, chunks {ROWS} x {store.UNIT_CHUNK}':<46} {med['sharded'][0]:8.2f} "
          f"{med['sharded'][1]:8.2f} {med['sharded'][2]:13.2f}")
    print(f"  {f'rows: chunks {ROWS} x all units (before)':<46} {med['rows'][0]:8.2f} {med['rows'][1]:8.2f} {med['rows'][2]:13.2f}")
    print(f"  sharded / rows: write {med['sharded'][0] / med['rows'][0]:.2f}x, anova {med['sharded'][1] / med['rows'][1]:.2f}x; "
          f"load {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=3.2, help="size of the large region, GiB of float32")
    parser.add_argument("--bound-gib", type=float, default=1.5, help="peak RSS bound of the analysis process")
    parser.add_argument("--n-boot", type=int, default=20, help="bootstrap resamples of tuning_curve")
    parser.add_argument("--layout-gib", type=float, default=0.5, help="size of the region of the layout comparison")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layout", choices=["both", "out-of-core", "chunks"], default="both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--what", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.what, args.n_boot)
        return
    import dask
    import zarr

    print(f"machine: {os.cpu_count()} CPUs, load average {load()} (1/5/15 min); numpy {np.__version__}, "
          f"dask {dask.__version__}, zarr {zarr.__version__}")
    root = Path(tempfile.mkdtemp(prefix="neurorecord-ooc-", dir="/tmp"))
    try:
        ok = True
        if args.layout in ("both", "out-of-core"):
            ok = out_of_core(args, root)
        if args.layout in ("both", "chunks"):
            layouts(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
