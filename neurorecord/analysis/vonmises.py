"""Von Mises fits of orientation and direction tuning curves.

Each unit's condition means (mean response per angle) are fitted with

    r(theta) = baseline + amplitude * exp(kappa * (cos(2 pi (theta - preferred) / P) - 1))
               [+ amplitude2 * exp(kappa * (cos(2 pi (theta - preferred - P/2) / P) - 1))]

where P is the period (180 deg for orientation, 360 deg for direction) and the second term,
with ``two_peaks=True``, is a peak of the same width at the opposite direction.
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
import xarray as xr

from ._units import AnalysisError, check_activity, grouping, map_unit_blocks, unit_dataset
from .tuning import _common_attrs, describe_variables, group_means

__all__ = ["fit_von_mises", "von_mises", "half_width", "KAPPA_BOUNDS", "AMPLITUDE_BOUND", "GRID_ANGLES", "GRID_KAPPAS", "N_STARTS"]

#: Bounds of the concentration kappa in the fit.
KAPPA_BOUNDS = (1e-6, 1e3)
#: Bound of the amplitudes (and of the baseline below the lowest mean), in units of the range of
#: the unit's condition means. A unit best described by a cosine (kappa -> 0, where amplitude
#: and baseline diverge) ends at this bound with a small kappa and no half-width.
AMPLITUDE_BOUND = 10.0
#: Grid of initial values: up to GRID_ANGLES preferred angles (the levels) times these kappas.
GRID_ANGLES = 36
GRID_KAPPAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
#: Number of best grid points (distinct preferred angles) refined by least squares.
N_STARTS = 3
_FIELDS = ("preferred", "kappa", "width", "amplitude", "baseline", "r2", "converged", "amplitude2")


def von_mises(theta: np.ndarray, preferred: float, kappa: float, amplitude: float, baseline: float, period: float,
              amplitude2: float = 0.0) -> np.ndarray:
    """The (one- or two-peaked) von Mises tuning curve, evaluated at angles ``theta``.

    Parameters
    ----------
    theta : array_like
        Angles, degrees.
    preferred : float
        Preferred angle, degrees.
    kappa : float
        Concentration (> 0); larger is narrower.
    amplitude : float
        Height of the peak above the baseline (response units).
    baseline : float
        Response far from the peak(s) (response units).
    period : float
        Period of the curve, degrees (180 for orientation, 360 for direction).
    amplitude2 : float, default 0.0
        Height of a second peak at ``preferred + period / 2``.

    Returns
    -------
    numpy.ndarray
        Responses, the shape of ``theta``.

    Examples
    --------
    >>> import numpy as np
    >>> von_mises(np.array([0.0, 90.0, 180.0]), preferred=0, kappa=1, amplitude=2, baseline=1, period=360)
    array([3.        , 1.73575888, 1.27067057])
    """
    phase = 2 * np.pi * (np.asarray(theta, dtype=np.float64) - preferred) / period
    out = baseline + amplitude * np.exp(kappa * (np.cos(phase) - 1.0))
    if amplitude2:
        out = out + amplitude2 * np.exp(kappa * (np.cos(phase - np.pi) - 1.0))
    return out


def half_width(kappa: np.ndarray | float, period: float) -> np.ndarray:
    """Half-width at half-height (degrees) of a von Mises peak of concentration ``kappa``.

    Solves ``exp(kappa * (cos x - 1)) = 1/2``: ``x = arccos(1 + ln(1/2) / kappa)``, converted
    to degrees as ``x * period / (2 pi)``. The height is the peak's own (above the baseline, not
    counting a second peak). NaN when the peak never falls to half its height, i.e. for
    ``kappa < ln(2) / 2`` (very broad tuning).

    Examples
    --------
    >>> half_width(np.array([0.2, 1.0, 10.0]), 360.0)
    array([        nan, 72.13033126, 21.45810893])
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = 1.0 + np.log(0.5) / kappa
        return np.where(c >= -1.0, np.arccos(np.clip(c, -1.0, 1.0)) * period / (2 * np.pi), np.nan)


def _starts(phase: np.ndarray, y: np.ndarray, two_peaks: bool) -> list[np.ndarray]:
    """Initial parameters (phase of preferred, kappa, amplitude, baseline[, amplitude2]).

    For every preferred angle of a grid (the levels, at most GRID_ANGLES of them) and kappa in
    GRID_KAPPAS, the model is linear in amplitude(s) and baseline, which are solved by linear
    least squares; the N_STARTS best grid points with distinct preferred angles (and
    non-negative amplitudes) are returned, best first.
    """
    grid = np.unique(np.mod(phase, 2 * np.pi))
    if len(grid) > GRID_ANGLES:
        grid = grid[np.linspace(0, len(grid) - 1, GRID_ANGLES).round().astype(int)]
    candidates = []
    for mu in grid:
        c = np.cos(phase - mu)
        best: tuple[float, np.ndarray] | None = None
        for kappa in GRID_KAPPAS:
            columns = [np.exp(kappa * (c - 1.0)), np.ones_like(c)] + ([np.exp(kappa * (-c - 1.0))] if two_peaks else [])
            design = np.stack(columns, axis=1)
            coef = np.linalg.lstsq(design, y, rcond=None)[0]
            if coef[0] < 0 or (two_peaks and coef[2] < 0):
                continue
            cost = float(((design @ coef - y) ** 2).sum())
            if best is None or cost < best[0]:
                amplitude, baseline = float(np.clip(coef[0], 0.0, AMPLITUDE_BOUND)), float(coef[1])
                x0 = [mu, kappa, amplitude, float(np.clip(baseline, -AMPLITUDE_BOUND + 1e-9, 1.0 - 1e-9))]
                best = (cost, np.array(x0 + ([float(np.clip(coef[2], 0.0, AMPLITUDE_BOUND))] if two_peaks else [])))
        if best is not None:
            candidates.append(best)
    candidates.sort(key=lambda item: item[0])
    starts = [x for _, x in candidates[:N_STARTS]]
    if not starts:  # no grid point with non-negative amplitudes: start at the largest response
        mu = float(phase[np.argmax(y)])
        starts = [np.array([mu, 2.0, 1.0, 0.0] + ([0.0] if two_peaks else []))]
    return starts


def _fit_unit(angles: np.ndarray, r: np.ndarray, period: float, two_peaks: bool) -> np.ndarray:
    """Fit one unit's condition means; returns the values of _FIELDS (NaN / converged=0 on failure).

    The fit runs on the means rescaled to [0, 1] (``(r - min) / range``), so that amplitudes and
    baseline are of order one, with the analytic Jacobian.
    """
    from scipy.optimize import least_squares

    out = np.full(len(_FIELDS), np.nan)
    out[_FIELDS.index("converged")] = 0.0
    if not np.all(np.isfinite(r)):
        return out
    low, span = float(r.min()), float(np.ptp(r))
    if span <= 1e-12 * max(float(np.abs(r).max()), 1e-300):  # flat: no preferred angle to fit
        return out
    y = (r - low) / span
    phase = 2 * np.pi * angles / period

    def parts(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        c = np.cos(phase - p[0])
        e1 = np.exp(p[1] * (c - 1.0))
        e2 = np.exp(p[1] * (-c - 1.0)) if two_peaks else np.zeros_like(c)
        return c, e1, e2, np.sin(phase - p[0])

    def residuals(p: np.ndarray) -> np.ndarray:
        _, e1, e2, _ = parts(p)
        return p[3] + p[2] * e1 + (p[4] * e2 if two_peaks else 0.0) - y

    def jacobian(p: np.ndarray) -> np.ndarray:
        c, e1, e2, sin = parts(p)
        a2 = p[4] if two_peaks else 0.0
        columns = [p[1] * sin * (p[2] * e1 - a2 * e2), p[2] * e1 * (c - 1.0) + a2 * e2 * (-c - 1.0), e1, np.ones_like(c)]
        return np.stack(columns + ([e2] if two_peaks else []), axis=1)

    lower = [-np.inf, KAPPA_BOUNDS[0], 0.0, -AMPLITUDE_BOUND] + ([0.0] if two_peaks else [])
    upper = [np.inf, KAPPA_BOUNDS[1], AMPLITUDE_BOUND, 1.0] + ([AMPLITUDE_BOUND] if two_peaks else [])
    best = None
    for x0 in _starts(phase, y, two_peaks):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = least_squares(residuals, x0, jac=jacobian, bounds=(lower, upper), method="trf")
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
        if fit.status > 0 and np.all(np.isfinite(fit.x)) and np.isfinite(fit.cost):
            if best is None or fit.cost < best.cost:
                best = fit
    if best is None:
        return out
    m, kappa = float(best.x[0]), float(best.x[1])
    amp, base = float(best.x[2]) * span, low + float(best.x[3]) * span
    amp2 = float(best.x[4]) * span if two_peaks else np.nan
    if two_peaks and amp2 > amp:  # the preferred direction is the larger peak's
        m, amp, amp2 = m + np.pi, amp2, amp
    preferred = float(np.mod(m * period / (2 * np.pi), period))
    if preferred >= period:
        preferred = 0.0
    model = von_mises(angles, preferred, kappa, amp, base, period, 0.0 if np.isnan(amp2) else amp2)
    r2 = 1.0 - float(((r - model) ** 2).sum()) / float(((r - r.mean()) ** 2).sum())
    values = {"preferred": preferred, "kappa": kappa, "width": float(half_width(kappa, period)), "amplitude": amp,
              "baseline": base, "r2": r2, "converged": 1.0, "amplitude2": amp2}
    return np.array([values[f] for f in _FIELDS])


def fit_von_mises(activity: xr.DataArray, by: str, period: float, two_peaks: bool = False) -> xr.Dataset:
    """Fit each unit's tuning curve (condition means vs angle) with a von Mises function.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (a ``time_bin`` dim is averaged over). May be dask-backed; units are then
        fitted block by block by dask.
    by : str
        Name of the ``presentation`` coordinate holding the angle, degrees (``"orientation"``,
        ``"direction"``).
    period : float
        Period of the tuning, degrees: 180 for orientation, 360 for direction.
    two_peaks : bool, default False
        Add a second peak of the same width at ``preferred + period / 2`` (direction tuning
        with a response to the opposite direction), with its own ``amplitude2``.

    Returns
    -------
    xarray.Dataset
        Dims ``(neuroid,)``, every neuroid coordinate kept. Variables:

        - ``preferred``: preferred angle, degrees in [0, period) (with ``two_peaks``, the
          larger peak's);
        - ``kappa``: concentration, bounded to :data:`KAPPA_BOUNDS`;
        - ``width``: half-width at half-height of a peak, degrees (:func:`half_width`); NaN
          where the peak never falls to half its height (kappa < ln 2 / 2, very broad tuning);
        - ``amplitude`` (>= 0), ``baseline``: response units; ``amplitude2`` (>= 0) with
          ``two_peaks``;
        - ``r2``: ``1 - SS_res / SS_tot`` on the condition means;
        - ``converged``: bool. False where the fit failed (every start raised, did not
          converge, or gave non-finite values) or the unit's condition means are all equal
          (a flat unit, which has no preferred angle); those units keep their place with NaN
          parameters.

        ``attrs``: ``analysis``, ``by``, ``period``, ``two_peaks``, ``model``, ``fit``,
        ``n_conditions``, ``activity_units``.

    Raises
    ------
    AnalysisError
        If ``by`` is not a numeric presentation coordinate, ``period`` is not a positive
        number, or there are fewer distinct angles than parameters (4, or 5 with
        ``two_peaks``).

    Notes
    -----
    Each unit is fitted by ``scipy.optimize.least_squares`` (trust region reflective, analytic
    Jacobian) from several starts, keeping the fit with the smallest residual. The starts: over
    a grid of preferred angles (the levels, at most :data:`GRID_ANGLES`) and kappas
    (:data:`GRID_KAPPAS`), amplitude(s) and baseline are solved by linear least squares, and
    the :data:`N_STARTS` best grid points with distinct preferred angles are refined. Bounds: kappa in
    :data:`KAPPA_BOUNDS`; amplitudes in [0, A] and baseline in [min - A, max] with A =
    :data:`AMPLITUDE_BOUND` times the range (max - min) of the unit's condition means. A unit
    whose best description is a cosine (kappa -> 0 with amplitude and baseline diverging) stops
    at these bounds: it is reported as converged, with a small kappa, a NaN width and its r2.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> theta = np.arange(0, 180, 15)
    >>> rates = np.stack([von_mises(theta, 60, 2.0, 5.0, 1.0, 180), np.full(theta.size, 3.0)], axis=1)
    >>> activity = xr.DataArray(rates, dims=("presentation", "neuroid"),
    ...                         coords={"orientation": ("presentation", theta)})
    >>> fit = fit_von_mises(activity, "orientation", period=180)
    >>> np.round(fit["preferred"].values, 3), fit["converged"].values
    (array([60., nan]), array([ True, False]))
    >>> np.round(fit["width"].values[0], 3), np.round(fit["r2"].values[0], 6)
    (np.float64(24.6), np.float64(1.0))
    """
    if not isinstance(period, Real) or isinstance(period, bool) or not np.isfinite(period) or period <= 0:
        raise AnalysisError(f"period: expected a positive number of degrees (180 or 360), found {period!r}")
    if not isinstance(two_peaks, (bool, np.bool_)):
        raise AnalysisError(f"two_peaks: expected a bool, found {two_peaks!r}")
    act = check_activity(activity, by)
    groups = grouping(act, by, min_groups=2)
    if groups.levels.dtype.kind not in "iuf":
        raise AnalysisError(f"by: von Mises fits need angles in degrees, but coordinate {by!r} has "
                            f"{groups.levels.dtype} values ({', '.join(map(str, groups.levels[:5]))}, ...)")
    angles = groups.levels.astype(np.float64)
    n_params = 5 if two_peaks else 4
    n_angles = len(np.unique(np.mod(angles, float(period))))
    if n_angles < n_params:
        raise AnalysisError(f"by: a von Mises fit with {n_params} parameters needs at least {n_params} distinct angles "
                            f"(modulo {period:g}), but {by!r} has {n_angles}")
    codes, n_cond, period_f, peaks = groups.codes, groups.n_groups, float(period), bool(two_peaks)

    def kernel(block: np.ndarray) -> np.ndarray:
        means = group_means(block, codes, n_cond)
        return np.stack([_fit_unit(angles, means[:, u], period_f, peaks) for u in range(block.shape[1])], axis=1)

    fits = map_unit_blocks(kernel, act, len(_FIELDS))
    variables = {f: (("neuroid",), fits[i]) for i, f in enumerate(_FIELDS) if f != "amplitude2" or two_peaks}
    variables["converged"] = (("neuroid",), fits[_FIELDS.index("converged")] == 1.0)
    second = f" + amplitude2 * exp(kappa * (cos(2 pi (theta - preferred - {period_f / 2:g}) / {period_f:g}) - 1))"
    attrs = {
        "analysis": "fit_von_mises",
        "by": by,
        "period": period_f,
        "two_peaks": int(peaks),
        "model": f"baseline + amplitude * exp(kappa * (cos(2 pi (theta - preferred) / {period_f:g}) - 1))"
                 + (second if peaks else ""),
        "fit": f"scipy.optimize.least_squares (trf) on condition means from the {N_STARTS} best points of a grid over "
               f"preferred angle (the levels) and kappa {GRID_KAPPAS}; "
               f"kappa in [{KAPPA_BOUNDS[0]:g}, {KAPPA_BOUNDS[1]:g}], amplitudes in [0, {AMPLITUDE_BOUND:g} x range], "
               f"baseline in [min - {AMPLITUDE_BOUND:g} x range, max] of the condition means",
        "width": "half-width at half-height, degrees; NaN for kappa < ln(2)/2",
        "n_conditions": int(n_cond),
        **_common_attrs(act),
    }
    return describe_variables(unit_dataset(act, variables, attrs=attrs), act, {
        "preferred": (f"preferred {by} (von Mises fit)", "deg"), "kappa": ("concentration kappa (von Mises fit)", "1"),
        "width": ("half-width at half-height (von Mises fit)", "deg"),
        "amplitude": ("peak height above baseline (von Mises fit)", "activity"),
        "amplitude2": ("second peak height above baseline (von Mises fit)", "activity"),
        "baseline": ("baseline response (von Mises fit)", "activity"),
        "r2": ("coefficient of determination of the fit", "1"), "converged": ("fit converged", None)})
