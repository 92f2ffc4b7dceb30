"""Time-resolved activity of one unit: the raster and the peri-stimulus time histogram (PSTH).

Both take a recording's ``activity`` with dims ``presentation x neuroid x time_bin`` and
coordinates ``time_bin_start`` / ``time_bin_end`` in ms after stimulus onset: a time-resolved
model recording, or binned spike counts of a biological one
(:func:`neurorecord.interop.read_ecker2010`). The stimulus window is shaded: from the
``epoch`` coordinate where the recording has one (the bins whose epoch is ``"stimulus"``), or
as given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.axes import Axes

from ._common import (DIVERGING, SEQUENTIAL, PlotError, category_colors, label, new_axes, pick_unit, short,
                      symmetric_limits, texts, unit_name, wrapped)

__all__ = ["raster", "psth"]

#: Most condition lines a PSTH gives a legend; beyond, a colour bar over the condition's values.
MAX_LEGEND = 10


def _unit_time(activity: xr.DataArray, neuroid: str | int) -> tuple[xr.DataArray, np.ndarray]:
    """(presentation, time_bin) of one unit, and the bin edges in ms (n_bins + 1)."""
    if not isinstance(activity, xr.DataArray):
        raise PlotError(f"activity: expected an xarray.DataArray (presentation x neuroid x time_bin), "
                        f"found {type(activity).__name__}")
    if set(activity.dims) != {"presentation", "neuroid", "time_bin"}:
        raise PlotError(f"activity: expected dims ('presentation', 'neuroid', 'time_bin'), found {activity.dims}; "
                        "a raster or PSTH needs a time-resolved recording")
    missing = [c for c in ("time_bin_start", "time_bin_end") if c not in activity.coords]
    if missing:
        raise PlotError(f"activity: expected the time_bin coordinates time_bin_start and time_bin_end (ms), "
                        f"found no {', '.join(missing)}")
    unit = pick_unit(activity, neuroid).transpose("presentation", "time_bin")
    start = np.asarray(activity["time_bin_start"].values, dtype=np.float64)
    end = np.asarray(activity["time_bin_end"].values, dtype=np.float64)
    return unit, np.append(start, end[-1])


def _stimulus_window(activity: xr.DataArray, stimulus: Sequence[float] | None, edges: np.ndarray) -> tuple[float | None, float | None]:
    if stimulus is not None:
        if len(stimulus) != 2:
            raise PlotError(f"stimulus: expected (onset, offset) in ms, found {stimulus!r}")
        return float(stimulus[0]), None if stimulus[1] is None else float(stimulus[1])
    if "epoch" in activity.coords:
        on = texts(activity["epoch"].values) == "stimulus"
        if on.any():
            return float(edges[:-1][on].min()), float(edges[1:][on].max())
    return (0.0, None) if edges[0] <= 0.0 <= edges[-1] else (None, None)


def _mark_stimulus(ax: Axes, window: tuple[float | None, float | None], edges: np.ndarray) -> None:
    on, off = window
    if on is None:
        return
    ax.axvspan(on, edges[-1] if off is None else off, color="0.85", zorder=0, lw=0)
    ax.axvline(on, color="0.3", lw=0.8, ls="--", zorder=1)
    if off is not None:
        ax.axvline(off, color="0.3", lw=0.8, ls="--", zorder=1)


def _values(coord: xr.DataArray) -> np.ndarray:
    """A coordinate's values: numbers as they are, anything else as text."""
    values = np.asarray(coord.values)
    return values if values.dtype.kind in "biuf" else texts(values)


def _time_label(activity: xr.DataArray) -> str:
    return label({"units": "ms", **activity["time_bin_start"].attrs, "long_name": "time after stimulus onset"})


def _check_by(activity: xr.DataArray, by: str | None, name: str) -> None:
    if by is None:
        return
    if not isinstance(by, str) or by not in activity.coords or activity[by].dims != ("presentation",):
        valid = sorted(str(c) for c in activity.coords if activity[c].dims == ("presentation",))
        raise PlotError(f"{name}: expected a presentation coordinate, found {by!r}; presentation coordinates: "
                        f"{', '.join(valid)}")


def raster(activity: xr.DataArray, neuroid: str | int, sort_by: str | None = None,
           stimulus: Sequence[float] | None = None, ax: Axes | None = None) -> Axes:
    """Raster of one unit: one row per trial, time in ms, trials sorted by a stimulus coordinate.

    Spike counts (non-negative integers, as binned biological data) are drawn as ticks: a bin
    with k spikes gets k ticks spread evenly within it. Other activity (a model's) is drawn as
    an image, one row per trial, coloured by the response with a colour bar (viridis, or RdBu_r
    centred at 0 where responses are signed).

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid, time_bin)
        With ``time_bin_start`` and ``time_bin_end`` (ms after stimulus onset). May be
        dask-backed: only the chosen unit is read.
    neuroid : str or int
        The unit: its ``neuroid_id``, or its position.
    sort_by : str, optional
        A ``presentation`` coordinate (``"direction"``, ``"label"``): trials are sorted by it
        (stably, so repetitions keep their order), groups are separated by a line and the y
        axis names each group. Default: the presentations' order.
    stimulus : (float, float or None), optional
        Onset and offset of the stimulus, ms. Default: from the ``epoch`` coordinate, else onset
        at 0 ms when the bins span it.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    PlotError
        ``activity`` is not time-resolved or lacks the bin coordinates; an unknown unit or
        ``sort_by``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> counts = np.random.default_rng(0).poisson(1.0, size=(6, 1, 20)).astype("float32")
    >>> act = xr.DataArray(counts, dims=("presentation", "neuroid", "time_bin"), coords={
    ...     "direction": ("presentation", [0, 90, 0, 90, 0, 90]), "neuroid_id": ("neuroid", ["V1.u0"]),
    ...     "time_bin_start": ("time_bin", np.arange(20) * 10.0 - 50), "time_bin_end": ("time_bin", np.arange(20) * 10.0 - 40)})
    >>> ax = raster(act, "V1.u0", sort_by="direction")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('time after stimulus onset [ms]', 'direction')
    """
    _check_by(activity, sort_by, "sort_by")
    unit, edges = _unit_time(activity, neuroid)
    values = np.asarray(unit.values, dtype=np.float64)
    order = np.arange(values.shape[0])
    if sort_by is not None:
        order = np.argsort(_values(unit[sort_by]), kind="stable")
    values = values[order]
    ax = new_axes(ax, 4.8, 4.0)
    n = values.shape[0]
    counts = bool(np.all(np.isfinite(values)) and np.all(values >= 0) and np.all(values == np.round(values)))
    if counts:
        trial, bin_ = np.nonzero(values)
        k = values[trial, bin_].astype(np.int64)
        rows = np.repeat(trial, k)
        left, width = edges[:-1][np.repeat(bin_, k)], np.diff(edges)[np.repeat(bin_, k)]
        slot = np.arange(len(rows)) - np.repeat(np.cumsum(k) - k, k)
        x = left + width * (slot + 0.5) / np.repeat(k, k)
        ax.scatter(x, rows, marker="|", s=12, lw=0.8, color="black")
    else:
        signed = bool(np.nanmin(values) < 0)
        vmin, vmax = symmetric_limits(values) if signed else (None, None)
        mesh = ax.pcolormesh(edges, np.arange(n + 1) - 0.5, values, cmap=DIVERGING if signed else SEQUENTIAL,
                             vmin=vmin, vmax=vmax, shading="flat")
        ax.figure.colorbar(mesh, ax=ax, label=wrapped(label(activity, "response")))
    _mark_stimulus(ax, _stimulus_window(activity, stimulus, edges), edges)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(n - 0.5, -0.5)
    if sort_by is not None:
        key = _values(unit[sort_by])[order]
        keys = texts(key)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        stops = np.r_[starts[1:], n]
        for s in starts[1:]:
            ax.axhline(s - 0.5, color="0.5", lw=0.5)
        step = max(1, int(np.ceil(len(starts) / 16)))  # at most 16 group names on the axis
        ax.set_yticks((starts[::step] + stops[::step] - 1) / 2, [short(key[s]) for s in starts[::step]])
        ax.set_ylabel(label(activity[sort_by], sort_by))
    else:
        ax.set_ylabel("trial")
    ax.set_xlabel(_time_label(activity))
    ax.set_title(unit_name(unit) or None)
    return ax


def psth(activity: xr.DataArray, neuroid: str | int, by: str | None = None, stimulus: Sequence[float] | None = None,
         rate: bool = False, ax: Axes | None = None) -> Axes:
    """Peri-stimulus time histogram of one unit: mean response per time bin, with its SEM band.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid, time_bin)
        With ``time_bin_start`` and ``time_bin_end`` (ms after stimulus onset). May be
        dask-backed: only the chosen unit is read.
    neuroid : str or int
        The unit: its ``neuroid_id``, or its position.
    by : str, optional
        A ``presentation`` coordinate: one line per value (with a legend, or a colour bar over
        the values when there are more than :data:`MAX_LEGEND`). Default: one line over all trials.
    stimulus : (float, float or None), optional
        Onset and offset of the stimulus, ms (default as in :func:`raster`).
    rate : bool, default False
        Divide by the bin width: spike counts per bin become a firing rate in spikes/s.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        The y label is the activity's ``long_name [units]`` ("mean ..."), or ``firing rate
        [spikes/s]`` with ``rate``.

    Raises
    ------
    PlotError
        As :func:`raster`, and for an unknown ``by``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> counts = np.random.default_rng(0).poisson(1.0, size=(6, 1, 20)).astype("float32")
    >>> act = xr.DataArray(counts, dims=("presentation", "neuroid", "time_bin"), coords={
    ...     "time_bin_start": ("time_bin", np.arange(20) * 10.0), "time_bin_end": ("time_bin", np.arange(20) * 10.0 + 10)},
    ...     attrs={"long_name": "spike count", "units": "spikes per bin"})
    >>> psth(act, 0).get_ylabel(), psth(act, 0, rate=True).get_ylabel()
    ('mean spike count [spikes per bin]', 'firing rate [spikes/s]')
    """
    _check_by(activity, by, "by")
    if not isinstance(rate, (bool, np.bool_)):
        raise PlotError(f"rate: expected a bool, found {rate!r}")
    unit, edges = _unit_time(activity, neuroid)
    values = np.asarray(unit.values, dtype=np.float64)
    if rate:
        values = values * (1000.0 / np.diff(edges))[None, :]
    centres = (edges[:-1] + edges[1:]) / 2
    ax = new_axes(ax)
    if by is None:
        groups, names = [np.arange(values.shape[0])], [None]
    else:
        key = _values(unit[by])
        levels = np.unique(key)
        groups = [np.flatnonzero(key == v) for v in levels]
        names = list(levels)
    many = len(groups) > MAX_LEGEND
    if many:
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        numeric = np.asarray(names).dtype.kind in "iuf"
        scale = Normalize(float(np.min(names)), float(np.max(names))) if numeric else Normalize(0, len(names) - 1)
        cmap = colormaps[SEQUENTIAL]
        colors = [cmap(scale(v if numeric else i)) for i, v in enumerate(names)]
    else:
        colors = category_colors(len(groups)) if by is not None else ["black"]
    for rows, name, color in zip(groups, names, colors):
        mean = values[rows].mean(axis=0)
        sem = values[rows].std(axis=0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else np.zeros_like(mean)
        ax.fill_between(centres, mean - sem, mean + sem, color=color, alpha=0.25, lw=0)
        ax.plot(centres, mean, color=color, lw=1.2, label=None if name is None else short(name))
    _mark_stimulus(ax, _stimulus_window(activity, stimulus, edges), edges)
    ax.set_xlim(edges[0], edges[-1])
    if by is not None and many:
        mappable = ScalarMappable(norm=scale, cmap=cmap)
        ax.figure.colorbar(mappable, ax=ax, label=wrapped(label(activity[by], by)))
    elif by is not None:
        ax.legend(title=label(activity[by], by), fontsize="small", title_fontsize="small", frameon=False,
                  loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel(_time_label(activity))
    if rate:
        ax.set_ylabel("firing rate [spikes/s]")
    else:
        ax.set_ylabel("mean " + label(activity, "response"))
    ax.set_title(unit_name(unit) or None)
    return ax
