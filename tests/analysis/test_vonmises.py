"""Von Mises fits: recovery of known parameters from noisy synthetic tuning, failures marked, width."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import xarray as xr

from neurorecord.analysis import _units
from neurorecord.analysis._units import AnalysisError
from neurorecord.analysis.vonmises import AMPLITUDE_BOUND, KAPPA_BOUNDS, fit_von_mises, half_width, von_mises


def circular_error(a: np.ndarray, b: np.ndarray, period: float) -> np.ndarray:
    return np.abs(np.mod(np.asarray(a) - np.asarray(b) + period / 2, period) - period / 2)


def synthetic(by: str, levels: np.ndarray, period: float, params: list[dict], n_rep: int = 10, noise: float = 0.3,
              seed: int = 0) -> xr.DataArray:
    """Noisy von Mises units (Gaussian noise of sd ``noise`` per presentation)."""
    rng = np.random.default_rng(seed)
    theta = np.tile(levels, n_rep).astype(np.float64)
    curves = np.stack([von_mises(theta, period=period, **p) for p in params], axis=1)
    values = curves + rng.normal(0.0, noise, size=curves.shape)
    return xr.DataArray(values, dims=("presentation", "neuroid"),
                        coords={by: ("presentation", theta),
                                "neuroid_id": ("neuroid", [f"v1.{i}" for i in range(len(params))]),
                                "region": ("neuroid", ["v1"] * len(params))})


ORIENTATION_UNITS = [
    {"preferred": 10.0, "kappa": 2.0, "amplitude": 5.0, "baseline": 1.0},
    {"preferred": 60.0, "kappa": 3.0, "amplitude": 4.0, "baseline": 0.5},
    {"preferred": 176.0, "kappa": 1.5, "amplitude": 6.0, "baseline": 2.0},  # across the wrap
    {"preferred": 95.0, "kappa": 4.0, "amplitude": 5.0, "baseline": 0.0},
]


def check_recovery(fit: xr.Dataset, params: list[dict], period: float, baseline_tol: float = 0.4,
                   amplitude2_tol: float | None = None) -> None:
    # Noise sd 0.3 per presentation, 10 repetitions (sd 0.1 on each condition mean), amplitudes
    # 4-6. Tolerances: preferred within 4 deg, width and amplitude within 15 %, baseline within
    # 0.4 (0.6 with two peaks, where baseline and the second peak trade off), amplitude2 within
    # 0.7, r2 > 0.95. Over 100 noise seeds the largest errors were at most 0.67 of each
    # tolerance (0.86 for the two-peaked baseline, 0.79 for amplitude2), so the fixed seeds here
    # are not chosen to pass.
    for u, p in enumerate(params):
        assert bool(fit["converged"].values[u])
        assert circular_error(fit["preferred"].values[u], p["preferred"], period) < 4.0
        assert fit["width"].values[u] == pytest.approx(half_width(p["kappa"], period), rel=0.15)
        assert fit["amplitude"].values[u] == pytest.approx(p["amplitude"], rel=0.15)
        assert fit["baseline"].values[u] == pytest.approx(p["baseline"], abs=baseline_tol)
        assert fit["r2"].values[u] > 0.95
        assert 0.0 <= fit["preferred"].values[u] < period
        if amplitude2_tol is not None:
            assert fit["amplitude2"].values[u] == pytest.approx(p["amplitude2"], abs=amplitude2_tol)


def test_recovers_orientation_tuning():
    activity = synthetic("orientation", np.arange(0.0, 180.0, 15.0), 180.0, ORIENTATION_UNITS, seed=1)
    fit = fit_von_mises(activity, "orientation", period=180)
    check_recovery(fit, ORIENTATION_UNITS, 180.0)
    assert "amplitude2" not in fit
    assert fit.attrs["period"] == 180.0 and fit.attrs["two_peaks"] == 0 and fit.attrs["by"] == "orientation"
    np.testing.assert_array_equal(fit["neuroid_id"].values, activity["neuroid_id"].values)


def test_recovers_direction_tuning():
    params = [
        {"preferred": 45.0, "kappa": 2.0, "amplitude": 5.0, "baseline": 1.0},
        {"preferred": 300.0, "kappa": 1.2, "amplitude": 4.0, "baseline": 0.5},
        {"preferred": 355.0, "kappa": 3.0, "amplitude": 6.0, "baseline": 0.0},
    ]
    activity = synthetic("direction", np.arange(0.0, 360.0, 22.5), 360.0, params, seed=2)
    check_recovery(fit_von_mises(activity, "direction", period=360), params, 360.0)


def test_recovers_two_peaked_direction_tuning():
    params = [
        {"preferred": 90.0, "kappa": 2.5, "amplitude": 5.0, "baseline": 1.0, "amplitude2": 2.5},
        {"preferred": 200.0, "kappa": 3.0, "amplitude": 4.0, "baseline": 0.5, "amplitude2": 0.0},
        {"preferred": 340.0, "kappa": 3.0, "amplitude": 6.0, "baseline": 0.0, "amplitude2": 3.0},
    ]
    activity = synthetic("direction", np.arange(0.0, 360.0, 22.5), 360.0, params, seed=3)
    fit = fit_von_mises(activity, "direction", period=360, two_peaks=True)
    check_recovery(fit, params, 360.0, baseline_tol=0.6, amplitude2_tol=0.7)
    assert (fit["amplitude2"] <= fit["amplitude"]).all()  # the preferred direction is the larger peak
    assert "amplitude2" in fit.attrs["model"]


def test_flat_and_broken_units_are_marked_not_dropped():
    levels = np.arange(0.0, 180.0, 22.5)
    activity = synthetic("orientation", levels, 180.0, ORIENTATION_UNITS[:2], noise=0.2, seed=4)
    flat = xr.full_like(activity.isel(neuroid=[0]), 3.0).assign_coords(neuroid_id=("neuroid", ["v1.flat"]))
    broken = activity.isel(neuroid=[1]).copy().assign_coords(neuroid_id=("neuroid", ["v1.nan"]))
    broken[0, 0] = np.nan
    fit = fit_von_mises(xr.concat([activity, flat, broken], dim="neuroid"), "orientation", period=180)
    assert fit.sizes["neuroid"] == 4
    np.testing.assert_array_equal(fit["converged"].values, [True, True, False, False])
    for var in ("preferred", "kappa", "width", "amplitude", "baseline", "r2"):
        assert np.isnan(fit[var].values[2:]).all(), var
    assert fit["neuroid_id"].values.tolist() == ["v1.0", "v1.1", "v1.flat", "v1.nan"]


def test_cosine_tuning_stops_at_the_amplitude_bound_with_no_width():
    # a pure cosine is the kappa -> 0 limit (amplitude and baseline diverge): the fit stops at
    # AMPLITUDE_BOUND times the range of the means, keeps the preferred angle, and has no half-width
    theta = np.arange(0.0, 360.0, 30.0)
    activity = xr.DataArray((2 + np.cos(np.radians(theta - 120)))[:, None], dims=("presentation", "neuroid"),
                            coords={"direction": ("presentation", theta)})
    fit = fit_von_mises(activity, "direction", 360)
    assert bool(fit["converged"].item()) and np.isnan(fit["width"].item())
    assert fit["preferred"].item() == pytest.approx(120.0, abs=1e-6)
    assert fit["kappa"].item() < np.log(2) / 2 and fit["amplitude"].item() == pytest.approx(AMPLITUDE_BOUND * 2.0)
    assert fit["r2"].item() > 0.999


def test_half_width_matches_numeric_half_height_search():
    for period in (180.0, 360.0):
        for kappa in (0.36, 0.5, 1.0, 2.0, 7.5, 40.0):
            def above_half(x: float) -> float:
                return von_mises(x, 0.0, kappa, 1.0, 0.0, period) - 0.5

            root = scipy.optimize.brentq(above_half, 0.0, period / 2, xtol=1e-12)
            assert half_width(kappa, period) == pytest.approx(root, abs=1e-9)
        # too broad: the peak never falls to half its height
        assert von_mises(period / 2, 0.0, 0.3, 1.0, 0.0, period) > 0.5 and np.isnan(half_width(0.3, period))


def test_fitted_width_and_r2_follow_the_fitted_curve():
    activity = synthetic("orientation", np.arange(0.0, 180.0, 15.0), 180.0, ORIENTATION_UNITS, seed=5)
    fit = fit_von_mises(activity, "orientation", period=180)
    theta = np.arange(0.0, 180.0, 15.0)
    means = activity.groupby("orientation").mean().values
    for u in range(len(ORIENTATION_UNITS)):
        p = {k: float(fit[k].values[u]) for k in ("preferred", "kappa", "amplitude", "baseline")}
        # numeric half-height search on the fitted curve, relative to its baseline
        grid = np.linspace(0.0, 90.0, 900001)
        component = von_mises(p["preferred"] + grid, period=180.0, **{**p, "preferred": p["preferred"]}) - p["baseline"]
        crossing = grid[np.argmax(component <= p["amplitude"] / 2)]
        assert fit["width"].values[u] == pytest.approx(crossing, abs=2e-4)
        model = von_mises(theta, period=180.0, **p)
        r2 = 1 - ((means[:, u] - model) ** 2).sum() / ((means[:, u] - means[:, u].mean()) ** 2).sum()
        assert fit["r2"].values[u] == pytest.approx(r2, rel=1e-9)
        assert KAPPA_BOUNDS[0] <= fit["kappa"].values[u] <= KAPPA_BOUNDS[1]


def test_dask_and_blocks_equal_numpy(monkeypatch):
    activity = synthetic("direction", np.arange(0.0, 360.0, 45.0), 360.0,
                         [{"preferred": 30.0 * i, "kappa": 2.0, "amplitude": 3.0, "baseline": 1.0} for i in range(5)],
                         n_rep=3, seed=6)
    eager = fit_von_mises(activity, "direction", 360.0, two_peaks=True)
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * activity.sizes["presentation"] * 2)  # blocks of 2 units
    blocked = fit_von_mises(activity, "direction", 360.0, two_peaks=True)
    lazy = fit_von_mises(activity.chunk({"presentation": 5, "neuroid": 3}), "direction", 360.0, two_peaks=True)
    xr.testing.assert_identical(eager, blocked)
    xr.testing.assert_identical(eager, lazy)


@pytest.mark.parametrize(
    "by, period, two_peaks, match",
    [
        ("orientation", 0, False, r"period: expected a positive number of degrees \(180 or 360\), found 0"),
        ("orientation", "180", False, r"period: expected a positive number of degrees"),
        ("orientation", 180, "yes", r"two_peaks: expected a bool, found 'yes'"),
        ("name", 180, False, r"by: von Mises fits need angles in degrees, but coordinate 'name' has"),
        ("few", 180, False, r"needs at least 4 distinct angles \(modulo 180\), but 'few' has 3"),
        ("orientation", 90, False, r"needs at least 4 distinct angles \(modulo 90\), but 'orientation' has 2"),
        ("colour", 180, False, r"by: 'colour' is not a coordinate on 'presentation'"),
    ],
)
def test_bad_arguments(by, period, two_peaks, match):
    levels = np.array([0.0, 45.0, 90.0, 135.0])
    activity = synthetic("orientation", levels, 180.0, ORIENTATION_UNITS[:1], n_rep=2)
    activity = activity.assign_coords(name=("presentation", ["a", "b", "c", "d"] * 2),
                                      few=("presentation", [0, 60, 120, 0] * 2))
    with pytest.raises(AnalysisError, match=match):
        fit_von_mises(activity, by, period, two_peaks=two_peaks)


def test_two_peaks_needs_five_angles():
    activity = synthetic("direction", np.array([0.0, 90.0, 180.0, 270.0]), 360.0, ORIENTATION_UNITS[:1], n_rep=2)
    with pytest.raises(AnalysisError, match=r"with 5 parameters needs at least 5 distinct angles"):
        fit_von_mises(activity, "direction", 360, two_peaks=True)
