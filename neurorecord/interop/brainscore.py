"""Recordings as Brain-Score assemblies: the xarray object a ``NeuroidAssembly`` is.

Brain-Score (brainio) keeps neural data as an ``xarray.DataArray`` subclass,
``NeuroidAssembly``, whose conventions the recording layout already follows:

- dims ``presentation x neuroid`` (``x time_bin`` for time-resolved data);
- every coordinate of a dim is a level of one ``pandas.MultiIndex`` on that dim (brainio's
  ``gather_indexes``): on ``presentation`` ``stimulus_id`` (required, str), ``repetition`` and
  the stimulus parameters; on ``neuroid`` ``neuroid_id`` (required, str), ``region`` and the
  rest; on ``time_bin`` ``time_bin_start`` and ``time_bin_end`` (ms);
- ``attrs["identifier"]`` names the assembly and ``attrs["stimulus_set_identifier"]`` its
  stimulus set.

brainio is not a dependency: :func:`to_brainscore_assembly` builds the plain DataArray with
those conventions, which ``brainio.assemblies.NeuroidAssembly(assembly)`` accepts as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InteropError

__all__ = ["to_brainscore_assembly"]


def _level_names(activity: xr.DataArray, dim: str) -> list[str]:
    return [c for c in activity.coords if activity.coords[c].dims == (dim,) and c != dim]


def to_brainscore_assembly(activity: xr.DataArray, identifier: str | None = None,
                           stimulus_set_identifier: str | None = None) -> xr.DataArray:
    """A recording's activity laid out as a Brain-Score ``NeuroidAssembly``.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses with ``stimulus_id`` on ``presentation`` and ``neuroid_id`` on ``neuroid``.
        May be dask-backed (it stays so).
    identifier : str, optional
        The assembly's name (``attrs["identifier"]``). Default: ``neurorecord.<region>`` when
        all units share one ``region`` coordinate, else ``neurorecord.activity``.
    stimulus_set_identifier : str, optional
        The stimulus set's name (``attrs["stimulus_set_identifier"]``). Default: the single
        value of a ``stimulus_set`` coordinate when there is one, else ``identifier``.

    Returns
    -------
    xarray.DataArray, dims (presentation, neuroid[, time_bin])
        The same values; each dim indexed by a ``pandas.MultiIndex`` of all its coordinates
        (one level or several)
        (``stimulus_id`` first on ``presentation``, ``neuroid_id`` first on ``neuroid``), so
        ``assembly.sel(stimulus_id="digits.0007")`` works as on a Brain-Score assembly;
        ``attrs``: the input's, plus ``identifier`` and ``stimulus_set_identifier``.

    Raises
    ------
    neurorecord.errors.InteropError
        Other dims, or no ``stimulus_id`` / ``neuroid_id`` coordinate.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> activity = xr.DataArray(np.zeros((2, 3)), dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b"]), "repetition": ("presentation", [0, 0]),
    ...             "neuroid_id": ("neuroid", ["fc2.0", "fc2.1", "fc2.2"]), "region": ("neuroid", ["fc2"] * 3)})
    >>> assembly = to_brainscore_assembly(activity)
    >>> list(assembly.indexes["presentation"].names), assembly.attrs["identifier"]
    (['stimulus_id', 'repetition'], 'neurorecord.fc2')
    """
    if not isinstance(activity, xr.DataArray):
        raise InteropError(f"activity: expected an xarray.DataArray (presentation x neuroid), found {type(activity).__name__}")
    dims = activity.dims
    if dims[:2] != ("presentation", "neuroid") or dims[2:] not in ((), ("time_bin",)):
        raise InteropError(f"activity: expected dims (presentation, neuroid[, time_bin]), found {dims}")
    indexes: dict[str, list[str]] = {}
    for dim, key in (("presentation", "stimulus_id"), ("neuroid", "neuroid_id"), ("time_bin", None)):
        if dim not in dims:
            continue
        names = _level_names(activity, dim)
        if key is not None:
            if key not in names:
                raise InteropError(f"activity: expected a {key!r} coordinate on {dim!r}, found only "
                                   f"{', '.join(names) or 'none'}")
            names = [key] + [n for n in names if n != key]
        if names:
            indexes[dim] = names
    assembly = activity.drop_vars([d for d in indexes if d in activity.coords] +
                                  [name for names in indexes.values() for name in names])
    for dim, names in indexes.items():  # a MultiIndex even with one level: the level keeps its name
        levels = [np.asarray(activity.coords[n].values) for n in names]
        levels = [v.astype(str) if n in ("stimulus_id", "neuroid_id") else v for n, v in zip(names, levels)]
        assembly = assembly.assign_coords(xr.Coordinates.from_pandas_multiindex(
            pd.MultiIndex.from_arrays(levels, names=names), dim))
    if identifier is None:
        regions = set(activity.coords["region"].values.tolist()) if "region" in activity.coords else set()
        identifier = f"neurorecord.{regions.pop()}" if len(regions) == 1 else "neurorecord.activity"
    if stimulus_set_identifier is None:
        sets = set(activity.coords["stimulus_set"].values.tolist()) if "stimulus_set" in activity.coords else set()
        stimulus_set_identifier = str(sets.pop()) if len(sets) == 1 else identifier
    attrs: dict[str, Any] = {**activity.attrs, "identifier": str(identifier),
                             "stimulus_set_identifier": str(stimulus_set_identifier)}
    assembly.attrs = attrs
    return assembly
