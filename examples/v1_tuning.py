"""Direction and orientation tuning of macaque V1 and of a CNN, through one pipeline.

Usage::

    python examples/v1_tuning.py [PATH_TO/data_v1_binned_moving.mat]

The path defaults to ``$NEURORECORD_ECKER2010``, else ``../shared/data/v1-ecker2010/
data_v1_binned_moving.mat`` beside the repository. The file (Ecker et al. 2010, CC BY-NC-ND 3.0)
is read where it lies, never copied.

What it does
------------
1. **V1.** Reads the 27 sessions (577 single units, drifting gratings in 16 directions) with
   :func:`~neurorecord.interop.read_ecker2010`, takes each trial's spike count 50-550 ms after
   onset (:func:`~neurorecord.interop.response_window`) and runs :func:`tuning_pipeline` on every
   session.
2. **Model.** Writes 16 x 4 static sinusoidal gratings (16 directions, 4 phases) to ``.npy``,
   records the zoo's ``digits-cnn`` (regions ``conv1``, ``conv2``, ``fc1``, spatial mean; the
   regions are ``tree.attrs["regions"]``, the tree also holds the subject's ``behaviour``) with a
   protocol (stimulus kind ``npy``) in a temporary folder, gives the presentations a
   ``direction`` coordinate (label x 22.5 deg) and runs the *same* :func:`tuning_pipeline`.

The rules (every one a :func:`~neurorecord.analysis.define_population`, so the rule, test,
thresholds and FDR family are recorded with the members):

- ``responsive``: one-way ANOVA of the response across the 16 directions, q < 0.05;
- ``direction_tuned``: Rayleigh-type test with period 360 deg, q < 0.05, and DSI (vector form,
  1 - circular variance) > 0.1. The test's statistic ``R`` is the resultant length of the
  unit's tuning curve (its mean count in each of the 16 directions, each direction counted
  once, however many trials it had), i.e. the vector DSI itself; its p comes from
  :data:`RAYLEIGH_PERMUTATIONS` shuffles of the trial labels that keep the number of trials per
  direction (seed :data:`RAYLEIGH_SEED`), so it is valid for the sessions' unequal trial counts
  and does not depend on the scale of the responses;
- ``orientation_tuned``: the same test with period 180 deg on the *same direction angles* --
  every angle is doubled, so the directions theta and theta + 180 land on one point and the test
  asks whether the tuning curve concentrates on one orientation (``R`` is then the vector OSI)
  -- q < 0.05, and OSI (vector form, doubled angles) > 0.1. A direction-selective unit with one
  narrow peak also has a strong second harmonic, so it passes this rule too: "orientation-tuned"
  here means "tuned to an orientation, with or without a preference for one of its two
  directions";
- ``either``: direction_tuned or orientation_tuned.

The index threshold 0.1 is a threshold on the size of the tuning, beside the test of its
reality: the test asks whether the tuning curve's resultant is larger than trial-to-trial noise
would make it, the threshold whether it is large enough to matter. For a tuning curve
``m + a cos(theta - pref)`` the vector index (= ``R``) is ``a / (2 m)``, so index > 0.1 means a
peak at least 1.5 times the trough (a ratio index (r_pref - r_null) / (r_pref + r_null) above
0.2). Without it, a session with many trials makes a small modulation significant: in the
sessions of 700-1300 trials, tuning curves with ``R`` = 0.02 (a cosine modulation of 4 % of
the mean) reach q < 0.05. Both counts (with and without the index) are printed.

Choices, stated
---------------
- **D-monkey directions.** Sessions 14-26 store directions as whole degrees (0, 22, 45, 67, ...,
  158, ..., 314, 336) instead of multiples of 22.5. Folded modulo 180, 314 (-> 134) does not meet
  135 and 336 (-> 156) does not meet 158, so the OSI/DSI ratio forms (which pair each angle with
  the orthogonal / opposite one) refuse these sessions, and Rayleigh with period 180 puts the two
  directions of one orientation 2-3 deg apart. The grating design is 16 directions 22.5 deg apart,
  so :func:`nominal_directions` snaps each stored direction to the nearest multiple of 22.5
  (the largest correction is 1.5 deg), checks that this equals ``condition x 22.5`` (the
  ``condition`` coordinate is the same direction order in every session), and keeps the stored
  value as ``direction_stored``.
- **FDR family.** Sessions saw different numbers of trials, so their activity cannot be one
  array; the pipeline runs per session and ``define_population`` corrects over the units of
  that session (BH). As a check the script also applies BH itself (statsmodels) over all units of
  the recording pooled; the two counts are printed.
- **Von Mises fits** (two peaks, period 360) for the responsive units; converged fraction,
  median r2 and median half-width are printed.

The model's gratings are static: the grating at theta + 180 with phase phi is the grating at
theta with phase -phi, and the 4 phases (0, 90, 180, 270 deg) are closed under negation, so each
direction and its opposite show the *same four images*. A model can therefore be orientation
tuned but not direction tuned at all (DSI = 0 up to float rounding, so ``R`` = 0 and p = 1
with period 360). The Rayleigh p comes from label shuffles, so it does not depend on the scale
of the activations (a.u., not counts): the model goes through the same rules, thresholds
included, as V1. With period 180 the test *is* the permutation test of the vector OSI, and the
script shows it: :func:`~neurorecord.analysis.permutation_test` of ``osi_vector`` with the same
shuffles gives the same p for every unit and the same members. The model's "trials" of one
direction are its four phases, so both tests ask whether direction matters more than phase: the
ANOVA for any difference among the 16 means, the Rayleigh test for one orientation peak, which
is the more sensitive question, so phase-sensitive units (``fc1``) come out tuned to orientation
but not "responsive".

Runs in about a minute on two CPU cores, most of it the von Mises fits (the first run ever also
trains the zoo CNN).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

import neurorecord
from neurorecord import analysis
from neurorecord.analysis import INDEX_FUNCTIONS, Population
from neurorecord.interop.ecker2010 import ENV_VAR, read_ecker2010, response_window

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "v1-ecker2010" / "data_v1_binned_moving.mat"

Q_BELOW = 0.05  #: FDR threshold of every rule
INDEX_ABOVE = 0.1  #: DSI / OSI (vector form) threshold, see the module notes
STEP = 22.5  #: spacing of the 16 drift directions, degrees
MAX_SNAP = 1.5  #: largest correction nominal_directions accepts, degrees
WINDOW_MS = (50.0, 550.0)  #: response window after stimulus onset
RAYLEIGH_PERMUTATIONS = 1000  #: trial-label shuffles of the Rayleigh test's null (rayleigh's default)
RAYLEIGH_SEED = 0  #: seed of those shuffles (rayleigh's default), so every run gives the same p

#: The populations the pipeline defines, in print order, with their labels.
RULES = ("responsive", "direction_tuned", "direction_rayleigh", "orientation_tuned", "orientation_rayleigh", "either")
LABELS = {
    "responsive": "responsive",
    "direction_tuned": "direction-tuned",
    "direction_rayleigh": "direction-tuned (Rayleigh only)",
    "orientation_tuned": "orientation-tuned",
    "orientation_rayleigh": "orientation-tuned (Rayleigh only)",
    "either": "either (direction or orientation)",
}


@dataclass
class PipelineResult:
    """What :func:`tuning_pipeline` returns for one recording (a session or a region).

    ``table`` is indexed by ``neuroid`` (every neuroid coordinate kept): ANOVA ``F``/``p_anova``/
    ``q_anova``, Rayleigh ``R``/``Z``/``p``/``q``/``preferred`` for periods 360 (``*_dir``) and
    180 (``*_ori``; ``R_dir`` equals ``dsi_vector`` and ``R_ori`` ``osi_vector``), ``n`` (the
    summed response, descriptive: ``Z = n R**2``), ``dsi_vector``/``dsi_ratio``/``osi_vector``/
    ``osi_ratio``, the von Mises fit (``vm_*``, NaN for units not fitted) and one bool per
    population. ``populations`` maps
    each name of :data:`RULES` to its :class:`~neurorecord.analysis.Population`.
    """

    table: xr.Dataset
    populations: dict[str, Population] = field(default_factory=dict)

    def count(self, name: str) -> int:
        return len(self.populations[name])


def tuning_pipeline(activity: xr.DataArray, by: str = "direction", q_below: float = Q_BELOW,
                    index_above: float = INDEX_ABOVE, fit: bool = True) -> PipelineResult:
    """ANOVA, Rayleigh (360 and 180), OSI/DSI, populations and von Mises fits of every unit.

    Parameters
    ----------
    activity : xarray.DataArray (presentation x neuroid)
        Non-negative responses (spike counts, rectified activations), with a presentation
        coordinate ``by`` holding drift directions in degrees (all 16, 22.5 deg apart, so that
        every direction has its opposite and orthogonal ones).
    by : str
        The direction coordinate.
    q_below, index_above : float
        Thresholds of the rules (see the module notes).
    fit : bool
        Fit a two-peaked von Mises curve (period 360) to the responsive units.

    Every Rayleigh test (in the populations and in the table) uses the same shuffles
    (:data:`RAYLEIGH_PERMUTATIONS`, seed :data:`RAYLEIGH_SEED`), so their p values agree.
    """
    null = {"n_permutations": RAYLEIGH_PERMUTATIONS, "seed": RAYLEIGH_SEED}
    pops: dict[str, Population] = {
        "responsive": analysis.define_population("responsive", activity, test="anova", by=by, q_below=q_below),
        "direction_rayleigh": analysis.define_population("direction_rayleigh", activity, test="rayleigh", by=by,
                                                         period=360, q_below=q_below, **null),
        "direction_tuned": analysis.define_population("direction_tuned", activity, test="rayleigh", by=by, period=360,
                                                      q_below=q_below, index="dsi_vector", index_above=index_above,
                                                      **null),
        "orientation_rayleigh": analysis.define_population("orientation_rayleigh", activity, test="rayleigh", by=by,
                                                           period=180, q_below=q_below, **null),
        "orientation_tuned": analysis.define_population("orientation_tuned", activity, test="rayleigh", by=by,
                                                        period=180, q_below=q_below, index="osi_vector",
                                                        index_above=index_above, **null),
    }
    either = pops["direction_tuned"].table["member"] | pops["orientation_tuned"].table["member"]
    pops["either"] = Population("either", xr.Dataset(
        {"member": either},
        attrs={"population": "either", "rule": f"({pops['direction_tuned'].rule}) or "
                                               f"({pops['orientation_tuned'].rule})",
               "n_members": int(either.sum()), "n_candidates": int(either.size)}))
    pops = {name: pops[name] for name in RULES}

    act = activity.transpose("presentation", "neuroid")
    table = xr.Dataset(coords={k: v for k, v in act.coords.items() if v.dims == ("neuroid",)})
    anova = pops["responsive"].table
    table["F"], table["p_anova"], table["q_anova"] = anova["statistic"], anova["p"], anova["q"]
    for period, tag in ((360, "dir"), (180, "ori")):
        ray = analysis.rayleigh(activity, by, period=period, **null)
        for var in ("R", "Z", "p", "q", "preferred"):
            table[f"{var}_{tag}"] = ray[var]
    # the summed response over all presentations (spikes, for V1): only the scale of the
    # descriptive Z = n R**2; the p values, from label shuffles, do not use it
    table["n"] = ray["n"]
    for kind in ("dsi", "osi"):
        sel = analysis.selectivity(activity, by, kind)
        table[f"{kind}_vector"], table[f"{kind}_ratio"] = sel[f"{kind}_vector"], sel[f"{kind}_ratio"]
    for name, pop in pops.items():
        table[name] = pop.table["member"]

    fields = ("preferred", "kappa", "width", "amplitude", "amplitude2", "baseline", "r2", "converged")
    fitted = np.full((len(fields), act.sizes["neuroid"]), np.nan)
    members = np.flatnonzero(table["responsive"].values)
    if fit and len(members):
        vm = analysis.fit_von_mises(act.isel(neuroid=members), by, period=360, two_peaks=True)
        for i, name in enumerate(fields):
            fitted[i, members] = vm[name].values.astype(np.float64)
    for i, name in enumerate(fields):
        table[f"vm_{name}"] = ("neuroid", fitted[i])
    table.attrs = {"by": by, "q_below": q_below, "index_above": index_above,
                   "rules": {name: pop.rule for name, pop in pops.items()},
                   "family": pops["responsive"].table.attrs.get("family", "")}
    return PipelineResult(table, pops)


# --------------------------------------------------------------------------------------------- V1


def nominal_directions(activity: xr.DataArray) -> xr.DataArray:
    """``direction`` snapped to the 22.5-deg design grid; the stored value kept as ``direction_stored``.

    Raises ValueError if a stored direction is more than :data:`MAX_SNAP` deg off the grid, or
    if the snapped direction disagrees with ``condition x 22.5``.
    """
    stored = np.asarray(activity["direction"].values, dtype=np.float64)
    nominal = np.mod(np.round(stored / STEP) * STEP, 360.0)
    off = np.abs(np.mod(stored - nominal + 180.0, 360.0) - 180.0)
    if off.max() > MAX_SNAP:
        raise ValueError(f"direction {stored[np.argmax(off)]:g} is {off.max():g} deg off the {STEP:g}-deg grid")
    if "condition" in activity.coords and not np.array_equal(nominal, activity["condition"].values * STEP):
        raise ValueError("snapped directions disagree with condition x 22.5")
    out = activity.assign_coords(direction_stored=("presentation", stored, {"units": "deg"}))
    return out.assign_coords(direction=("presentation", nominal,
                                        {"units": "deg", "long_name": f"drift direction, snapped to the {STEP:g}-deg grid"}))


def v1_activity(tree: xr.DataTree, session: str) -> xr.DataArray:
    """Spike counts 50-550 ms after onset, with nominal directions (what the pipeline gets)."""
    return nominal_directions(response_window(tree[session]["activity"], *WINDOW_MS))


def pooled_fdr(results: list[PipelineResult], q_below: float = Q_BELOW,
               index_above: float = INDEX_ABOVE) -> dict[str, int]:
    """Members of each rule with BH over all units of all sessions pooled (statsmodels)."""
    from statsmodels.stats.multitest import multipletests

    def q_all(var: str) -> np.ndarray:
        p = np.concatenate([r.table[var].values for r in results])
        q = np.full(p.shape, np.nan)
        ok = ~np.isnan(p)
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
        return q

    def cat(var: str) -> np.ndarray:
        return np.concatenate([r.table[var].values for r in results])

    with np.errstate(invalid="ignore"):
        out = {"responsive": q_all("p_anova") < q_below,
               "direction_rayleigh": q_all("p_dir") < q_below,
               "orientation_rayleigh": q_all("p_ori") < q_below}
        out["direction_tuned"] = out["direction_rayleigh"] & (cat("dsi_vector") > index_above)
        out["orientation_tuned"] = out["orientation_rayleigh"] & (cat("osi_vector") > index_above)
    out["either"] = out["direction_tuned"] | out["orientation_tuned"]
    out["tested"] = ~np.isnan(cat("p_anova"))
    return {k: int(v.sum()) for k, v in out.items()}


def _line(who: str, name: str, n: int, total: int, rule: str) -> str:
    return f"{who} {LABELS[name]}: {n}/{total} units ({100.0 * n / total:.1f}%)  [{rule}]"


def run_v1(path: Path) -> list[PipelineResult]:
    tree = read_ecker2010(path)
    sessions = list(tree.children)
    print(f"V1 (Ecker et al. 2010): {path.name}, {len(sessions)} sessions, "
          f"spike counts in [{WINDOW_MS[0]:g}, {WINDOW_MS[1]:g}) ms after onset, directions snapped to {STEP:g} deg")
    print("columns: resp = responsive, dir = direction-tuned, ori = orientation-tuned (with the index threshold); "
          "silent = no spike in the window (no test)")
    print(f"{'session':<10}{'monkey':>7}{'units':>6}{'trials':>7}{'silent':>7}{'resp':>6}{'dir':>5}{'ori':>5}{'either':>7}")
    results = []
    for name in sessions:
        result = tuning_pipeline(v1_activity(tree, name))
        results.append(result)
        t = result.table
        print(f"{name:<10}{tree[name].attrs['subject']:>7}{t.sizes['neuroid']:>6}"
              f"{tree[name].sizes['presentation']:>7}{int(np.isnan(t['p_anova'].values).sum()):>7}"
              f"{result.count('responsive'):>6}{result.count('direction_tuned'):>5}"
              f"{result.count('orientation_tuned'):>5}{result.count('either'):>7}")
    total = sum(r.table.sizes["neuroid"] for r in results)
    for name in RULES:
        n = sum(r.count(name) for r in results)
        print(_line("V1", name, n, total, results[0].table.attrs["rules"][name] + ", FDR per session"))
    pooled = pooled_fdr(results)
    print(f"V1 pooled FDR (BH over the {pooled['tested']} units with a p value, all sessions together): "
          + ", ".join(f"{LABELS[k]} {pooled[k]}/{total}" for k in RULES))
    fit = xr.concat([r.table[["vm_converged", "vm_r2", "vm_width"]] for r in results], dim="neuroid",
                    coords="minimal", compat="override")
    done = fit["vm_converged"].values == 1.0
    print(f"V1 von Mises (two peaks, period 360) on responsive units: {int(done.sum())}/"
          f"{sum(r.count('responsive') for r in results)} converged, median r2 {np.nanmedian(fit['vm_r2'].values[done]):.3f}, "
          f"median half-width {np.nanmedian(fit['vm_width'].values[done]):.1f} deg")
    return results


# ------------------------------------------------------------------------------------------ model


def make_gratings(n_directions: int = 16, n_phases: int = 4, size: int = 8,
                  cycles_per_pixel: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Static sinusoidal gratings, (n_directions * n_phases, 1, size, size) float32 in [0, 1].

    The grating of direction theta (its wave vector; the bars are orthogonal to it) and phase
    phi is ``0.5 + 0.5 cos(2 pi f (x cos theta + y sin theta) + phi)`` with x, y the pixel
    positions from the image centre (y pointing down). Returns the images, direction-major, and
    the int64 labels: the direction index (direction = label x 360 / n_directions).
    """
    centre = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) - centre
    images, labels = [], []
    for d in range(n_directions):
        theta = np.deg2rad(d * 360.0 / n_directions)
        u = x * np.cos(theta) + y * np.sin(theta)
        for k in range(n_phases):
            images.append(0.5 + 0.5 * np.cos(2 * np.pi * cycles_per_pixel * u + 2 * np.pi * k / n_phases))
            labels.append(d)
    return np.clip(np.stack(images)[:, None], 0.0, 1.0).astype(np.float32), np.array(labels, dtype=np.int64)


MODEL_PROTOCOL = """\
neurorecord: 1
name: v1-gratings-digits-cnn
seed: 0
subject:
  zoo: digits-cnn
stimuli:
  - name: gratings
    kind: npy
    path: gratings.npy
    labels: gratings-labels.npy
record:
  regions: [conv1, conv2, fc1]
  reduce: mean
  repetitions: 1
"""


def record_model(folder: Path) -> xr.DataTree:
    """Write the gratings and the protocol into ``folder`` and record digits-cnn there."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = make_gratings()
    np.save(folder / "gratings.npy", images)
    np.save(folder / "gratings-labels.npy", labels)
    (folder / "protocol.yaml").write_text(MODEL_PROTOCOL)
    return neurorecord.run(folder / "protocol.yaml", folder / "recording", quiet=True)


def model_activity(tree: xr.DataTree, region: str) -> xr.DataArray:
    """A region's activity (loaded) with ``direction`` = label x 22.5 deg."""
    act = tree[region]["activity"].load()
    return act.assign_coords(direction=("presentation", act["label"].values * STEP, {"units": "deg"}))


def run_model(folder: Path) -> dict[str, PipelineResult]:
    tree = record_model(folder)
    regions = list(tree.attrs["regions"])  # the region nodes; the tree also holds `behaviour`
    n = tree[regions[0]].sizes["presentation"]
    print(f"model digits-cnn: {n} static gratings (16 directions x 4 phases, 0.15 cycles/pixel), "
          f"regions {', '.join(regions)} (spatial mean), FDR per region")
    results = {region: tuning_pipeline(model_activity(tree, region)) for region in regions}
    print(f"{'region':<10}{'units':>6}{'silent':>7}{'resp':>6}{'dir':>5}{'ori':>5}{'either':>7}{'max DSI':>10}"
          f"{'median OSI':>12}")
    for region, r in results.items():
        t = r.table
        print(f"{region:<10}{t.sizes['neuroid']:>6}{int(np.isnan(t['p_dir'].values).sum()):>7}{r.count('responsive'):>6}"
              f"{r.count('direction_tuned'):>5}{r.count('orientation_tuned'):>5}{r.count('either'):>7}"
              f"{np.nanmax(t['dsi_vector'].values):>10.2e}{np.nanmedian(t['osi_vector'].values):>12.3f}")
    total = sum(r.table.sizes["neuroid"] for r in results.values())
    first = next(iter(results.values()))
    for name in RULES:
        print(_line("model", name, sum(r.count(name) for r in results.values()), total, first.table.attrs["rules"][name]))
    # With period 180 the Rayleigh test is the permutation test of the vector OSI (R_ori is
    # osi_vector; the null shuffles the direction labels keeping 4 images per direction): run
    # that test with the same shuffles and count the units whose p is the same and the members.
    selective = same_p = 0
    for region, r in results.items():
        perm = analysis.permutation_test(model_activity(tree, region), "direction", INDEX_FUNCTIONS["osi_vector"],
                                         n_permutations=RAYLEIGH_PERMUTATIONS, seed=RAYLEIGH_SEED)
        p_perm, p_ray = perm["p"].values, r.table["p_ori"].values
        same_p += int(((p_perm == p_ray) | (np.isnan(p_perm) & np.isnan(p_ray))).sum())
        with np.errstate(invalid="ignore"):
            selective += int(((perm["q"] < Q_BELOW) & (perm["observed"] > INDEX_ABOVE)).sum())
    print(f"model orientation-tuned, by permutation_test: {selective}/{total} units "
          f"({100.0 * selective / total:.1f}%), p equal to rayleigh(period=180)'s in {same_p}/{total} units  "
          f"[permutation_test(osi_vector, {RAYLEIGH_PERMUTATIONS} direction shuffles, seed {RAYLEIGH_SEED}) "
          f"q < {Q_BELOW:g} and osi_vector > {INDEX_ABOVE:g} (fdr_bh)]")
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get(ENV_VAR, "").strip()
    parser.add_argument("path", nargs="?", type=Path, default=Path(env) if env else DEFAULT_DATA,
                        help=f"data_v1_binned_moving.mat (default: ${ENV_VAR} or {DEFAULT_DATA})")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"error: {args.path}: the Ecker et al. (2010) file data_v1_binned_moving.mat is not there; "
              f"give its path or set {ENV_VAR}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    run_v1(args.path)
    print()
    with tempfile.TemporaryDirectory(prefix="v1-tuning-") as tmp:
        run_model(Path(tmp) / "digits-cnn-gratings")
    print(textwrap.dedent("""
        note: the model's gratings are static, so each direction and its opposite show the same images
        (phases closed under negation): the model can be orientation- but not direction-tuned.""").strip())
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
