"""Report sections of the protocol's analyses (``analyses/<region>/<name>``): a summary, a
figure of the whole region, the top units, and every value as CSV.

A region of any size gives the same few figures: a histogram or heat map over its units, and
panels of its :data:`TOP_UNITS` best units, never one panel per unit.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import plot
from . import _html
from ._assets import Assets, histogram, node_frames
from ._html import Section

#: Units drawn one panel each (the most selective, the best fits, ...): a 3 x 3 grid.
TOP_UNITS = 9
#: Most units in a heat map (the ones whose mean response varies most over the conditions).
HEATMAP_UNITS = 400

_TESTS = ("anova", "kruskal", "ttest_ovr", "mannwhitney_ovr", "rayleigh")


def entry_of(ds: xr.Dataset) -> dict[str, Any]:
    """The protocol entry that made a result node (its ``analysis`` attribute, JSON)."""
    try:
        entry = json.loads(ds.attrs.get("analysis", "{}"))
    except (TypeError, ValueError):
        entry = {}
    return entry if isinstance(entry, dict) else {}


def tables(assets: Assets, path: str, ds: xr.Dataset, sort: str | None = None, ascending: bool = True) -> list[str]:
    """Every variable of a result node as CSV (one file per set of dims); the page shows the
    first rows, the per-unit table sorted by ``sort``."""
    parts = []
    frames, left_out = node_frames(ds)
    for dims, frame in frames:
        name = path + ("" if len(frames) == 1 else "--" + "-".join(dims or ("scalars",)))
        shown = frame
        caption = f"{path}: values over {' x '.join(dims) or 'no dimension'}"
        if sort in frame.columns and dims == ("neuroid",):
            shown = frame.sort_values(sort, ascending=ascending, na_position="last", kind="stable")
            caption += f", sorted by {sort} ({'smallest' if ascending else 'largest'} first)"
        parts.append(assets.table(name, frame, caption, shown=shown))
    if left_out:
        parts.append(_html.paragraph(f"Not in the CSV tables (per-trial or too large; read them from the store node "
                                     f"{path}): {', '.join(left_out)}."))
    return parts


def _ci_caption(tuning: xr.Dataset) -> str:
    ci = float(tuning.attrs.get("ci", 0.95)) * 100
    return (f"mean ± {ci:g} % bootstrap CI over trials ({tuning.attrs.get('n_boot', '?')} resamples, percentile; "
            f"presentations resampled within each condition)")


def _find(region_nodes: dict[str, xr.Dataset], kind: str, by: Any) -> xr.Dataset | None:
    for ds in region_nodes.values():
        if entry_of(ds).get("kind") == kind and ds.attrs.get("by", entry_of(ds).get("by")) == by:
            return ds
    return None


def _range(tuning: xr.Dataset) -> xr.Dataset:
    """Per unit, the range of the mean response over the conditions (a ranking for the panels)."""
    mean = tuning["mean"]
    dims = [d for d in mean.dims if d != "neuroid"]
    spread = (mean.max(dims) - mean.min(dims)).assign_attrs(long_name="range of the condition means",
                                                            units=mean.attrs.get("units", ""))
    return xr.Dataset({"range": spread}, attrs={"index": "range"})


def _tuning(assets: Assets, path: str, ds: xr.Dataset, nodes: dict[str, xr.Dataset]) -> list[str]:
    by = ds.attrs.get("by")
    parts = []
    if isinstance(by, list) or ds["mean"].ndim == 3:  # a 2-D map: receptive fields
        spread = _range(ds)["range"]
        top = np.argsort(-np.nan_to_num(spread.values, nan=-np.inf), kind="stable")[:4]

        def maps():
            from matplotlib.figure import Figure

            fig = Figure(figsize=(7.0, 5.6), layout="constrained")
            for ax, i in zip(fig.subplots(2, 2).ravel(), top):
                plot.receptive_field(ds, int(i), ax=ax)
            return fig

        parts.append(assets.figure(path + "-maps", maps, f"Receptive-field maps of the {len(top)} units whose mean "
                                   f"response varies most over the positions: mean response at each position, "
                                   f"{ds.sizes['neuroid']} units in the region."))
        return parts
    spread = _range(ds)
    order = np.argsort(-np.nan_to_num(spread["range"].values, nan=-np.inf), kind="stable")[:HEATMAP_UNITS]
    profiles = ds["mean"].isel(neuroid=np.sort(order)).transpose("neuroid", by)
    profiles = profiles.assign_attrs(long_name="mean response", units=ds["mean"].attrs.get("units", ds.attrs.get("activity_units", "")))
    heat_units = (f"all {ds.sizes['neuroid']} units" if len(order) == ds.sizes["neuroid"]
                  else f"the {len(order)} of {ds.sizes['neuroid']} units whose condition means vary most")
    parts.append(assets.figure(path + "-heatmap", lambda: plot.profile_heatmap(profiles),
                               f"Mean response per condition ({by}) of {heat_units}, sorted by preferred condition."))
    if _find(nodes, "selectivity", by) is None:  # else the selectivity section shows the best units
        parts.append(assets.figure(path + "-top", lambda: plot.selective_units(ds, spread, n_units=TOP_UNITS),
                                   f"Tuning curves of the {min(TOP_UNITS, ds.sizes['neuroid'])} units whose condition "
                                   f"means span the largest range: {_ci_caption(ds)}."))
    return parts


def _selectivity(assets: Assets, path: str, ds: xr.Dataset, nodes: dict[str, xr.Dataset]) -> list[str]:
    index = ds.attrs.get("index", "")
    parts = []
    if index in ds:
        parts.append(assets.figure(path + "-hist", lambda: histogram(ds[index], index),
                                   f"Distribution of the {index} over the region's {ds.sizes['neuroid']} units. "
                                   f"{ds.attrs.get('definition', '')}"))
        tuning = _find(nodes, "tuning_curve", ds.attrs.get("by"))
        if tuning is not None:
            parts.append(assets.figure(path + "-top", lambda: plot.selective_units(tuning, ds, n_units=TOP_UNITS),
                                       f"Tuning curves of the {min(TOP_UNITS, ds.sizes['neuroid'])} units with the "
                                       f"largest {index}: {_ci_caption(tuning)}."))
    return parts


def _tested(assets: Assets, path: str, ds: xr.Dataset, nodes: dict[str, xr.Dataset]) -> list[str]:
    """A per-unit test or a population defined by one: how many pass, p histogram, top members."""
    parts = []
    if "q" in ds:
        q_below = float(ds.attrs.get("q_below", 0.05))
        passed = int((ds["q"] < q_below).sum())
        text = f"{passed} of {ds.sizes['neuroid']} units have q < {q_below:g} ({ds.attrs.get('correction', 'corrected')}: "
        text += f"{ds.attrs.get('family', 'over the region')})."
        if "member" in ds:
            text = (f"Population {ds.attrs.get('population', '')}: {int(ds['member'].sum())} of {ds.sizes['neuroid']} "
                    f"units, rule {ds.attrs.get('rule', '')}. " + text)
        parts.append(_html.paragraph(text))
    if "p" in ds:
        parts.append(assets.figure(path + "-p", lambda: histogram(ds["p"], "p", reference="uniform"),
                                   f"Distribution of the uncorrected p values of the {ds.attrs.get('test', '')} test over the "
                                   f"region's units; the dashed line is what no effect at all would give."))
    return parts


def _von_mises(assets: Assets, path: str, ds: xr.Dataset, nodes: dict[str, xr.Dataset]) -> list[str]:
    from matplotlib.figure import Figure

    tuning = _find(nodes, "tuning_curve", ds.attrs.get("by", entry_of(ds).get("by")))
    if tuning is None or "r2" not in ds:
        return []
    good = np.where(np.asarray(ds["converged"].values, dtype=np.float64) > 0, np.asarray(ds["r2"].values, dtype=np.float64), np.nan)
    top = np.argsort(-np.nan_to_num(good, nan=-np.inf), kind="stable")[:4]

    def fits():
        fig = Figure(figsize=(7.0, 5.2), layout="constrained")
        for ax, i in zip(fig.subplots(2, 2).ravel(), top):
            plot.tuning_curve(tuning, int(i), fit=ds, ax=ax)
        return fig

    return [assets.figure(path + "-fits", fits, f"The {len(top)} best von Mises fits (largest r² among converged fits): "
                          f"{_ci_caption(tuning)}, and the fitted curve.")]


_FIGURES = {"tuning_curve": _tuning, "selectivity": _selectivity, "population": _tested, "von_mises": _von_mises,
            **{kind: _tested for kind in _TESTS}}


def _sort_key(ds: xr.Dataset) -> tuple[str | None, bool]:
    for name, ascending in (("q", True), ("p", True), (ds.attrs.get("index"), False), ("r2", False)):
        if name in ds.data_vars and ds[name].dims == ("neuroid",):
            return name, ascending
    return None, True


def analysis_section(assets: Assets, path: str, ds: xr.Dataset, nodes: dict[str, xr.Dataset]) -> Section:
    """The section of one ``analyses/<region>/<name>`` node."""
    entry = entry_of(ds)
    kind = entry.get("kind", "result")
    section = Section(f"{path.split('/', 1)[1]} ({kind})", _html.slug(path))
    described = ", ".join(f"{k}: {v}" for k, v in entry.items() if k not in ("name", "kind") and v is not None)
    section.add(_html.paragraph(f"Protocol entry {entry.get('name', path)!s} ({kind}; {described})."))
    section.parts.extend(_FIGURES.get(kind, lambda *a: [])(assets, path, ds, nodes))
    sort, ascending = _sort_key(ds)
    section.parts.extend(tables(assets, path, ds, sort, ascending))
    return section


def region_analyses(assets: Assets, tree: xr.DataTree, region: str, order: list[str]) -> tuple[list[Section], list[str]]:
    """Sections of a region's analyses, in the protocol's ``order``; and the names of its studies
    (nodes with results below them)."""
    node = tree["analyses"][region]
    names = sorted(node.children, key=lambda n: (order.index(n) if n in order else len(order), n))
    nodes = {name: node[name].to_dataset(inherit=False) for name in names if node[name].has_data}
    studies = [name for name in names if not node[name].has_data and node[name].children]
    sections = [analysis_section(assets, f"analyses/{region}/{name}", ds, nodes) for name, ds in nodes.items()]
    return sections, studies


def summary_frame(nodes: dict[str, xr.Dataset]) -> pd.DataFrame:
    """One row per result node: what it is and its sizes (the overview of a study)."""
    return pd.DataFrame([{"node": name, "variables": ", ".join(map(str, ds.data_vars)),
                          "sizes": ", ".join(f"{k} {v}" for k, v in ds.sizes.items())} for name, ds in nodes.items()])
