"""The same protocol in one process and on a local ``dask.distributed`` cluster of 2 worker processes.

Runs ``protocols/lesion-study.yaml`` (record fc2 and fc3 of the digits MLP on 454 digits, one
population analysis, 251 lesions in three sweeps, one with downstream activity) with
``neurorecord.run``: in this process (the baseline; torch uses its default threads), and with a
``Client`` of a ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` in scope (the
recording's batches, the lesion blocks and the analyses' kernels on the workers; statistics and
store writes of results in the client). The cluster is started once, before the rounds, as an existing cluster
would be; its start-up time is printed apart. Rounds are interleaved (one, cluster, one,
cluster, ...), each into a fresh store on /tmp; the medians and their ratio are printed (target:
cluster / one process <= 1.25 on the same cores), with the per-worker work split of the last
cluster round (task stream: compute seconds and tasks per worker, by kind of task) and the load
average. Both stores are checked to hold the same lesion predictions.

Run from the repository root::

    python benchmarks/cluster_overhead.py              # 3 rounds (a few minutes on 2 shared cores)
    python benchmarks/cluster_overhead.py --rounds 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "lesion-study.yaml"
# this script's own folder comes first on sys.path: keep it from shadowing packages
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--protocol", default=str(PROTOCOL))
    args = parser.parse_args()

    import torch
    import xarray as xr
    from distributed import Client, LocalCluster, get_task_stream

    import neurorecord

    print(f"machine: {os.cpu_count()} CPUs, load average {load()}; torch {torch.__version__} ({torch.get_num_threads()} threads)")
    root = Path(tempfile.mkdtemp(prefix="neurorecord-dist-", dir="/tmp"))
    neurorecord.run(args.protocol, root / "warm", quiet=True)  # zoo subject trained and cached, imports done
    start = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    print(f"cluster: 2 worker processes x 1 thread, started in {time.perf_counter() - start:.1f} s (not in the times below)")
    times: dict[str, list[float]] = {"one process": [], "cluster": []}
    stream = None
    try:
        for r in range(args.rounds):
            for name in times:
                out = root / f"{name.replace(' ', '-')}-{r}"
                if name == "cluster":
                    with client.as_current(), get_task_stream(client) as ts:
                        t0 = time.perf_counter()
                        neurorecord.run(args.protocol, out, quiet=True)
                        times[name].append(time.perf_counter() - t0)
                    stream = ts.data
                else:
                    t0 = time.perf_counter()
                    neurorecord.run(args.protocol, out, quiet=True)
                    times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1}: one process {times['one process'][-1]:.1f} s, cluster {times['cluster'][-1]:.1f} s; load {load()}")
        one, on_cluster = statistics.median(times["one process"]), statistics.median(times["cluster"])
        ratio = on_cluster / one
        print(f"\nmedians: one process {one:.1f} s, cluster {on_cluster:.1f} s; cluster / one process = {ratio:.2f}x "
              f"(target <= 1.25x: {'PASS' if ratio <= 1.25 else 'MISS'})")
        split: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for task in stream or []:
            key = str(task["key"][0] if isinstance(task["key"], tuple) else task["key"])
            kind = ("lesion blocks" if key.startswith("lesion-blocks") else "recording batches" if key.startswith("record-batches")
                    else "analysis kernels" if "unit-kernel" in key else "other")
            seconds = sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
            split[task["worker"]][kind].append(seconds)
        print("work split of the last cluster round (compute seconds, tasks):")
        for worker, kinds in sorted(split.items()):
            print(f"  {worker}: " + ", ".join(f"{k} {sum(v):.1f} s ({len(v)})" for k, v in sorted(kinds.items())))
        a = xr.open_datatree(root / f"one-process-{args.rounds - 1}", engine="zarr")
        b = xr.open_datatree(root / f"cluster-{args.rounds - 1}", engine="zarr")
        for node in a["lesions"].children:
            same = np.array_equal(a[f"lesions/{node}"]["delta_accuracy"].values, b[f"lesions/{node}"]["delta_accuracy"].values)
            print(f"  lesions/{node}: delta_accuracy {'identical' if same else 'DIFFERS'} in both stores")
        print(f"load average at the end {load()}")
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
