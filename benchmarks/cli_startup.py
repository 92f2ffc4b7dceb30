"""The command line's own time: ``neurorecord --help``, ``validate`` and ``run`` of the default
protocol, against what any such command must pay on this machine.

Each command runs in a fresh process (interpreter start and imports included, as a user pays
them), in ``--rounds`` interleaved rounds; medians are printed with the load average. The floors,
measured in the same rounds:

* ``python -c pass``: the interpreter;
* ``python -c "import torch"``: what building and probing a PyTorch subject needs at least
  (``validate``'s floor);
* ``python -c "import torch, xarray, zarr, dask.array, scipy.special"``: the libraries the
  default protocol's run needs (recording into zarr, analyses through xarray and dask, p values
  through scipy's special functions): ``run``'s import floor.

Targets (issue 16): ``--help`` and ``validate`` under 1.5 s, ``run --no-report`` (zoo subject
cached) under 3 s.

Run from the repository root::

    python benchmarks/cli_startup.py              # 5 rounds, about a minute
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interleaved import time_interleaved  # noqa: E402  benchmarks/ holds it

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    protocol = str(REPO / "neurorecord" / "protocols" / "digits.yaml")
    out = Path(tempfile.mkdtemp(prefix="neurorecord-cli-", dir="/tmp")) / "run"
    cli = [sys.executable, "-m", "neurorecord.cli.main"]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import torch": [sys.executable, "-c", "import torch"],
        "import torch, xarray, zarr, dask.array, scipy.special": [
            sys.executable, "-c", "import torch, xarray, zarr, dask.array, scipy.special"],
        "neurorecord --help": [*cli, "--help"],
        "neurorecord validate (default protocol)": [*cli, "validate", protocol],
        "neurorecord run --no-report (default protocol)": [*cli, "run", protocol, "--out", str(out), "--overwrite",
                                                           "--quiet", "--no-report"],
    }
    subprocess.run(cases["neurorecord run --no-report (default protocol)"], check=True, capture_output=True)  # zoo cached
    print(f"machine: {os.cpu_count()} CPUs, load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{args.rounds} interleaved rounds, each command in a fresh process")
    times = time_interleaved({name: partial(subprocess.run, command, check=True, capture_output=True)
                              for name, command in cases.items()}, args.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    targets = {"neurorecord --help": 1.5, "neurorecord validate (default protocol)": 1.5,
               "neurorecord run --no-report (default protocol)": 3.0}
    floors = {"neurorecord validate (default protocol)": "import torch",
              "neurorecord run --no-report (default protocol)": "import torch, xarray, zarr, dask.array, scipy.special",
              "neurorecord --help": "python -c pass"}
    print(f"\n{'command':<56} {'median s':>8} {'range s':>13}  {'above floor':>11}  target")
    for name, values in times.items():
        line = f"{name:<56} {med[name]:8.2f} {min(values):6.2f}-{max(values):<6.2f}"
        if name in targets:
            line += f"  {med[name] - med[floors[name]]:+10.2f}s  < {targets[name]} s {'PASS' if med[name] < targets[name] else 'MISS'}"
        print(line)
    print(f"load average at the end {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
