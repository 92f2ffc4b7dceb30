"""The Rayleigh test of circular tuning (neurorecord.analysis.stats.rayleigh): valid on any design.

The statistic is the resultant of the tuning curve (one condition mean per angle, each angle
counted once whatever its number of trials), and its p value comes from a permutation null
that shuffles the trial labels within the design. Checked here: the false-positive rate of
untuned units on unbalanced and balanced designs, the power on tuned units, silent, constant
and tied units, the resultant and mean angle against pingouin, and the vectorised null against
the obvious loop (and against ``permutation_test``) with the same seed.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from neurorecord.analysis import AnalysisError, define_population, permutation_test, selectivity, stats

DIRECTIONS = np.arange(8) * 45.0
#: trials per direction of the unbalanced design: every count from 6 to 13 once
UNBALANCED = np.array([6, 13, 8, 11, 7, 12, 9, 10])
N_UNITS = 2000
ALPHA = 0.05
#: fraction of 2,000 valid p values below 0.05: at most ALPHA + 3 binomial standard deviations
FPR_LIMIT = ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / N_UNITS)


def counts_activity(rates: np.ndarray, per_direction: np.ndarray, seed: int, directions: np.ndarray = DIRECTIONS,
                    by: str = "direction") -> xr.DataArray:
    """Poisson spike counts (presentation x neuroid); ``rates`` (directions, units) per trial."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(len(directions)), per_direction)
    codes = codes[rng.permutation(len(codes))]  # trials in a random order, as presented
    counts = rng.poisson(rates[codes]).astype(np.float32)
    n_units = rates.shape[1]
    return xr.DataArray(
        counts, dims=("presentation", "neuroid"),
        coords={"stimulus_id": ("presentation", [f"s{i:03d}" for i in range(len(codes))]),
                by: ("presentation", directions[codes]),
                "neuroid_id": ("neuroid", [f"v1.{u}" for u in range(n_units)]),
                "region": ("neuroid", ["v1"] * n_units)},
        attrs={"units": "spikes"},
    )


def tuned_rates(n_units: int, kappa: float, seed: int, baseline: float = 20.0, amplitude: float = 10.0,
                period: float = 360.0) -> np.ndarray:
    """Von Mises tuning curves with random preferred angles, (directions, units)."""
    preferred = np.random.default_rng(seed).uniform(0, period, size=n_units)
    phase = 2 * np.pi * (DIRECTIONS[:, None] - preferred[None, :]) / period
    return baseline + amplitude * np.exp(kappa * (np.cos(phase) - 1))


def slow_resultant(column: np.ndarray, codes: np.ndarray, theta: np.ndarray) -> float:
    """Resultant length of one unit's tuning curve, one condition at a time."""
    means = np.array([column[codes == k].mean() for k in range(len(theta))])
    total = means.sum()
    if not total > 0:
        return np.nan
    return float(np.hypot((means * np.cos(theta)).sum(), (means * np.sin(theta)).sum()) / total)


def slow_rayleigh(x: np.ndarray, angles: np.ndarray, period: float, n_permutations: int, seed: int) -> tuple:
    """R and the permutation p of every unit by the obvious loops: the definition, written out."""
    levels, codes = np.unique(angles, return_inverse=True)
    theta = 2 * np.pi * levels / period
    rng = np.random.default_rng(seed)
    shuffles = [rng.permutation(codes) for _ in range(n_permutations)]
    r = np.full(x.shape[1], np.nan)
    p = np.full(x.shape[1], np.nan)
    for j in range(x.shape[1]):
        column = x[:, j].astype(np.float64)
        observed = slow_resultant(column, codes, theta)
        if np.isnan(observed):
            continue
        # a resultant below 1e-12 is rounding of an exact 0; within 100 epsilons counts as reaching it
        threshold = 0.0 if observed < 1e-12 else observed * (1 - 100 * np.finfo(np.float64).eps)
        exceed = sum(slow_resultant(column, c, theta) >= threshold for c in shuffles)
        r[j], p[j] = observed, (1 + exceed) / (1 + n_permutations)
    return r, p


# ----------------------------------------------------------------------------- validity and power


@pytest.mark.parametrize("period", [360.0, 180.0])
def test_untuned_units_on_an_unbalanced_design_keep_the_false_positive_rate(period):
    """Untuned Poisson units (rate 30), 6-13 trials per direction: with the trial-weighted
    statistic and Zar's p, nearly every unit came out tuned (the over-sampled directions)."""
    act = counts_activity(np.full((8, N_UNITS), 30.0), UNBALANCED, seed=11)
    result = stats.rayleigh(act, "direction", period=period)
    p = result["p"].values
    assert not np.isnan(p).any()
    rate = float((p < ALPHA).mean())
    assert rate <= FPR_LIMIT, rate
    assert rate >= ALPHA - 3 * np.sqrt(ALPHA * (1 - ALPHA) / N_UNITS), rate  # exact, not just conservative


def test_untuned_units_on_a_balanced_design_keep_the_false_positive_rate():
    act = counts_activity(np.full((8, N_UNITS), 30.0), np.full(8, 10), seed=12)
    rate = float((stats.rayleigh(act, "direction", period=360)["p"].values < ALPHA).mean())
    assert rate <= FPR_LIMIT, rate


def test_tuned_units_are_found():
    """Von Mises tuned units (kappa 1, peak 1.5x the trough, unbalanced design): high power."""
    act = counts_activity(tuned_rates(N_UNITS, kappa=1.0, seed=3), UNBALANCED, seed=13)
    result = stats.rayleigh(act, "direction", period=360)
    power = float((result["p"].values < ALPHA).mean())
    assert power >= 0.95, power
    # the preferred direction is the tuning curve's: within 30 deg of the true one for most units
    preferred = np.random.default_rng(3).uniform(0, 360, size=N_UNITS)
    error = np.abs((result["preferred"].values - preferred + 180) % 360 - 180)
    assert np.median(error) < 15


# ----------------------------------------------------------------------------- edge cases


def test_silent_constant_and_tied_units():
    rng = np.random.default_rng(5)
    angles = np.repeat(DIRECTIONS, UNBALANCED)
    x = np.stack([np.zeros(len(angles)),  # silent
                  np.full(len(angles), 2.0),  # constant: no tuning at all
                  np.where(angles == 90, 5.0, 0.0),  # responds at 90 only
                  rng.poisson(0.3, size=len(angles)),  # sparse counts: ties everywhere
                  rng.poisson(0.3, size=len(angles))], axis=1).astype(np.float64)
    act = xr.DataArray(x, dims=("presentation", "neuroid"),
                       coords={"direction": ("presentation", angles),
                               "neuroid_id": ("neuroid", ["s", "c", "t", "a", "b"]), "region": ("neuroid", ["v1"] * 5)})
    result = stats.rayleigh(act, "direction", period=360, n_permutations=300, seed=4)
    for var in ("R", "Z", "p", "q", "preferred"):
        assert np.isnan(result[var].values[0]), var  # silent: nothing to test, NaN, no crash
    assert result["n"].values[0] == 0
    assert result["p"].values[1] == 1.0 and np.isnan(result["preferred"].values[1])  # constant
    assert result["R"].values[1] < 1e-12
    assert result["R"].values[2] == pytest.approx(1.0) and result["preferred"].values[2] == pytest.approx(90.0)
    assert result["p"].values[2] == pytest.approx(1 / 301)  # no shuffle reaches a perfect resultant
    r, p = slow_rayleigh(x, angles, 360.0, 300, 4)
    np.testing.assert_array_equal(result["p"].values, p)
    np.testing.assert_allclose(result["R"].values[2:], r[2:], rtol=1e-12)
    # silent units are never members of a population
    pop = define_population("tuned", act, test="rayleigh", by="direction", period=360, q_below=1.0)
    assert "s" not in pop.neuroid_ids and not bool(pop.table["member"].values[0])


# ----------------------------------------------------------------------------- against references


@pytest.mark.parametrize("period", [180.0, 360.0])
def test_tuning_curve_resultant_matches_pingouin(period):
    pingouin = pytest.importorskip("pingouin")
    act = counts_activity(tuned_rates(20, kappa=1.5, seed=6, period=period), np.full(8, 6), seed=7)
    result = stats.rayleigh(act, "direction", period=period, n_permutations=50)
    x = act.values.astype(np.float64)
    angles = act["direction"].values
    levels = np.unique(angles)
    radians = np.mod(2 * np.pi * levels / period, 2 * np.pi)
    trial_radians = np.mod(2 * np.pi * angles / period, 2 * np.pi)
    for j in range(x.shape[1]):
        means = np.array([x[angles == a, j].mean() for a in levels])
        assert result["R"].values[j] == pytest.approx(pingouin.circ_r(radians, w=means), rel=1e-12)
        mean = np.mod(pingouin.circ_mean(radians, w=means), 2 * np.pi) * period / (2 * np.pi)
        assert abs((result["preferred"].values[j] - mean + period / 2) % period - period / 2) < 1e-9
        # balanced design: Z = n R**2 is the classic Rayleigh Z of the trials weighted by their counts
        z, _ = pingouin.circ_rayleigh(trial_radians, w=x[:, j])
        assert result["Z"].values[j] == pytest.approx(z, rel=1e-10)
        assert result["n"].values[j] == x[:, j].sum()
    # R is the vector selectivity index of the same tuning curve
    index = "osi_vector" if period == 180 else "dsi_vector"
    np.testing.assert_array_equal(result["R"].values, selectivity(act, "direction", index)[index].values)


def test_permutation_p_is_the_obvious_loop():
    """The vectorised null (units x permutations in matrix products) against the loops, and
    against permutation_test given the same statistic and seed."""
    rates = np.concatenate([tuned_rates(12, kappa=0.5, seed=8, amplitude=3.0), np.full((8, 12), 4.0)], axis=1)
    act = counts_activity(rates, UNBALANCED, seed=9)
    result = stats.rayleigh(act, "direction", period=360, n_permutations=400, seed=21)
    r, p = slow_rayleigh(act.values, act["direction"].values, 360.0, 400, 21)
    np.testing.assert_allclose(result["R"].values, r, rtol=1e-12)
    np.testing.assert_array_equal(result["p"].values, p)
    assert 0 < (result["p"].values < 0.05).sum() < 24  # some tuned units found, not all: a real test

    def resultant(values, codes, levels):
        theta = 2 * np.pi * levels / 360.0
        return np.array([slow_resultant(values[:, j], codes, theta) for j in range(values.shape[1])])

    generic = permutation_test(act, "direction", resultant, n_permutations=400, seed=21)
    np.testing.assert_array_equal(result["p"].values, generic["p"].values)
    q = result["q"].values
    np.testing.assert_array_equal(q, generic["q"].values)


def test_attrs_seed_blocks_and_dask(monkeypatch):
    from neurorecord.analysis import _units

    act = counts_activity(tuned_rates(30, kappa=0.7, seed=1, amplitude=4.0), UNBALANCED, seed=2)
    result = stats.rayleigh(act, "direction", period=360, n_permutations=200, seed=5)
    assert result.attrs["null"] == "permutation of the trial labels within the design (76 trials; 6 to 13 per level), n=200"
    assert result.attrs["n_permutations"] == 200 and result.attrs["seed"] == 5
    assert result.attrs["statistic"].startswith("R: resultant length of the tuning curve")
    assert result.attrs["n_per_level"] == UNBALANCED.tolist()
    assert "p" in result and result["R"].dims == ("neuroid",)
    xr.testing.assert_identical(stats.rayleigh(act, "direction", period=360, n_permutations=200, seed=5), result)
    other = stats.rayleigh(act, "direction", period=360, n_permutations=200, seed=6)
    assert not np.array_equal(other["p"].values, result["p"].values)
    np.testing.assert_array_equal(other["R"].values, result["R"].values)
    # blocks of 4 units and a dask-backed array give the same result, bit for bit
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * act.sizes["presentation"] * 4)
    lazy = act.copy(data=da.from_array(act.values, chunks=(20, 30)))
    xr.testing.assert_identical(stats.rayleigh(lazy, "direction", period=360, n_permutations=200, seed=5), result)
    xr.testing.assert_identical(stats.rayleigh(act, "direction", period=360, n_permutations=200, seed=5), result)


def test_population_statistic_is_r():
    act = counts_activity(tuned_rates(40, kappa=1.0, seed=2), UNBALANCED, seed=3)
    pop = define_population("tuned", act, test="rayleigh", by="direction", period=360, seed=1)
    ray = stats.rayleigh(act, "direction", period=360, seed=1)
    assert pop.table.attrs["statistic"] == "R"
    np.testing.assert_array_equal(pop.table["statistic"].values, ray["R"].values)
    np.testing.assert_array_equal(pop.table["member"].values, (ray["q"] < 0.05).values)
    assert len(pop) > 30


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"period": -1}, r"period: expected a number > 0, found -1"),
        ({"period": 360, "n_permutations": 0}, r"n_permutations: expected an integer >= 1, found 0"),
        ({"period": 360, "seed": -2}, r"seed: expected an integer >= 0 or None, found -2"),
        ({"period": 360, "seed": 1.5}, r"seed: expected an integer >= 0 or None, found 1.5 \(float\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    act = counts_activity(np.full((8, 3), 5.0), UNBALANCED, seed=0)
    with pytest.raises(AnalysisError, match=match):
        stats.rayleigh(act, "direction", **kwargs)


def test_negative_responses_and_text_angles_are_refused():
    act = counts_activity(np.full((8, 4), 5.0), UNBALANCED, seed=0)
    negative = act.copy(data=np.where(np.arange(4) % 2 == 1, -act.values, act.values))
    with pytest.raises(AnalysisError, match=r"activity: expected non-negative responses \(.*\), found negative values in "
                                            r"2 of 4 units \(e.g. v1.1, v1.3\)"):
        stats.rayleigh(negative, "direction", period=360)
    text = act.assign_coords(direction=("presentation", act["direction"].values.astype(int).astype(str)))
    with pytest.raises(AnalysisError, match=r"by: expected angles in degrees \(numbers\) for the rayleigh test, "
                                            r"found coordinate 'direction' with values such as '0'"):
        stats.rayleigh(text, "direction", period=360)


def test_protocol_analyses_draw_their_permutations_from_the_protocol_seed():
    """A protocol's rayleigh and rayleigh-rule population entries use the protocol's seed (the
    runner passes it on), so two seeds give two nulls and one seed one result."""
    from neurorecord.analysis.runner import compute_analysis
    from neurorecord.protocol.schema import PopulationAnalysis, RayleighAnalysis

    activity = counts_activity(np.full((8, 6), 5.0), np.full(8, 6), seed=1)
    specs = [RayleighAnalysis(name="r", kind="rayleigh", by="direction", period=360.0),
             PopulationAnalysis(name="p", kind="population", test="rayleigh", by="direction", period=360.0, q_below=0.5)]
    for spec in specs:
        first, again, other = (compute_analysis(spec, activity, seed=s) for s in (3, 3, 4))
        p = "p" if "p" in first else next(v for v in first.data_vars if v.startswith("p"))
        assert np.array_equal(first[p].values, again[p].values, equal_nan=True)
        assert not np.array_equal(first[p].values, other[p].values, equal_nan=True), spec.kind
