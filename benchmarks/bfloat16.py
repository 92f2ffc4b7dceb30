"""What ``record.dtype: bfloat16`` does to recorded values and to the analyses built on them.

Runs each protocol twice with ``neurorecord.run`` (``record.dtype: float32``, then ``bfloat16``;
each into a fresh store on /tmp) and prints, per region: the largest difference relative to the
region's activity range, the median relative difference of the non-zero values, the Pearson r
over all values, the fraction of presentations whose predicted class is the same, and how the
analyses agree (membership of the ``responsive`` / ``likes-3`` populations: Jaccard index; the
class selectivity index: Spearman rho). The times of both runs are printed too (on a CPU without
bfloat16 units autocast is slower, not faster: the point of bfloat16 is a GPU's tensor cores).

Run from the repository root::

    python benchmarks/bfloat16.py                                   # the default protocol (digits MLP)
    python benchmarks/bfloat16.py protocols/gabor-rf-mapping.yaml   # a CNN (digits32-cnn)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# this script's own folder comes first on sys.path: keep it from shadowing packages
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("protocols", nargs="*", default=[str(REPO / "protocols" / "digits.yaml")])
    args = parser.parse_args()

    import scipy.stats
    import yaml

    import neurorecord
    from neurorecord.protocol import protocol_from_text

    root = Path(tempfile.mkdtemp(prefix="neurorecord-bf16-", dir="/tmp"))
    print(f"machine: {os.cpu_count()} CPUs, load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    for path in args.protocols:
        text = Path(path).read_text()
        trees, seconds = {}, {}
        for dtype in ("float32", "bfloat16"):
            doc = yaml.safe_load(text)
            doc["record"]["dtype"] = dtype
            protocol = protocol_from_text(yaml.safe_dump(doc, sort_keys=False), path=Path(path))
            start = time.perf_counter()
            trees[dtype] = neurorecord.run(protocol, root / f"{Path(path).stem}-{dtype}", quiet=True)
            seconds[dtype] = time.perf_counter() - start
        a, b = trees["float32"], trees["bfloat16"]
        print(f"\n{Path(path).name}: run float32 {seconds['float32']:.1f} s, bfloat16 {seconds['bfloat16']:.1f} s")
        print(f"  {'region':8s} {'max |d| / range':>16s} {'median rel |d|':>15s} {'r':>9s}")
        for region in a.attrs["regions"]:
            x, y = a[region]["activity"].values.astype(np.float64), b[region]["activity"].values.astype(np.float64)
            span = np.ptp(x) or 1.0
            nonzero = x != 0
            rel = np.median(np.abs(y[nonzero] - x[nonzero]) / np.abs(x[nonzero])) if nonzero.any() else 0.0
            r = np.corrcoef(x.ravel(), y.ravel())[0, 1]
            print(f"  {region:8s} {np.abs(y - x).max() / span:16.2e} {rel:15.2e} {r:9.6f}")
        if "behaviour" in a:
            same = float((a["behaviour"]["predicted"].values == b["behaviour"]["predicted"].values).mean())
            print(f"  predicted class the same on {same:.1%} of presentations")
        analyses = a["analyses"] if "analyses" in a else None
        for region in a.attrs["regions"]:
            if analyses is None or region not in analyses:
                continue
            for name, node in analyses[region].children.items():
                other = b["analyses"][region][name]
                if "member" in node:
                    m, n = node["member"].values.astype(bool), other["member"].values.astype(bool)
                    union = (m | n).sum()
                    print(f"  {region}/{name}: {m.sum()} vs {n.sum()} members, Jaccard {((m & n).sum() / union if union else 1.0):.3f}")
                elif "csi" in node:
                    rho = scipy.stats.spearmanr(node["csi"].values, other["csi"].values, nan_policy="omit").statistic
                    print(f"  {region}/{name}: CSI Spearman rho {rho:.4f}")


if __name__ == "__main__":
    main()
