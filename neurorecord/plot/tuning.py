"""Tuning: a unit's tuning curve (with its bootstrap band and von Mises fit), the polar plot of
orientation and direction tuning, the 2-D receptive-field map, and a grid of a region's most
selective units.

The inputs are what :mod:`neurorecord.analysis` returns: :func:`~neurorecord.analysis.tuning_curve`
(``mean``, ``sem``, ``ci_low``, ``ci_high`` per condition and unit),
:func:`~neurorecord.analysis.fit_von_mises` and :func:`~neurorecord.analysis.selectivity`.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.vonmises import von_mises
from ._common import (SEQUENTIAL, PlotError, check_dataset, label, new_axes, new_figure, pick_unit, short, texts, unit_name,
                      wrapped)

__all__ = ["tuning_curve", "polar_tuning", "receptive_field", "selective_units", "BANDS", "CATEGORIES"]

#: What the error band shows: the bootstrap interval, the SEM, or nothing.
BANDS = ("ci", "sem", "none")
_TUNING_VARS = ("mean", "sem", "ci_low", "ci_high")
_FIT_VARS = ("preferred", "kappa", "amplitude", "baseline", "converged", "r2")
#: Coordinates whose values name categories even when they are numbers (class labels).
CATEGORIES = ("label", "class", "category", "digit_index")
#: Period (deg) of the usual angle coordinates, where neither the data nor a fit says.
_PERIODS = {"orientation": 180.0, "direction": 360.0}


def _by_of(tuning: xr.Dataset, name: str = "tuning") -> str:
    by = tuning.attrs.get("by")
    if not isinstance(by, str) or by not in tuning.dims:
        raise PlotError(f"{name}: expected a 1-D tuning_curve result (attrs['by'] a dim of it), found by={by!r} "
                        f"and dims {tuple(tuning.dims)}")
    return by


def _band(unit: xr.Dataset, band: str) -> tuple[np.ndarray, np.ndarray] | None:
    from .._validation import check_choice

    check_choice("band", band, BANDS, error=PlotError)
    mean = np.asarray(unit["mean"].values, dtype=np.float64)
    if band == "ci":
        return np.asarray(unit["ci_low"].values, dtype=np.float64), np.asarray(unit["ci_high"].values, dtype=np.float64)
    if band == "sem":
        sem = np.asarray(unit["sem"].values, dtype=np.float64)
        return mean - sem, mean + sem
    return None


def _fit_params(fit: xr.Dataset, neuroid: str | int) -> tuple[dict, float, float]:
    check_dataset("fit", fit, _FIT_VARS, "a fit_von_mises result")
    unit = pick_unit(fit, neuroid, "neuroid")
    period = float(fit.attrs.get("period", np.nan))
    params = {k: float(unit[k].values) for k in ("preferred", "kappa", "amplitude", "baseline")}
    params["amplitude2"] = float(unit["amplitude2"].values) if "amplitude2" in unit else 0.0
    return params, period, float(unit["r2"].values)


def tuning_curve(tuning: xr.Dataset, neuroid: str | int, band: str = "ci", fit: xr.Dataset | None = None,
                 ax: Axes | None = None) -> Axes:
    """One unit's tuning curve: mean response per condition with error bars or band, and the fit.

    Parameters
    ----------
    tuning : xarray.Dataset
        A 1-D :func:`~neurorecord.analysis.tuning_curve` result (dims ``(by, neuroid)``).
        Numeric conditions (angles, contrasts) are drawn as a line with a shaded band;
        categories (text, or a coordinate named in :data:`CATEGORIES`, such as the integer
        class ``label``) as points with error bars.
    neuroid : str or int
        The unit: its ``neuroid_id``, or its position.
    band : {"ci", "sem", "none"}, default "ci"
        The bootstrap confidence interval (``ci_low`` .. ``ci_high``), mean +- SEM, or nothing.
    fit : xarray.Dataset, optional
        A :func:`~neurorecord.analysis.fit_von_mises` result of the same units: its curve is
        drawn over one period, with r^2 in the legend (not drawn for a unit whose fit did not
        converge).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        x label from the condition coordinate's attrs (``orientation [deg]``), y label from
        ``mean``'s (``mean response [a.u.]``).

    Raises
    ------
    PlotError
        ``tuning`` or ``fit`` is not such a result, an unknown unit or ``band``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis import tuning_curve as tc, fit_von_mises
    >>> theta = np.repeat(np.arange(0, 180, 30), 4)
    >>> rates = 1 + 4 * np.exp(2 * (np.cos(np.deg2rad(2 * (theta - 60))) - 1)) + np.random.default_rng(0).normal(0, 0.3, theta.size)
    >>> act = xr.DataArray(rates[:, None], dims=("presentation", "neuroid"), attrs={"units": "spikes/s"},
    ...                    coords={"orientation": ("presentation", theta, {"units": "deg"}), "neuroid_id": ("neuroid", ["v1.0"])})
    >>> ax = tuning_curve(tc(act, "orientation", n_boot=100), "v1.0", fit=fit_von_mises(act, "orientation", 180))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('orientation [deg]', 'mean response [spikes/s]')
    """
    check_dataset("tuning", tuning, _TUNING_VARS, "a tuning_curve result")
    by = _by_of(tuning)
    unit = pick_unit(tuning, neuroid)
    levels = np.asarray(unit[by].values)
    mean = np.asarray(unit["mean"].values, dtype=np.float64)
    interval = _band(unit, band)
    ax = new_axes(ax)
    numeric = levels.dtype.kind in "iuf" and by not in CATEGORIES
    if numeric:
        x = levels.astype(np.float64)
        if interval is not None:
            ax.fill_between(x, interval[0], interval[1], color="#0072B2", alpha=0.25, lw=0,
                            label="95% CI" if band == "ci" and tuning.attrs.get("ci") == 0.95 else band.upper())
        ax.plot(x, mean, "o-" if fit is None else "o", color="#0072B2", ms=4, lw=1.2, label="mean")
    else:
        x = np.arange(len(levels), dtype=np.float64)
        yerr = None if interval is None else np.abs(np.stack([mean - interval[0], interval[1] - mean]))
        ax.errorbar(x, mean, yerr=yerr, fmt="o", color="#0072B2", ms=4, capsize=3, lw=1.2, label="mean")
        ax.set_xticks(x, [short(v) for v in levels])
    if fit is not None:
        params, period, r2 = _fit_params(fit, neuroid)
        if not numeric:
            raise PlotError(f"fit: a von Mises fit needs angles, but the conditions {by!r} are not numbers")
        if np.isfinite(params["kappa"]):
            theta = np.linspace(0.0, max(period, float(x.max())), 361)
            ax.plot(theta, von_mises(theta, period=period, **params), color="#D55E00", lw=1.5,
                    label=f"von Mises fit ($r^2$ = {r2:.2f})")
    if numeric or fit is not None:
        ax.legend(fontsize="small", frameon=False)
    ax.set_xlabel(label(tuning[by], by))
    ax.set_ylabel(label(tuning["mean"], "mean response"))
    ax.set_title(unit_name(unit) or None)
    return ax


def _period(tuning: xr.Dataset, by: str, fit: xr.Dataset | None, period: float | None) -> float:
    for candidate in (period, None if fit is None else fit.attrs.get("period"), tuning[by].attrs.get("period"),
                      _PERIODS.get(by)):
        if candidate is not None:
            value = float(candidate)
            if not (np.isfinite(value) and value > 0):
                raise PlotError(f"period: expected a positive number of degrees (180 or 360), found {candidate!r}")
            return value
    raise PlotError(f"period: the conditions {by!r} are not known angles and nothing says their period; give "
                    "period=180 (orientation) or 360 (direction)")


def polar_tuning(tuning: xr.Dataset, neuroid: str | int, fit: xr.Dataset | None = None, period: float | None = None,
                 band: str = "ci", ax: Axes | None = None) -> Axes:
    """One unit's orientation or direction tuning on polar axes.

    Direction tuning (period 360 deg) is drawn as it is; orientation tuning (period 180 deg) is
    drawn at each orientation and at its opposite, so the curve closes and a vertical grating
    (orientation 0) reads as the horizontal axis it drifts along.

    Parameters
    ----------
    tuning : xarray.Dataset
        A 1-D :func:`~neurorecord.analysis.tuning_curve` result over an angle in degrees.
    neuroid : str or int
        The unit: its ``neuroid_id``, or its position.
    fit : xarray.Dataset, optional
        A :func:`~neurorecord.analysis.fit_von_mises` result, drawn as a curve.
    period : float, optional
        Period of the angle, deg. Default: the fit's, else the coordinate's ``period`` attr,
        else 180 for ``orientation`` and 360 for ``direction``.
    band : {"ci", "sem", "none"}, default "ci"
        Error band, as in :func:`tuning_curve`.
    ax : matplotlib.axes.Axes, optional
        Polar axes to draw on; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        Polar axes; the radius is the mean response (its label in the title).

    Raises
    ------
    PlotError
        As :func:`tuning_curve`; ``ax`` not polar; non-numeric conditions; no known period.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis import tuning_curve as tc
    >>> act = xr.DataArray(np.array([[1.0], [3.0], [1.0], [2.0]]), dims=("presentation", "neuroid"),
    ...                    coords={"direction": ("presentation", [0, 90, 180, 270])})
    >>> polar_tuning(tc(act, "direction", n_boot=50), 0).name
    'polar'
    """
    check_dataset("tuning", tuning, _TUNING_VARS, "a tuning_curve result")
    by = _by_of(tuning)
    if ax is not None and getattr(ax, "name", "") != "polar":
        raise PlotError(f"ax: expected polar axes (add_subplot(projection='polar')), found {getattr(ax, 'name', ax)!r}")
    unit = pick_unit(tuning, neuroid)
    levels = np.asarray(unit[by].values)
    if levels.dtype.kind not in "iuf":
        raise PlotError(f"tuning: a polar plot needs angles in degrees, but {by!r} has {levels.dtype} values")
    p = _period(tuning, by, fit, period)
    mean = np.asarray(unit["mean"].values, dtype=np.float64)
    interval = _band(unit, band)
    copies = 2 if p == 180.0 else 1
    theta = np.concatenate([levels.astype(np.float64) + 180.0 * c for c in range(copies)])
    order = np.argsort(theta)
    close = np.r_[order, order[:1]]
    rad = np.deg2rad(theta)
    ax = new_axes(ax, 4.2, 4.2, projection="polar")
    if interval is not None:
        low, high = np.tile(interval[0], copies), np.tile(interval[1], copies)
        ax.fill_between(rad[close], low[close], high[close], color="#0072B2", alpha=0.25, lw=0)
    ax.plot(rad[close], np.tile(mean, copies)[close], "o-" if fit is None else "o", color="#0072B2", ms=4, lw=1.2)
    if fit is not None:
        params, fit_period, r2 = _fit_params(fit, neuroid)
        if np.isfinite(params["kappa"]):
            dense = np.linspace(0.0, 360.0, 721)
            ax.plot(np.deg2rad(dense), von_mises(dense, period=fit_period, **params), color="#D55E00", lw=1.5,
                    label=f"von Mises fit ($r^2$ = {r2:.2f})")
            ax.legend(fontsize="small", frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.set_rlabel_position(22.5)
    ax.tick_params(axis="y", labelsize="small", labelcolor="0.35")
    name = unit_name(unit)
    ax.set_title((f"{name}\n" if name else "") + f"angle: {label(tuning[by], by)}; "
                 f"radius: {label(tuning['mean'], 'mean response')}", fontsize="medium", pad=14)
    return ax


def receptive_field(tuning: xr.Dataset, neuroid: str | int, ax: Axes | None = None) -> Axes:
    """A unit's 2-D receptive-field map: its mean response at every (x, y) stimulus position.

    Parameters
    ----------
    tuning : xarray.Dataset
        A 2-D :func:`~neurorecord.analysis.tuning_curve` result (``by=["x", "y"]``, as the
        ``rf-map`` analysis of ``protocols/gabor-rf-mapping.yaml``), dims ``(by1, by2,
        neuroid)``. The coordinate named ``x`` (else the first) runs along the horizontal axis;
        y points up.
    neuroid : str or int
        The unit: its ``neuroid_id``, or its position.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        Equal aspect, viridis, with a colour bar labelled from ``mean``'s attrs; positions never
        presented are blank.

    Raises
    ------
    PlotError
        ``tuning`` is not a 2-D tuning_curve result, an unknown unit.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis import tuning_curve as tc
    >>> x, y = np.meshgrid([-2, 0, 2], [-2, 0, 2])
    >>> act = xr.DataArray(np.exp(-(x.ravel() ** 2 + y.ravel() ** 2) / 4)[:, None], dims=("presentation", "neuroid"),
    ...                    coords={"x": ("presentation", x.ravel()), "y": ("presentation", y.ravel())})
    >>> ax = receptive_field(tc(act, ["x", "y"], n_boot=10), 0)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('x', 'y')
    """
    check_dataset("tuning", tuning, ("mean",), "a tuning_curve result")
    by = tuning.attrs.get("by")
    if not (isinstance(by, (list, tuple)) and len(by) == 2 and all(b in tuning.dims for b in by)):
        raise PlotError(f"tuning: expected a 2-D tuning_curve result (by=[x, y]), found by={by!r} and dims "
                        f"{tuple(tuning.dims)}")
    bx, byy = (by[0], by[1]) if by[1] != "x" else (by[1], by[0])
    unit = pick_unit(tuning, neuroid)
    values = np.asarray(unit["mean"].transpose(byy, bx).values, dtype=np.float64)
    xs = np.asarray(unit[bx].values, dtype=np.float64)
    ys = np.asarray(unit[byy].values, dtype=np.float64)
    ax = new_axes(ax, 4.4, 3.8)
    mesh = ax.pcolormesh(_edges(xs), _edges(ys), np.ma.masked_invalid(values), cmap=SEQUENTIAL, shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label=wrapped(label(tuning["mean"], "mean response")))
    ax.set_aspect("equal")
    ax.set_xlabel(label(tuning[bx], bx))
    ax.set_ylabel(label(tuning[byy], byy))
    ax.set_title(unit_name(unit) or None)
    return ax


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (half-way between neighbours; one cell of width 1 alone)."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.r_[centres[0] - (mid[0] - centres[0]), mid, centres[-1] + (centres[-1] - mid[-1])]


def selective_units(tuning: xr.Dataset, selectivity: xr.Dataset, variable: str | None = None, n_units: int = 9,
                    band: str = "ci") -> Figure:
    """A grid of the tuning curves of a region's ``n_units`` most selective units.

    Parameters
    ----------
    tuning : xarray.Dataset
        A 1-D :func:`~neurorecord.analysis.tuning_curve` result.
    selectivity : xarray.Dataset
        A :func:`~neurorecord.analysis.selectivity` result of the same units (matched by
        ``neuroid_id``).
    variable : str, optional
        The per-unit index to rank by (largest first, NaN last). Default: the index named in
        ``selectivity.attrs["index"]`` (``csi``), else its first per-unit variable.
    n_units : int, default 9
        Number of panels.
    band : {"ci", "sem", "none"}, default "ci"
        Error bars, as in :func:`tuning_curve`.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per unit, titled with its ``neuroid_id`` and index value, best first.

    Raises
    ------
    PlotError
        Not such results, an unknown ``variable``, no unit in common, ``n_units`` < 1.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis import tuning_curve as tc, selectivity
    >>> rng = np.random.default_rng(0)
    >>> act = xr.DataArray(rng.random((20, 5)), dims=("presentation", "neuroid"),
    ...                    coords={"label": ("presentation", np.arange(20) % 4), "neuroid_id": ("neuroid", list("abcde"))})
    >>> fig = selective_units(tc(act, "label", n_boot=20), selectivity(act, "label", "csi"), n_units=4)
    >>> len(fig.axes)
    4
    """
    check_dataset("tuning", tuning, _TUNING_VARS, "a tuning_curve result")
    _by_of(tuning)
    if not isinstance(selectivity, xr.Dataset):
        raise PlotError(f"selectivity: expected a selectivity result (an xarray.Dataset), found {type(selectivity).__name__}")
    per_unit = [str(k) for k, v in selectivity.data_vars.items() if v.dims == ("neuroid",) and v.dtype.kind in "f"
                and not str(k).startswith("preferred")]
    if variable is None:
        index = selectivity.attrs.get("index")
        variable = index if index in per_unit else (per_unit[0] if per_unit else None)
    if variable not in per_unit:
        raise PlotError(f"variable: expected a per-unit index of selectivity, found {variable!r}; per-unit indices: "
                        f"{', '.join(per_unit) or 'none'}")
    if isinstance(n_units, bool) or not isinstance(n_units, (int, np.integer)) or n_units < 1:
        raise PlotError(f"n_units: expected an integer >= 1, found {n_units!r}")
    ids = texts(selectivity["neuroid_id"].values)
    common = np.isin(ids, texts(tuning["neuroid_id"].values))
    if not common.any():
        raise PlotError("selectivity: expected units of tuning (the same neuroid_id), found none in common")
    values = np.asarray(selectivity[variable].values, dtype=np.float64)
    ranked = np.flatnonzero(common)[np.argsort(np.where(np.isfinite(values[common]), -values[common], np.inf), kind="stable")]
    chosen = ranked[: int(n_units)]
    cols = min(4, math.ceil(math.sqrt(len(chosen))))
    rows = math.ceil(len(chosen) / cols)
    fig = new_figure(2.6 * cols, 2.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    name = label(selectivity[variable], variable)
    for panel, i in zip(axes.ravel(), chosen):
        tuning_curve(tuning, ids[i], band=band, ax=panel)
        if panel.get_legend() is not None:
            panel.get_legend().remove()
        panel.set_title(f"{ids[i]}  {variable} {values[i]:.2f}", fontsize="small")
        panel.tick_params(labelsize="small")
        panel.xaxis.label.set_size("small")
        panel.yaxis.label.set_size("small")
    for panel in axes.ravel()[len(chosen):]:
        fig.delaxes(panel)
    for k, panel in enumerate(axes.ravel()[: len(chosen)]):
        if k + cols < len(chosen):  # a panel below says it
            panel.set_xlabel("")
        if k % cols:
            panel.set_ylabel("")
    fig.suptitle(f"{len(chosen)} most selective units by {name}", fontsize="medium")
    return fig
