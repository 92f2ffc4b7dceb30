"""RDMs at scale: ``neurorecord.compare.rdm`` against rsatoolbox's ``calc_rdm`` on the same data.

Measured in one run, on the same seeded data: 1,000 conditions x 10,000 units (float64, standard
normal plus a per-condition offset), one presentation per condition (the condition means), as a
DataArray with ``stimulus_id`` for us and as an ``rsatoolbox.data.Dataset`` for rsatoolbox (both
built beforehand, not timed). Compared, per method (``correlation``, ``euclidean``):

* **ours**: ``rdm(activity, method=...)``, everything included (checks, grouping by
  ``stimulus_id``, condition means, one matrix product of the means, labelling).
* **rsatoolbox, best settings**: ``calc_rdm(dataset, method=...)`` with ``descriptor=None``: the
  rows already are the conditions, so rsatoolbox skips its per-condition averaging loop; this is
  its fastest call for this data.
* **floor**: one bare float64 product ``values @ values.T`` of the condition means (numpy,
  BLAS ``gemm``), timed in the same rounds: what any exact RDM of these data costs at least, and
  about what rsatoolbox's Euclidean RDM costs (its Euclidean RDM is that product and a few
  vector operations; its correlation RDM uses an ``einsum`` that does not call BLAS).
* **rsatoolbox, descriptor**: ``calc_rdm(dataset, method=..., descriptor="stimulus_id")``, the
  call a recording with repeated presentations needs (its averaging loop and pattern sort
  included); reported for information, the ratio is taken against the best settings.

Each timing is the median of ``--rounds`` interleaved rounds (ours, then rsatoolbox, per round).
The agreement is the largest absolute difference between the upper triangles (target <= 1e-10);
the speed target is ours >= 20x faster than rsatoolbox's best settings. The load average is
printed at the start, after each round and at the end (the machine may be shared). Figures from
runs: ``benchmarks/README.md``.

Run from the repository root::

    python benchmarks/rdm.py                     # 1,000 x 10,000 (about a minute)
    python benchmarks/rdm.py --quick             # 200 x 2,000, seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import xarray as xr

from neurorecord.compare import rdm, upper_triangle

TARGET = 20.0


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def timed(call):
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conditions", type=int, default=1000)
    parser.add_argument("--units", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 conditions x 2,000 units")
    args = parser.parse_args()
    if args.quick:
        args.conditions, args.units = 200, 2000

    import rsatoolbox
    from rsatoolbox.rdm import calc_rdm

    rng = np.random.default_rng(0)
    values = rng.normal(size=(args.conditions, args.units)) + rng.normal(size=(args.conditions, 1))
    ids = np.array([f"s{i:05d}" for i in range(args.conditions)])
    activity = xr.DataArray(values, dims=("presentation", "neuroid"), coords={"stimulus_id": ("presentation", ids)})
    dataset = rsatoolbox.data.Dataset(values, obs_descriptors={"stimulus_id": ids})

    print(f"rdm: {args.conditions:,} conditions x {args.units:,} units, float64 (seed 0); "
          f"numpy {np.__version__}, rsatoolbox {rsatoolbox_version()}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load()} (1/5/15 min)")
    met = 0
    rows = []
    for method in ("correlation", "euclidean"):
        ours, theirs, floor, loads = [], [], [], []
        for _ in range(args.rounds):
            floor.append(timed(lambda: values @ values.T)[0])
            t, mine = timed(lambda: rdm(activity, method=method))
            ours.append(t)
            t, reference = timed(lambda: calc_rdm(dataset, method=method))
            theirs.append(t)
            loads.append(load())
        t_desc, with_desc = timed(lambda: calc_rdm(dataset, method=method, descriptor="stimulus_id"))
        ours_v = upper_triangle(mine.values)
        diff = float(np.abs(ours_v - reference.get_vectors()[0]).max())
        diff_desc = float(np.abs(ours_v - with_desc.get_vectors()[0]).max())
        ratio = statistics.median(theirs) / statistics.median(ours)
        ok = ratio >= TARGET and diff <= 1e-10
        met += ok
        rows.append((method, statistics.median(ours), statistics.median(theirs), t_desc, statistics.median(floor), ratio,
                     diff, diff_desc, ok))
        print(f"  {method}: load averages after each round {', '.join(loads)}")
    print()
    print(f"{'method':<12} {'ours s':>8} {'rsa best s':>11} {'rsa desc s':>11} {'floor s':>8} {'x best':>7} {'target':>7} "
          f"{'max |diff|':>11} {'(desc)':>9}")
    for method, mine, best, desc, bare, ratio, diff, diff_desc, ok in rows:
        print(f"{method:<12} {mine:>8.3f} {best:>11.3f} {desc:>11.3f} {bare:>8.3f} {ratio:>7.1f} {'>= 20':>7} {diff:>11.1e} "
              f"{diff_desc:>9.1e}  {'PASS' if ok else 'MISS'}")
    print(f"\nmedian of {args.rounds} interleaved rounds; rsa desc: one call with descriptor='stimulus_id'; "
          f"floor: values @ values.T alone")
    print(f"load average now {load()}; {met} of {len(rows)} targets met (speed >= {TARGET:g}x and |diff| <= 1e-10)")


def rsatoolbox_version() -> str:
    from importlib.metadata import version

    return version("rsatoolbox")


if __name__ == "__main__":
    main()
