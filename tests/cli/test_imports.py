"""A command imports only the libraries it needs: ``--help`` and ``schema`` no torch, xarray, zarr,
dask or scipy; no command scikit-learn (the digits ship with the package); a run without
analyses (and without its HTML report, which draws with matplotlib) no statsmodels or matplotlib; the default protocol's run no distributed. Checked in a fresh interpreter through ``sys.modules`` (timings on a
shared machine are not a robust test; ``benchmarks/record_overhead.py`` prints them)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import DIGITS_MLP

HEAVY = {"torch", "xarray", "zarr", "dask", "scipy", "statsmodels", "sklearn", "pandas", "matplotlib", "distributed"}

SCRIPT = """import sys
from neurorecord.cli.main import main
try:
    status = main({argv!r})
except SystemExit as exc:  # --help and --version exit through argparse
    status = exc.code
print(f"STATUS {{status}} IMPORTED [" + ",".join(sorted({{m.split(".")[0] for m in sys.modules}} & {heavy!r})) + "]")
"""


def _imported(argv: list[str], cwd) -> set[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(argv=argv, heavy=HEAVY)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    found = re.search(r"STATUS (\S+) IMPORTED \[(.*)\]", done.stdout)
    assert found is not None and found[1] == "0", done.stdout + done.stderr
    return set(filter(None, found[2].split(",")))


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["schema"], ["run", "--help"]])
def test_help_and_schema_import_no_heavy_library(argv, tmp_path):
    assert _imported(argv, tmp_path) == set()


def test_package_root_imports_nothing_heavy(tmp_path):
    code = "import sys, neurorecord; print(sorted({m.split('.')[0] for m in sys.modules} & %r))" % (HEAVY | {"numpy", "pydantic"})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.strip() == "[]"


def test_validate_and_run_import_no_scikit_learn_or_statsmodels(write_protocol, tmp_path):
    path = write_protocol(DIGITS_MLP)
    validated = _imported(["validate", str(path)], tmp_path)
    assert "torch" in validated  # the subject is built and probed: validate checks it, not only the file
    assert not validated & {"sklearn", "statsmodels", "matplotlib"}
    # the report (drawn with matplotlib) is a stage of its own; without it a run imports none of them
    recorded = _imported(["run", str(path), "--out", str(tmp_path / "rec"), "--quiet", "--no-report"], tmp_path)
    assert not recorded & {"sklearn", "statsmodels", "matplotlib"}
    assert (tmp_path / "rec" / "zarr.json").is_file()


def test_the_default_protocol_runs_without_distributed(tmp_path):
    """Its regions fit in memory: the analyses read each one whole, in the run's own process,
    without dask's schedulers; distributed (0.3 s to import, which dask does to look for a
    client unless given its scheduler) is not imported. (dask itself is: xarray imports
    dask.array to recognise its arrays whenever it is installed.)"""
    from neurorecord import default_protocol_path

    recorded = _imported(["run", str(default_protocol_path()), "--out", str(tmp_path / "rec"), "--quiet", "--no-report"],
                         tmp_path)
    assert "xarray" in recorded and "distributed" not in recorded
    assert (tmp_path / "rec" / "analyses" / "fc3" / "likes-3" / "zarr.json").is_file()
