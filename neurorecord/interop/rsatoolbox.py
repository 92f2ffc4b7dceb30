"""Recordings to and from rsatoolbox's ``Dataset`` (the RSA toolbox's data object).

rsatoolbox keeps the measurements as an ``observations x channels`` array with descriptor
dictionaries; the recording layout maps onto it one to one:

===============================  ==================================================
recording                        ``rsatoolbox.data.Dataset``
===============================  ==================================================
``activity`` (presentation x     ``measurements`` (n_obs x n_channel), float64
neuroid)
every coordinate on              ``obs_descriptors`` (``stimulus_id``,
``presentation``                 ``repetition``, ``label``, ...)
every coordinate on ``neuroid``  ``channel_descriptors`` (``neuroid_id``, ``region``)
scalar ``attrs``                 ``descriptors``
===============================  ==================================================

With ``by=``, the presentations are first averaged per condition (one observation per value
of ``by``; the coordinates constant within a condition become its descriptors and ``n`` the
number of presentations averaged). rsatoolbox is an optional dependency (``pip install
neurorecord[rsa]``); it is imported only when a function here is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..analysis._units import check_activity
from ..compare._common import condition_means, presentation_coords
from . import InteropError, _provenance

__all__ = ["to_rsatoolbox", "from_rsatoolbox"]


def _rsatoolbox(function: str) -> Any:
    try:
        import rsatoolbox.data
    except ImportError as exc:
        raise ImportError(f"{function} needs rsatoolbox ({exc}); install it with `pip install neurorecord[rsa]`") from exc
    return rsatoolbox


def _scalar_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if isinstance(v, (str, int, float, bool, np.number))}


def to_rsatoolbox(activity: xr.DataArray, by: str | None = None) -> Any:
    """A recording's activity as an ``rsatoolbox.data.Dataset``, its labels as descriptors.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (a ``time_bin`` dim is averaged over). May be dask-backed (it is loaded).
    by : str, optional
        Average the presentations per value of this ``presentation`` coordinate first (one
        observation per condition, sorted by value). Default: one observation per presentation.

    Returns
    -------
    rsatoolbox.data.Dataset
        ``measurements`` float64 (observations x units); ``obs_descriptors`` every presentation
        coordinate (with ``by``: ``by``, ``n`` and the coordinates constant within each
        condition); ``channel_descriptors`` every neuroid coordinate (``neuroid_id`` included);
        ``descriptors`` the scalar ``attrs`` of ``activity`` (with ``by`` when given).

    Raises
    ------
    ImportError
        rsatoolbox is not installed (``pip install neurorecord[rsa]``).
    neurorecord.errors.AnalysisError
        Wrong dims or an unknown ``by``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> activity = xr.DataArray(np.arange(8.0).reshape(4, 2), dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b", "a", "b"]), "repetition": ("presentation", [0, 0, 1, 1]),
    ...             "neuroid_id": ("neuroid", ["v1.0", "v1.1"])})
    >>> data = to_rsatoolbox(activity, by="stimulus_id")
    >>> data.measurements, data.obs_descriptors["stimulus_id"].tolist(), data.channel_descriptors["neuroid_id"].tolist()
    (array([[2., 3.],
           [4., 5.]]), ['a', 'b'], ['v1.0', 'v1.1'])
    """
    rsatoolbox = _rsatoolbox("to_rsatoolbox")
    act = check_activity(activity, by)
    channels = {c: np.asarray(act.coords[c].values) for c in act.coords
                if act.coords[c].dims == ("neuroid",) and c != "neuroid"}
    descriptors = _scalar_attrs(dict(act.attrs))
    if by is None:
        measurements = np.asarray(act.values, dtype=np.float64)
        obs = {c: np.asarray(act.coords[c].values) for c in presentation_coords(act)}
    else:
        means = condition_means(act, by, min_conditions=1)
        measurements = means.values
        obs = {by: means.levels, "n": means.counts, **means.coords}
        descriptors["by"] = by
    return rsatoolbox.data.Dataset(measurements, descriptors=descriptors, obs_descriptors=obs,
                                   channel_descriptors=channels)


def from_rsatoolbox(dataset: Any, stimulus_key: str = "stimulus_id", neuroid_key: str = "neuroid_id") -> xr.DataArray:
    """An ``rsatoolbox.data.Dataset`` as a recording's activity (presentation x neuroid).

    Parameters
    ----------
    dataset : rsatoolbox.data.Dataset
        The data; its ``measurements`` are observations x channels.
    stimulus_key : str, default "stimulus_id"
        The obs descriptor that becomes ``stimulus_id`` (required: every recording has one).
    neuroid_key : str, default "neuroid_id"
        The channel descriptor that becomes ``neuroid_id``; when the dataset has none, the ids
        are ``channel.0``, ``channel.1``, ...

    Returns
    -------
    xarray.DataArray, dims (presentation, neuroid), float64
        Every obs descriptor a ``presentation`` coordinate, every channel descriptor a
        ``neuroid`` coordinate (as strings: ``stimulus_id``, ``neuroid_id``); ``attrs`` the
        dataset's scalar descriptors plus the converter's provenance.

    Raises
    ------
    ImportError
        rsatoolbox is not installed.
    neurorecord.errors.InteropError
        Not an rsatoolbox Dataset, or no ``stimulus_key`` obs descriptor (the message lists
        those there are).

    Examples
    --------
    >>> import numpy as np, rsatoolbox
    >>> data = rsatoolbox.data.Dataset(np.eye(3), obs_descriptors={"stimulus_id": ["a", "b", "c"]})
    >>> activity = from_rsatoolbox(data)
    >>> activity.dims, activity.neuroid_id.values.tolist()
    (('presentation', 'neuroid'), ['channel.0', 'channel.1', 'channel.2'])
    """
    rsatoolbox = _rsatoolbox("from_rsatoolbox")
    if not isinstance(dataset, rsatoolbox.data.dataset.DatasetBase):
        raise InteropError(f"dataset: expected an rsatoolbox.data.Dataset, found {type(dataset).__name__}")
    measurements = np.asarray(dataset.measurements, dtype=np.float64)
    if measurements.ndim != 2:
        raise InteropError(f"dataset: expected measurements of observations x channels, found shape {measurements.shape}")
    obs = {k: np.asarray(v) for k, v in dataset.obs_descriptors.items()}
    channels = {k: np.asarray(v) for k, v in dataset.channel_descriptors.items()}
    if stimulus_key not in obs:
        raise InteropError(f"stimulus_key: expected an obs descriptor {stimulus_key!r} naming the stimulus of every "
                           f"observation, found only {', '.join(map(repr, obs)) or 'none'}")
    coords: dict[str, Any] = {("stimulus_id" if k == stimulus_key else k): ("presentation", v) for k, v in obs.items()}
    coords["stimulus_id"] = ("presentation", obs[stimulus_key].astype(str))
    ids = channels.pop(neuroid_key).astype(str) if neuroid_key in channels else \
        np.array([f"channel.{i}" for i in range(measurements.shape[1])])
    coords.update({k: ("neuroid", v) for k, v in channels.items() if k != "neuroid_id"})
    coords["neuroid_id"] = ("neuroid", ids)
    attrs = {**_scalar_attrs(dict(dataset.descriptors)),
             **_provenance("neurorecord.interop.from_rsatoolbox", ("rsatoolbox", "numpy", "xarray"))}
    return xr.DataArray(measurements, dims=("presentation", "neuroid"), coords=coords, attrs=attrs)
