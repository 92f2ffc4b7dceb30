"""What every figure shares: axis labels from CF attrs, colour maps, figure and axes creation,
picking a unit, and the one error class of the plots.

Figures are made with :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so the
library never chooses or forces a backend; ``fig.savefig`` works under any backend, and a
notebook shows a returned Figure as it shows any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import NeurorecordError, did_you_mean

__all__ = ["PlotError", "SEQUENTIAL", "DIVERGING", "QUALITATIVE", "label", "new_axes", "new_figure", "pick_unit",
           "check_dataset", "category_colors", "symmetric_limits", "texts", "wrapped"]

#: Colour map of non-negative quantities (perceptually uniform, readable in grey and by colour-blind readers).
SEQUENTIAL = "viridis"
#: Colour map of signed changes, centred at 0 (blue: decrease, red: increase).
DIVERGING = "RdBu_r"
#: Qualitative colours of populations and conditions: the Okabe & Ito (2008) colour-blind-safe set.
QUALITATIVE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


class PlotError(NeurorecordError, ValueError):
    """A figure's input is not what it draws: the message names the argument, what was expected
    and what was found."""


def label(obj: xr.DataArray | xr.Variable | Mapping[str, Any] | None, default: str = "") -> str:
    """An axis label from CF-style attrs: ``"long_name [units]"``.

    Parameters
    ----------
    obj : xarray.DataArray, xarray.Variable, mapping or None
        Its ``attrs`` (or the mapping itself) are read: ``long_name`` (else the name, else
        ``default``) and ``units`` (left out when absent, empty or ``"1"``, dimensionless).
    default : str, default ""
        The text when there is neither ``long_name`` nor a name.

    Returns
    -------
    str

    Examples
    --------
    >>> import xarray as xr
    >>> label(xr.DataArray([0.0], attrs={"long_name": "orientation", "units": "deg"}))
    'orientation [deg]'
    >>> label(xr.DataArray([0.0], name="csi", attrs={"units": "1"})), label(None, "response")
    ('csi', 'response')
    """
    if obj is None:
        return default
    attrs = obj if isinstance(obj, Mapping) else obj.attrs
    name = getattr(obj, "name", None)
    text = str(attrs.get("long_name") or (name if isinstance(name, str) else None) or default)
    units = attrs.get("units")
    return f"{text} [{units}]" if units not in (None, "", "1") else text


def wrapped(text: str, width: int = 42) -> str:
    """``text`` broken into lines of at most ``width`` characters (long colour-bar labels).

    >>> wrapped("mean response per condition, z-scored [z]", 20).splitlines()
    ['mean response per', 'condition, z-scored', '[z]']
    """
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def new_figure(width: float = 4.8, height: float = 3.6) -> Figure:
    """A Figure with ``constrained`` layout (no overlapping text), not attached to pyplot.

    >>> new_figure().get_layout_engine().__class__.__name__
    'ConstrainedLayoutEngine'
    """
    return Figure(figsize=(width, height), layout="constrained")


def new_axes(ax: Axes | None, width: float = 4.8, height: float = 3.6, **kwargs: Any) -> Axes:
    """``ax`` itself, or the axes of a new :func:`new_figure` (``kwargs`` go to ``add_subplot``).

    >>> float(new_axes(None).figure.get_figwidth())
    4.8
    """
    if ax is not None:
        if not isinstance(ax, Axes):
            raise PlotError(f"ax: expected a matplotlib Axes or None, found {type(ax).__name__}")
        return ax
    return new_figure(width, height).add_subplot(**kwargs)


def check_dataset(name: str, value: Any, variables: tuple[str, ...], what: str) -> xr.Dataset:
    """``value`` if it is a Dataset holding ``variables``; else a PlotError naming what is missing.

    >>> import xarray as xr
    >>> check_dataset("tuning", xr.Dataset({"mean": 0.0}), ("mean", "sem"), "a tuning_curve result")
    Traceback (most recent call last):
    ...
    neurorecord.plot._common.PlotError: tuning: expected a tuning_curve result with variables mean, sem, found variables mean
    """
    if not isinstance(value, xr.Dataset):
        raise PlotError(f"{name}: expected {what} (an xarray.Dataset), found {type(value).__name__}")
    missing = [v for v in variables if v not in value.variables]
    if missing:
        raise PlotError(f"{name}: expected {what} with variables {', '.join(variables)}, found variables "
                        f"{', '.join(map(str, value.data_vars)) or 'none'}")
    return value


def pick_unit(obj: xr.DataArray | xr.Dataset, neuroid: str | int, name: str = "neuroid") -> xr.DataArray | xr.Dataset:
    """One unit of ``obj``, by ``neuroid_id`` (str) or position (int).

    >>> import xarray as xr
    >>> a = xr.DataArray([1.0, 2.0], dims="neuroid", coords={"neuroid_id": ("neuroid", ["v1.0", "v1.1"])})
    >>> float(pick_unit(a, "v1.1")), float(pick_unit(a, 0))
    (2.0, 1.0)
    """
    if "neuroid" not in obj.dims:
        raise PlotError(f"{name}: the data has no 'neuroid' dim to pick a unit from (dims {tuple(obj.dims)})")
    n = obj.sizes["neuroid"]
    if isinstance(neuroid, (int, np.integer)) and not isinstance(neuroid, bool):
        if not -n <= int(neuroid) < n:
            raise PlotError(f"{name}: expected a unit position in [0, {n}), found {neuroid}")
        return obj.isel(neuroid=int(neuroid))
    if not isinstance(neuroid, str):
        raise PlotError(f"{name}: expected a neuroid_id (str) or a position (int), found {neuroid!r}")
    if "neuroid_id" not in obj.coords:
        raise PlotError(f"{name}: the data has no 'neuroid_id' coordinate; give the unit's position (int)")
    ids = texts(obj["neuroid_id"].values)
    where = np.flatnonzero(ids == neuroid)
    if not len(where):
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise PlotError(f"{name}: expected a neuroid_id of the data, found {neuroid!r}"
                        f"{did_you_mean(neuroid, ids.tolist())}; neuroid_id: {shown}")
    return obj.isel(neuroid=int(where[0]))


def unit_name(obj: xr.DataArray | xr.Dataset) -> str:
    """The ``neuroid_id`` of a one-unit selection, or ``""``."""
    return str(obj["neuroid_id"].values) if "neuroid_id" in obj.coords and obj["neuroid_id"].ndim == 0 else ""


def category_colors(n: int) -> list:
    """``n`` distinguishable colours: the Okabe-Ito set while it lasts, matplotlib's tab10 up to
    10, else viridis steps.

    >>> category_colors(2)
    ['#0072B2', '#E69F00']
    """
    if n <= len(QUALITATIVE):
        return list(QUALITATIVE[:n])
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return [colormaps[SEQUENTIAL](x) for x in np.linspace(0.0, 0.92, n)]


def symmetric_limits(values: Any) -> tuple[float, float]:
    """``(-m, m)`` with m the largest finite |value| (1 where there is none): a diverging colour
    map centred at 0.

    >>> symmetric_limits([-2.0, 5.0, float("nan")])
    (-5.0, 5.0)
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.abs(values[np.isfinite(values)])
    m = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return -m, m


def texts(values: Any) -> np.ndarray:
    """Values as a numpy ``str`` array, whatever their dtype (object, ``StringDType`` from zarr).

    >>> texts(np.array(["a", 1], dtype=object)).tolist()
    ['a', '1']
    """
    return np.array([str(v) for v in np.asarray(values).ravel()], dtype=str).reshape(np.shape(values))


def short(value: Any) -> str:
    """A tick label: floats without trailing zeros, anything else as text.

    >>> short(22.5), short(90.0), short("3")
    ('22.5', '90', '3')
    """
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)
