"""The tuning pipeline of ``examples/v1_tuning.py`` against direct computations on the raw arrays.

The same ``tuning_pipeline`` (ANOVA across directions, Rayleigh tests with periods 360 and 180 -- the
tuning curve's resultant against shuffles of the trial labels, reproduced here by the obvious loop --
OSI/DSI in vector and ratio forms, populations, von Mises fits) runs on

- three sessions of the Ecker et al. (2010) macaque V1 recording (monkey H; monkey D, whose
  directions are stored as whole degrees; and the D session with 9 empty trial slots), checked
  against numpy / scipy / statsmodels on the spike counts read with ``scipy.io.loadmat`` directly;
- a recording of the zoo's ``digits-cnn`` shown static gratings, checked against the recorded
  array, which is itself checked against a plain torch forward pass.

The reference implementations here use nothing from neurorecord. The V1 tests are skipped when
the data file (never copied into the repository) is absent.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.stats
from statsmodels.stats.multitest import multipletests

from neurorecord.analysis import AnalysisError, selectivity
from neurorecord.interop.ecker2010 import ecker2010_path
from tests.helpers import ECKER_FILE

REPO = Path(__file__).resolve().parents[2]
ECKER = ecker2010_path() or ECKER_FILE
needs_file = pytest.mark.skipif(not ECKER.is_file(), reason=f"Ecker 2010 data file not found at {ECKER}")

SESSIONS = (0, 14, 25)  # monkey H; monkey D (whole-degree directions); D with 9 empty trial slots
RTOL = 1e-10
WINDOW = (50.0, 550.0)
N_DIRECTIONS = 16
MODEL_REGIONS = ("conv1", "conv2", "fc1")
N_PERMUTATIONS, RAYLEIGH_SEED = 1000, 0  # rayleigh's defaults, which the pipeline uses


def load_example():
    """``examples/v1_tuning.py`` as a module (registered in sys.modules, as dataclasses need)."""
    name = "neurorecord_example_v1_tuning"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "v1_tuning.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def example():
    return load_example()


# ------------------------------------------------------------------ reference implementations


def raw_session_counts(session) -> tuple[list[np.ndarray], np.ndarray]:
    """Spike counts in [50, 550) ms of one loadmat session: per condition an array (units, kept trials).

    Trial slots in which no unit fired in the whole 900 ms are missing trials and are left out.
    Also returns the stored direction of each condition.
    """
    spikes = np.asarray(session.spikes, dtype=np.int64)  # units x conditions x time bins x repetitions
    times = np.asarray(session.times, dtype=np.float64)
    inside = (times - 5.0 >= WINDOW[0]) & (times + 5.0 <= WINDOW[1])
    assert inside.sum() == 50
    counts = spikes[:, :, inside, :].sum(axis=2)  # units x conditions x repetitions
    filled = spikes.sum(axis=(0, 2)) > 0  # conditions x repetitions
    per_condition = [counts[:, c, filled[c]].astype(np.float64) for c in range(counts.shape[1])]
    directions = np.array([float(c.direction) for c in np.atleast_1d(session.conditions)])
    return per_condition, directions


def direct_results(per_condition: list[np.ndarray], directions: np.ndarray, q_below: float = 0.05,
                   index_above: float = 0.1) -> dict[str, np.ndarray]:
    """Every statistic of the pipeline, unit by unit, with scipy / statsmodels / numpy.

    ``per_condition[k]`` is (units, trials) for direction ``directions[k]`` (degrees).
    """
    n_units = per_condition[0].shape[0]
    out = {k: np.full(n_units, np.nan) for k in (
        "F", "p_anova", "R_dir", "Z_dir", "p_dir", "R_ori", "Z_ori", "p_ori", "dsi_vector", "osi_vector",
        "dsi_ratio", "osi_ratio")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant (silent) units
        for u in range(n_units):
            groups = [x[u] for x in per_condition]
            f, p = scipy.stats.f_oneway(*groups)
            out["F"][u], out["p_anova"][u] = f, p
    # Rayleigh: resultant of the tuning curve (condition means), p from shuffles of the trial
    # labels (the design kept), drawn as rayleigh draws them: rng.permutation(codes), seed 0
    codes = np.concatenate([np.full(x.shape[1], k) for k, x in enumerate(per_condition)])  # condition-major
    values = np.concatenate(per_condition, axis=1)  # units x trials
    shuffles = [rng.permutation(codes) for rng in [np.random.default_rng(RAYLEIGH_SEED)] for _ in range(N_PERMUTATIONS)]
    for period, tag in ((360.0, "dir"), (180.0, "ori")):
        phase = 2 * np.pi * directions / period

        def resultant(labels: np.ndarray) -> np.ndarray:
            means = np.stack([values[:, labels == k].mean(axis=1) for k in range(len(directions))])  # conditions x units
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.hypot(np.cos(phase) @ means, np.sin(phase) @ means) / means.sum(axis=0)

        r = resultant(codes)
        threshold = np.where(r < 1e-12, 0.0, r * (1 - 100 * np.finfo(np.float64).eps))
        exceed = sum((resultant(c) >= threshold).astype(int) for c in shuffles)
        out[f"R_{tag}"] = r
        out[f"Z_{tag}"] = values.sum(axis=1) * r**2
        out[f"p_{tag}"] = np.where(np.isnan(r), np.nan, (1 + exceed) / (1 + N_PERMUTATIONS))
    # indices from condition means
    means = np.stack([x.mean(axis=1) for x in per_condition])  # directions x units
    theta = np.deg2rad(directions)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = means.sum(axis=0)
        out["dsi_vector"] = np.abs(np.exp(1j * theta) @ means) / total
        out["osi_vector"] = np.abs(np.exp(2j * theta) @ means) / total
        step = 360.0 / len(directions)
        order = np.argsort(np.mod(directions, 360.0))
        assert np.allclose(np.mod(directions[order], 360.0), np.arange(len(directions)) * step)
        m = means[order]  # by direction index 0..15
        half = len(directions) // 2
        for u in range(n_units):
            pref = int(np.argmax(m[:, u]))
            opposite = m[(pref + half) % len(directions), u]
            out["dsi_ratio"][u] = (m[pref, u] - opposite) / (m[pref, u] + opposite)
            orientation = (m[:half, u] + m[half:, u]) / 2  # each direction with its opposite
            pref = int(np.argmax(orientation))
            orth = orientation[(pref + half // 2) % half]
            out["osi_ratio"][u] = (orientation[pref] - orth) / (orientation[pref] + orth)
    for tag in ("anova", "dir", "ori"):
        p = out[f"p_{tag}"]
        q = np.full(n_units, np.nan)
        ok = ~np.isnan(p)
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
        out[f"q_{tag}"] = q
    with np.errstate(invalid="ignore"):
        out["responsive"] = out["q_anova"] < q_below
        out["direction_rayleigh"] = out["q_dir"] < q_below
        out["orientation_rayleigh"] = out["q_ori"] < q_below
        out["direction_tuned"] = out["direction_rayleigh"] & (out["dsi_vector"] > index_above)
        out["orientation_tuned"] = out["orientation_rayleigh"] & (out["osi_vector"] > index_above)
    out["either"] = out["direction_tuned"] | out["orientation_tuned"]
    out["means"] = means
    return out


def close(actual, expected, rtol: float = RTOL, atol: float = 0.0, what: str = "") -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


#: Statistics of direction (period 360): zero up to rounding for the model, whose opposite
#: directions show the same images; there only an absolute tolerance makes sense.
DIRECTION_STATISTICS = ("R_dir", "Z_dir", "dsi_vector", "dsi_ratio")


def check_against_direct(result, direct: dict[str, np.ndarray], example, direction_atol: float = 0.0) -> None:
    """Every statistic of a pipeline result equals the direct computation (relative 1e-10)."""
    t = result.table
    for var in ("F", "p_anova", "q_anova", "R_dir", "Z_dir", "p_dir", "q_dir", "R_ori", "Z_ori", "p_ori", "q_ori",
                "dsi_vector", "osi_vector", "dsi_ratio", "osi_ratio"):
        close(t[var].values, direct[var], atol=direction_atol if var in DIRECTION_STATISTICS else 0.0, what=var)
    for name in example.RULES:
        assert np.array_equal(t[name].values, direct[name]), name
        assert len(result.populations[name]) == int(direct[name].sum()), name
        assert result.populations[name].neuroid_ids == [str(i) for i in t["neuroid_id"].values[direct[name]]]
    # von Mises: fitted exactly the responsive units; r2 recomputed by hand from the parameters
    fitted = ~np.isnan(t["vm_converged"].values)
    assert np.array_equal(fitted, direct["responsive"])
    angles = np.arange(N_DIRECTIONS) * 22.5
    for u in np.flatnonzero(t["vm_converged"].values == 1.0):
        g = {k: float(t[f"vm_{k}"].values[u]) for k in ("preferred", "kappa", "amplitude", "amplitude2", "baseline", "r2")}
        phase = np.deg2rad(angles - g["preferred"])
        model = (g["baseline"] + g["amplitude"] * np.exp(g["kappa"] * (np.cos(phase) - 1))
                 + g["amplitude2"] * np.exp(g["kappa"] * (np.cos(phase - np.pi) - 1)))
        r = direct["means"][:, u]
        close(g["r2"], 1 - ((r - model) ** 2).sum() / ((r - r.mean()) ** 2).sum(), rtol=1e-9, what="vm r2")
        assert g["amplitude"] >= g["amplitude2"] >= 0


# ------------------------------------------------------------------------------------------ V1


@pytest.fixture(scope="module")
def raw(raw_ecker):
    return raw_ecker


@pytest.fixture(scope="module")
def v1(example):
    if not ECKER.is_file():
        pytest.skip(f"Ecker 2010 data file not found at {ECKER}")
    tree = example.read_ecker2010(ECKER, sessions=list(SESSIONS))
    return tree, {s: example.tuning_pipeline(example.v1_activity(tree, f"session{s:02d}")) for s in SESSIONS}


@needs_file
@pytest.mark.parametrize("session", SESSIONS)
def test_v1_pipeline_equals_direct_computation(session, raw, v1, example) -> None:
    per_condition, stored = raw_session_counts(raw[session])
    nominal = np.arange(N_DIRECTIONS) * 22.5
    off = np.abs(np.mod(stored - nominal + 180, 360) - 180)
    assert off.max() <= 1.5  # the D sessions' whole degrees are the 22.5-deg design, rounded
    direct = direct_results(per_condition, nominal)
    result = v1[1][session]
    n_units = per_condition[0].shape[0]
    assert list(result.table["neuroid_id"].values) == [f"V1.s{session:02d}.u{u:02d}" for u in range(n_units)]
    check_against_direct(result, direct, example)
    # the family is the session's units, as the rules record
    assert result.table.attrs["family"] == f"fdr_bh over the {n_units} units of region V1"
    assert result.table.attrs["rules"]["orientation_tuned"] == (
        "rayleigh(by=direction, period=180) q < 0.05 and osi_vector > 0.1 (fdr_bh)")
    assert result.populations["orientation_tuned"].table.attrs["period"] == 180
    assert result.populations["direction_tuned"].table.attrs["period"] == 360


@needs_file
def test_v1_rayleigh_matches_pingouin(raw, v1) -> None:
    """R and the preferred direction are pingouin's resultant and mean of the tuning curve; on a
    balanced session Z = n R**2 is pingouin's Rayleigh Z of the trials weighted by their counts."""
    pingouin = pytest.importorskip("pingouin")
    per_condition, _ = raw_session_counts(raw[14])
    counts = [x.shape[1] for x in per_condition]
    assert len(set(counts)) == 1  # session 14 is balanced
    angles = np.concatenate([np.full(x.shape[1], k * 22.5) for k, x in enumerate(per_condition)])
    values = np.concatenate(per_condition, axis=1)
    t = v1[1][14].table
    for u in range(6):
        means = np.array([x[u].mean() for x in per_condition])
        for period, tag in ((360, "dir"), (180, "ori")):
            levels = np.mod(2 * np.pi * np.arange(N_DIRECTIONS) * 22.5 / period, 2 * np.pi)
            close(t[f"R_{tag}"].values[u], pingouin.circ_r(levels, w=means), what=f"R {tag} u{u}")
            mean = np.mod(pingouin.circ_mean(levels, w=means), 2 * np.pi) * period / (2 * np.pi)
            assert abs((t[f"preferred_{tag}"].values[u] - mean + period / 2) % period - period / 2) < 1e-9
            z, _ = pingouin.circ_rayleigh(np.mod(2 * np.pi * angles / period, 2 * np.pi), w=values[u])
            close(t[f"Z_{tag}"].values[u], z, what=f"Z {tag} u{u}")


@needs_file
def test_v1_pooled_fdr_equals_statsmodels(raw, v1, example) -> None:
    """The script's pooled family: BH over the units of all sessions together."""
    directs = [direct_results(raw_session_counts(raw[s])[0], np.arange(N_DIRECTIONS) * 22.5) for s in SESSIONS]
    pooled = example.pooled_fdr([v1[1][s] for s in SESSIONS])

    def cat(var):
        return np.concatenate([d[var] for d in directs])

    def q_all(var):
        p = cat(var)
        q = np.full(p.shape, np.nan)
        ok = ~np.isnan(p)
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
        return q

    with np.errstate(invalid="ignore"):
        assert pooled["responsive"] == int((q_all("p_anova") < 0.05).sum())
        assert pooled["direction_tuned"] == int(((q_all("p_dir") < 0.05) & (cat("dsi_vector") > 0.1)).sum())
        assert pooled["orientation_tuned"] == int(((q_all("p_ori") < 0.05) & (cat("osi_vector") > 0.1)).sum())
    assert pooled["tested"] == int((~np.isnan(cat("p_anova"))).sum())


@needs_file
def test_v1_empty_trials_and_stored_directions(v1, example) -> None:
    tree, _ = v1
    s25 = example.v1_activity(tree, "session25")
    assert s25.sizes["presentation"] == 16 * 20 - 9  # 9 missing trial slots left out
    s14 = example.v1_activity(tree, "session14")
    assert set(np.unique(s14["direction_stored"].values)) >= {314.0, 336.0, 67.0, 158.0}
    assert np.array_equal(s14["direction"].values, s14["condition"].values * 22.5)
    # with the stored whole degrees the ratio forms cannot pair orientations: 314 % 180 = 134 has no 44
    stored = s14.assign_coords(direction=s14["direction_stored"])
    with pytest.raises(AnalysisError, match="to have its orthogonal partner .* found none at"):
        selectivity(stored, "direction", "osi")
    with pytest.raises(ValueError, match="off the 22.5-deg grid"):
        example.nominal_directions(s14.assign_coords(direction=s14["direction_stored"] + 5.0))


# ----------------------------------------------------------------------------------------- model


@pytest.fixture(scope="module")
def model(example, tmp_path_factory):
    tree = example.record_model(tmp_path_factory.mktemp("v1-pipeline") / "digits-cnn")
    images, labels = example.make_gratings()
    acts = {r: example.model_activity(tree, r) for r in MODEL_REGIONS}
    return images, labels, acts, {r: example.tuning_pipeline(a) for r, a in acts.items()}


def test_gratings(example) -> None:
    images, labels = example.make_gratings()
    assert images.shape == (64, 1, 8, 8) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1 and images.max() - images.min() > 0.9
    assert np.array_equal(labels, np.repeat(np.arange(16), 4)) and labels.dtype == np.int64
    # the four images of direction d + 180 are those of direction d (phases closed under negation)
    for d in range(8):
        a, b = images[labels == d].reshape(4, -1), images[labels == d + 8].reshape(4, -1)
        assert np.allclose(a, b[[0, 3, 2, 1]], atol=1e-6)
        assert not np.allclose(a, images[labels == (d + 4)].reshape(4, -1), atol=1e-2)  # orthogonal differs


def test_model_recording_equals_torch_forward(model) -> None:
    import torch

    from neurorecord.subjects.zoo import load_zoo_subject

    images, labels, acts, _ = model
    net = load_zoo_subject("digits-cnn").model
    outputs = {}
    handles = [getattr(net, r).register_forward_hook(lambda m, i, o, r=r: outputs.__setitem__(r, o.detach()))
               for r in MODEL_REGIONS]
    with torch.no_grad():
        net(torch.from_numpy(images))
    for h in handles:
        h.remove()
    for r in MODEL_REGIONS:
        expected = outputs[r].numpy()
        if expected.ndim == 4:
            expected = expected.mean(axis=(2, 3))
        np.testing.assert_allclose(acts[r].values, expected, rtol=1e-5, atol=1e-6, err_msg=r)
        assert np.array_equal(acts[r]["direction"].values, labels * 22.5)


def test_model_pipeline_equals_direct_computation(model, example) -> None:
    _, _, acts, results = model
    for r in MODEL_REGIONS:
        values = np.asarray(acts[r].values, dtype=np.float64).T  # units x presentations
        direction = acts[r]["direction"].values
        levels = np.arange(N_DIRECTIONS) * 22.5
        per_condition = [values[:, direction == d] for d in levels]
        direct = direct_results(per_condition, levels)
        check_against_direct(results[r], direct, example, direction_atol=1e-12)
        assert np.nanmax(direct["R_dir"]) < 1e-12
        assert results[r].table.attrs["family"] == f"fdr_bh over the {values.shape[0]} units of region {r}"


def test_model_is_orientation_but_not_direction_tuned(model) -> None:
    *_, results = model
    dsi = np.concatenate([results[r].table["dsi_vector"].values for r in MODEL_REGIONS])
    assert np.nanmax(dsi) < 1e-6  # opposite directions show the same images
    assert sum(len(results[r].populations["direction_tuned"]) for r in MODEL_REGIONS) == 0
    assert sum(len(results[r].populations["direction_rayleigh"]) for r in MODEL_REGIONS) == 0
    assert sum(len(results[r].populations["orientation_tuned"]) for r in MODEL_REGIONS) > 0
