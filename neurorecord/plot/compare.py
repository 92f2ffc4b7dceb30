"""Comparison figures: representational dissimilarity matrices side by side.

The input is what :func:`neurorecord.compare.rdm` returns: a (condition, condition_) DataArray
with ``long_name`` and ``units``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._common import SEQUENTIAL, PlotError, label, new_figure, short, wrapped

__all__ = ["rdm_heatmap"]

#: Most condition names on an RDM's axes; beyond, the axes say how many conditions there are.
MAX_TICKS = 30


def rdm_heatmap(rdms: xr.DataArray | Mapping[str, xr.DataArray]) -> Figure:
    """One or more RDMs side by side, on one colour scale when they share ``long_name`` and ``units``.

    Parameters
    ----------
    rdms : xarray.DataArray or mapping of str to xarray.DataArray
        :func:`neurorecord.compare.rdm` results, dims (condition, condition_); a mapping's keys
        title the panels (``{"fc2": ..., "V1": ...}``).

    Returns
    -------
    matplotlib.figure.Figure
        One square panel per RDM (viridis: 0 = identical patterns), one colour bar labelled
        ``long_name [units]`` when the RDMs share them, else one per panel.

    Raises
    ------
    PlotError
        An RDM that is not a square (condition, condition_) DataArray.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.compare import rdm
    >>> act = xr.DataArray(np.random.default_rng(0).random((8, 5)), dims=("presentation", "neuroid"),
    ...                    coords={"label": ("presentation", np.arange(8) % 4)})
    >>> fig = rdm_heatmap({"a": rdm(act, "label"), "b": rdm(act, "label")})
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['a', 'b']
    """
    panels = dict(rdms) if isinstance(rdms, Mapping) else {"": rdms}
    if not panels:
        raise PlotError("rdms: expected at least one RDM, found none")
    for name, d in panels.items():
        if not isinstance(d, xr.DataArray) or d.ndim != 2 or d.shape[0] != d.shape[1]:
            found = f"dims {d.dims}, shape {d.shape}" if isinstance(d, xr.DataArray) else type(d).__name__
            raise PlotError(f"rdms[{name!r}]: expected a square (condition, condition_) DataArray from compare.rdm, "
                            f"found {found}")
    shared = len({(d.attrs.get("long_name"), d.attrs.get("units")) for d in panels.values()}) == 1
    values = [np.asarray(d.values, dtype=np.float64) for d in panels.values()]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if shared else np.array([])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    fig = new_figure(3.4 * len(panels) + 1.0, 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, (name, d), v in zip(axes, panels.items(), values):
        image = ax.imshow(np.ma.masked_invalid(v), cmap=SEQUENTIAL, vmin=vmin, vmax=vmax, interpolation="nearest")
        conditions = d[d.dims[0]].values if d.dims[0] in d.coords else np.arange(v.shape[0])
        if len(conditions) <= MAX_TICKS:
            ax.set_xticks(np.arange(len(conditions)), [short(c) for c in conditions], fontsize="small")
            ax.set_yticks(np.arange(len(conditions)), [short(c) for c in conditions], fontsize="small")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        by = str(d.attrs.get("by", "condition"))
        ax.set_xlabel(by if len(conditions) <= MAX_TICKS else f"{len(conditions)} conditions ({by})")
        ax.set_title(name or str(d.attrs.get("method", "")))
        if not shared:
            fig.colorbar(image, ax=ax, label=wrapped(label(d, "dissimilarity"), 30), shrink=0.8)
    if shared and image is not None:
        fig.colorbar(image, ax=list(axes), label=wrapped(label(next(iter(panels.values())), "dissimilarity"), 30), shrink=0.8)
    return fig
