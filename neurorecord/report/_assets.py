"""Where a report's figures and tables go: PNG files in ``figures/``, CSV files in ``tables/``.

A figure that cannot be drawn from what the store holds (a :class:`~neurorecord.plot.PlotError`)
becomes a note on the page saying why; any other error stops the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..plot import PlotError, label
from . import _html

#: Resolution of the report's PNG figures (dots per inch).
DPI = 100
#: Variables larger than this many values are left out of the CSV tables (they stay in the store).
MAX_CSV_VALUES = 2_000_000
#: Dims whose variables are per-trial data, left out of the CSV tables (they stay in the store).
TRIAL_DIMS = ("presentation",)


class Assets:
    """Writes figures and tables into a report folder and returns the HTML that shows them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "figures").mkdir(parents=True, exist_ok=True)
        (folder / "tables").mkdir(parents=True, exist_ok=True)
        self.figures: list[str] = []
        self.tables: list[str] = []

    def figure(self, name: str, draw: Callable[[], Figure | Axes], caption: str, alt: str | None = None) -> str:
        """Draw, save as ``figures/<name>.png``, and return the ``<figure>``; a PlotError gives a note."""
        try:
            drawn = draw()
        except PlotError as exc:
            return _html.paragraph(f"Figure not drawn ({caption.split('.')[0]}): {exc}", note=True)
        fig = drawn if isinstance(drawn, Figure) else drawn.figure
        rel = f"figures/{_html.slug(name)}.png"
        fig.savefig(self.folder / rel, dpi=DPI)
        self.figures.append(rel)
        return _html.figure(rel, caption, alt or caption.split(".")[0])

    def table(self, name: str, frame: pd.DataFrame, caption: str, shown: pd.DataFrame | None = None) -> str:
        """Write ``frame`` as ``tables/<name>.csv`` and return the page's table (``shown``, default its first rows)."""
        rel = f"tables/{_html.slug(name)}.csv"
        frame.to_csv(self.folder / rel, index=False)
        self.tables.append(rel)
        return _html.table(frame if shown is None else shown, rel, caption, max_rows=_html.MAX_ROWS)


def node_frames(ds: xr.Dataset) -> tuple[list[tuple[tuple[str, ...], pd.DataFrame]], list[str]]:
    """A result node as tables: one DataFrame per set of dims its variables share (long form,
    with the coordinates along those dims), and the variables left out (per-trial or too large).

    >>> ds = xr.Dataset({"csi": ("neuroid", [0.1, 0.5]), "n": ("label", [3, 4])},
    ...                 coords={"neuroid_id": ("neuroid", ["fc1.0", "fc1.1"]), "label": [0, 1]})
    >>> [(dims, list(f.columns)) for dims, f in node_frames(ds)[0]]
    [(('neuroid',), ['neuroid', 'csi', 'neuroid_id']), (('label',), ['label', 'n'])]
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    left_out = []
    for name, var in ds.data_vars.items():
        if any(d in TRIAL_DIMS for d in var.dims) or var.size > MAX_CSV_VALUES:
            left_out.append(str(name))
            continue
        groups.setdefault(tuple(str(d) for d in var.dims), []).append(str(name))
    frames = []
    for dims, names in groups.items():
        sub = ds[names]
        sub = sub.drop_vars([c for c in sub.coords if not set(sub[c].dims) <= set(dims)])
        sub = sub.drop_indexes([c for c in sub.xindexes if c not in sub.dims])  # neuroid_id as a column, not lost
        sub = sub.assign_coords({c: sub[c].astype(object) for c in sub.coords if sub[c].dtype.kind == "T"})
        sub = sub.assign({v: sub[v].astype(object) for v in sub.data_vars if sub[v].dtype.kind == "T"})
        frame = sub.to_dataframe().reset_index() if dims else pd.DataFrame({v: [sub[v].values.item()] for v in names})
        frames.append((dims, frame))
    return frames, left_out


def histogram(values: xr.DataArray, name: str, reference: str | None = None, ax: Axes | None = None) -> Axes:
    """Histogram of one value per unit (an index, a p value), with a line at a uniform
    reference for p values; the x label from the variable's attrs."""
    data = np.asarray(values.values, dtype=np.float64).ravel()
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise PlotError(f"{name}: expected finite values to draw a histogram, found none of {data.size}")
    if ax is None:
        ax = Figure(figsize=(4.2, 2.8), layout="constrained").add_subplot()
    if reference == "uniform":
        bins = np.linspace(0.0, 1.0, 21)
        ax.hist(finite, bins=bins, color="#0072B2")
        ax.axhline(finite.size / 20, color="black", ls="--", lw=1, label="expected if no unit responds (uniform)")
        ax.legend(fontsize="small", frameon=False)
    else:
        ax.hist(finite, bins=min(40, max(5, finite.size // 5)), color="#0072B2")
    ax.set_xlabel(label(values, name))
    ax.set_ylabel(f"units ({finite.size} of {data.size} finite)" if finite.size < data.size else "units")
    return ax


def text_values(values: object) -> list[str]:
    """Values as a list of ``str`` (whatever the dtype: object, StringDType)."""
    return [str(v) for v in np.asarray(values).ravel()]
