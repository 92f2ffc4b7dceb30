"""A response window of a binned recording: the spike count (or rate) of each presentation and
neuroid in ``[start_ms, stop_ms)`` after stimulus onset.

It works on any ``presentation x neuroid x time_bin`` recording with ``time_bin_start`` /
``time_bin_end`` in ms: :func:`neurorecord.interop.read_ecker2010`,
:func:`neurorecord.interop.from_neo`, or a model's time-binned regions. Split from
:mod:`neurorecord.interop.ecker2010`, which only reads the data file.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import InteropError

__all__ = ["response_window"]


def response_window(activity: xr.DataArray, start_ms: float = 50.0, stop_ms: float = 550.0,
                    rate: bool = False) -> xr.DataArray:
    """Spike count (or mean rate) of each presentation and neuroid in a window after onset.

    Parameters
    ----------
    activity : xarray.DataArray
        Binned spike counts with dims ``presentation``, ``neuroid`` and ``time_bin`` and the
        coordinates ``time_bin_start`` and ``time_bin_end`` (ms relative to stimulus onset), as
        :func:`neurorecord.interop.read_ecker2010` and :func:`neurorecord.interop.from_neo` give. Dask-backed input
        stays lazy.
    start_ms, stop_ms : float, default 50.0 and 550.0
        The window ``[start_ms, stop_ms)`` in ms after stimulus onset. Both must be bin edges, so
        the window is a whole number of bins and the result is exact; the default is the
        500 ms stimulus shifted by the ~50 ms response latency of V1.
    rate : bool, default False
        False: the spike count in the window (sum over its bins, unit ``"spikes"``). True: that
        count divided by the window's duration in seconds (unit ``"spikes/s"``).

    Returns
    -------
    xarray.DataArray
        float64, dims (presentation, neuroid), every presentation and neuroid coordinate kept;
        ``attrs``: ``units``, ``long_name``, ``window_start_ms``, ``window_stop_ms``,
        ``n_time_bins``.

    Raises
    ------
    InteropError
        ``activity`` is not a DataArray with those dims and coordinates, its time-bin unit is
        not ms, the window is empty, or a window end is not a bin edge (the nearest edges are
        named).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> edges = np.arange(-20.0, 40.0, 10.0)
    >>> counts = xr.DataArray(np.array([[[1, 0, 2, 1, 3]], [[0, 0, 1, 1, 0]]], dtype=np.float32),
    ...     dims=("presentation", "neuroid", "time_bin"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b"]), "neuroid_id": ("neuroid", ["V1.0"]),
    ...             "time_bin_start": ("time_bin", edges[:-1]), "time_bin_end": ("time_bin", edges[1:])})
    >>> response_window(counts, 0, 30).values.ravel().tolist()
    [6.0, 2.0]
    >>> r = response_window(counts, 0, 20, rate=True)
    >>> r.values.ravel().tolist(), r.attrs["units"]
    ([150.0, 100.0], 'spikes/s')
    """
    if not isinstance(activity, xr.DataArray):
        raise InteropError(f"activity: expected an xarray.DataArray (presentation x neuroid x time_bin), found {type(activity).__name__}")
    if set(activity.dims) != {"presentation", "neuroid", "time_bin"}:
        raise InteropError(f"activity: expected dims ('presentation', 'neuroid', 'time_bin'), found {activity.dims}")
    for name in ("time_bin_start", "time_bin_end"):
        coord = activity.coords.get(name)
        if coord is None or coord.dims != ("time_bin",):
            raise InteropError(f"activity: needs the coordinate {name!r} on 'time_bin' (ms after stimulus onset); it has none")
        unit = coord.attrs.get("units", "ms")
        if unit != "ms":
            raise InteropError(f"activity: coordinate {name!r} is in {unit!r}; response_window expects 'ms'")
    starts = np.asarray(activity["time_bin_start"].values, dtype=np.float64)
    ends = np.asarray(activity["time_bin_end"].values, dtype=np.float64)
    if not stop_ms > start_ms:
        raise InteropError(f"stop_ms: must be greater than start_ms={start_ms}, found {stop_ms}")
    edges = np.union1d(starts, ends)
    for name, value in (("start_ms", start_ms), ("stop_ms", stop_ms)):
        if not np.any(edges == value):
            below, above = edges[edges < value], edges[edges > value]
            near = ", ".join(f"{e:g}" for e in (below[-1:].tolist() + above[:1].tolist()))
            raise InteropError(
                f"{name}: {value:g} ms is not a time-bin edge (nearest: {near or 'none'}); "
                f"the bins span {edges[0]:g} to {edges[-1]:g} ms"
            )
    inside = np.flatnonzero((starts >= start_ms) & (ends <= stop_ms))
    covered = float(np.sum(ends[inside] - starts[inside]))
    if not np.isclose(covered, stop_ms - start_ms, rtol=0, atol=1e-9):
        raise InteropError(f"start_ms, stop_ms: the bins in [{start_ms:g}, {stop_ms:g}) ms cover {covered:g} ms, not the whole window")
    window = activity.isel(time_bin=inside).astype(np.float64).sum("time_bin")
    unit = "spikes"
    if rate:
        window = window / ((stop_ms - start_ms) / 1000.0)
        unit = "spikes/s"
    window = window.transpose("presentation", "neuroid")
    window.attrs = {
        "units": unit,
        "long_name": ("mean firing rate" if rate else "spike count") + f" in [{start_ms:g}, {stop_ms:g}) ms after onset",
        "window_start_ms": float(start_ms),
        "window_stop_ms": float(stop_ms),
        "n_time_bins": int(len(inside)),
    }
    window.name = "rate" if rate else "spike_count"
    return window
