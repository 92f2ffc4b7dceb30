"""Record the default protocol, open the recording with xarray, and tabulate responses.

Usage::

    python examples/read_recording.py [OUT]

``OUT`` is the folder of the recording (default: a new temporary folder). The embedded default
protocol (``protocols/digits.yaml``: the zoo's digits MLP shown the 454 held-out digits, regions
``fc1``, ``fc2``, ``fc3``) is recorded there, then the script prints

1. the mean activity of each region for each digit label (averaged over presentations of that
   digit and over the region's units), and
2. for each digit, the ``fc3`` unit with the highest mean response to it.

Running it again on the same ``OUT`` reuses the finished recording (``resume=True`` makes a
complete store a no-op and finishes an interrupted one). The first run ever trains the zoo
subject (a few seconds) and caches it in ``$NEURORECORD_CACHE`` or the user cache folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import xarray as xr

import neurorecord


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="neurorecord-")) / "digits"
    neurorecord.run(neurorecord.default_protocol_path(), out, resume=True, quiet=True)
    tree = neurorecord.open_recording(out)  # activity is lazy: nothing is read until .compute()
    regions = tree.attrs["regions"]  # the recorded regions, in protocol order (the tree also has "analyses")
    print(f"recording {out}: {tree.attrs['presentations']} presentations, regions {', '.join(regions)}")

    # 1. mean activity per region and digit label: average over units, then over presentations
    per_region = []
    for region in regions:
        per_region.append(tree[region]["activity"].mean("neuroid").groupby("label").mean().rename(region))
    table = xr.merge(per_region).compute().to_dataframe()
    print("\nmean activity per digit label (a.u., mean over presentations and units)")
    print(table.round(3).to_string())

    # 2. for each digit, the fc3 unit with the highest mean response to it
    fc3 = tree["fc3"]["activity"]
    tuning = fc3.groupby("label").mean().compute()  # (label, neuroid): each unit's tuning curve
    best = tuning.argmax("neuroid")  # position along neuroid, per label
    print("\nfc3 unit with the highest mean response to each digit")
    print(f"{'label':>5}  {'neuroid_id':<10}  {'mean response':>13}")
    for label in tuning["label"].values:
        unit = tuning.sel(label=label).isel(neuroid=int(best.sel(label=label)))
        print(f"{label:>5}  {str(unit['neuroid_id'].values):<10}  {float(unit):>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
