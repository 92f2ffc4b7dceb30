"""``examples/v1_tuning.py`` runs end to end, and the fractions it prints are right.

The script is run as a user runs it (a subprocess, the data file's path as argument). Its V1
counts are compared with a direct computation over all 27 sessions (scipy.io.loadmat, scipy,
statsmodels, and the Rayleigh-type test as the obvious loop: the tuning curve's resultant against
1000 shuffles of the trial labels drawn with seed 0; see ``tests/analysis/test_v1_pipeline.py``),
both with the script's per-session FDR families and with the pooled one. The tests that run the
script are skipped when the data file is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from statsmodels.stats.multitest import multipletests

from tests.analysis.test_v1_pipeline import ECKER, N_DIRECTIONS, direct_results, raw_session_counts

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "v1_tuning.py"
LABELS = {
    "responsive": "responsive",
    "direction_tuned": "direction-tuned",
    "direction_rayleigh": r"direction-tuned \(Rayleigh only\)",
    "orientation_tuned": "orientation-tuned",
    "orientation_rayleigh": r"orientation-tuned \(Rayleigh only\)",
    "either": r"either \(direction or orientation\)",
}
RULES = {
    "responsive": "anova(by=direction) q < 0.05 (fdr_bh)",
    "direction_tuned": "rayleigh(by=direction, period=360) q < 0.05 and dsi_vector > 0.1 (fdr_bh)",
    "orientation_tuned": "rayleigh(by=direction, period=180) q < 0.05 and osi_vector > 0.1 (fdr_bh)",
}


def summary(text: str, who: str, name: str) -> tuple[int, int, str]:
    """(members, units, rule) of one summary line, e.g. ``V1 responsive: 501/577 units (86.8%)  [...]``."""
    match = re.search(rf"^{who} {LABELS[name]}: (\d+)/(\d+) units \((\d+\.\d)%\)  \[(.*)\]$", text, re.M)
    assert match, f"no '{who} {name}' line in:\n{text}"
    n, total = int(match[1]), int(match[2])
    assert match[3] == f"{100.0 * n / total:.1f}"
    return n, total, match[4]


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> str:
    if not ECKER.is_file():
        pytest.skip(f"Ecker 2010 data file not found at {ECKER}")
    result = subprocess.run([sys.executable, str(SCRIPT), str(ECKER)], capture_output=True, text=True, timeout=300,
                            env=os.environ.copy(), cwd=tmp_path_factory.mktemp("v1-tuning"))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def direct() -> list[dict[str, np.ndarray]]:
    if not ECKER.is_file():
        pytest.skip(f"Ecker 2010 data file not found at {ECKER}")
    raw = scipy.io.loadmat(ECKER, squeeze_me=True, struct_as_record=False)["data"]
    return [direct_results(raw_session_counts(s)[0], np.arange(N_DIRECTIONS) * 22.5) for s in raw]


@pytest.mark.slow
def test_v1_fractions_equal_direct_computation(output: str, direct) -> None:
    rows = re.findall(r"^session(\d\d)\s+([HD])\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", output, re.M)
    assert [int(r[0]) for r in rows] == list(range(27))
    for row, d in zip(rows, direct):
        units, silent, resp, dir_, ori, either = (int(v) for v in (row[2],) + row[4:])
        assert units == len(d["F"]) and silent == int(np.isnan(d["p_anova"]).sum())
        assert (resp, dir_, ori, either) == tuple(int(d[k].sum()) for k in
                                                  ("responsive", "direction_tuned", "orientation_tuned", "either"))
    for name in LABELS:
        n, total, rule = summary(output, "V1", name)
        assert total == 577
        assert n == sum(int(d[name].sum()) for d in direct), name
        if name in RULES:
            assert rule == RULES[name] + ", FDR per session"
    # the pooled family: BH over every unit with a p value, all sessions together
    def q_all(var: str) -> np.ndarray:
        p = np.concatenate([d[var] for d in direct])
        q = np.full(p.shape, np.nan)
        ok = ~np.isnan(p)
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
        return q

    with np.errstate(invalid="ignore"):
        direction = (q_all("p_dir") < 0.05) & (np.concatenate([d["dsi_vector"] for d in direct]) > 0.1)
        orientation = (q_all("p_ori") < 0.05) & (np.concatenate([d["osi_vector"] for d in direct]) > 0.1)
        responsive = q_all("p_anova") < 0.05
    tested = int((~np.isnan(np.concatenate([d["p_anova"] for d in direct]))).sum())
    pooled = re.search(rf"^V1 pooled FDR \(BH over the {tested} units .*: responsive (\d+)/577, direction-tuned (\d+)/577, "
                       r".*orientation-tuned (\d+)/577, .*either \(direction or orientation\) (\d+)/577$", output, re.M)
    assert pooled, output
    assert [int(v) for v in pooled.groups()] == [int(responsive.sum()), int(direction.sum()), int(orientation.sum()),
                                                 int((direction | orientation).sum())]
    fits = re.search(r"^V1 von Mises .*: (\d+)/(\d+) converged, median r2 (\d\.\d+)", output, re.M)
    assert fits and int(fits[2]) == summary(output, "V1", "responsive")[0] and int(fits[1]) >= 0.95 * int(fits[2])


@pytest.mark.slow
def test_model_fractions(output: str) -> None:
    regions = re.findall(r"^(conv1|conv2|fc1)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)", output, re.M)
    assert [r[0] for r in regions] == ["conv1", "conv2", "fc1"]
    assert [int(r[1]) for r in regions] == [16, 32, 64]
    assert all(float(r[7]) < 1e-6 for r in regions)  # max DSI: opposite directions show the same images
    assert summary(output, "model", "direction_tuned")[:2] == (0, 112)
    assert summary(output, "model", "direction_rayleigh")[:2] == (0, 112)
    n_ori, total, rule = summary(output, "model", "orientation_tuned")
    assert total == 112 and n_ori == sum(int(r[5]) for r in regions) > 0
    assert rule == RULES["orientation_tuned"]
    assert summary(output, "model", "either")[0] == n_ori
    # the same test by permutation_test(osi_vector) with the same shuffles: same p, same members
    check = re.search(r"^model orientation-tuned, by permutation_test: (\d+)/112 units \(\d+\.\d%\), "
                      r"p equal to rayleigh\(period=180\)'s in (\d+)/112 units  "
                      r"\[permutation_test\(osi_vector, 1000 direction shuffles, seed 0\) q < 0\.05 and "
                      r"osi_vector > 0\.1 \(fdr_bh\)\]$", output, re.M)
    assert check, output
    assert (int(check[1]), int(check[2])) == (n_ori, 112)
    assert re.search(r"^done in \d+\.\d s$", output, re.M)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.mat"
    result = subprocess.run([sys.executable, str(SCRIPT), str(missing)], capture_output=True, text=True, timeout=120,
                            env=os.environ.copy(), cwd=tmp_path)
    assert result.returncode == 2
    assert str(missing) in result.stderr and "NEURORECORD_ECKER2010" in result.stderr
