"""Report sections of lesion experiments (``lesions/<name>``) and of studies
(``analyses/<region>/<study>/...`` with their population lesions ``lesions/<study>``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from .. import plot
from . import _html
from ._assets import Assets, text_values
from ._html import Section
from .analyses import TOP_UNITS, tables

#: Most single lesions in a heat map (those that change overall accuracy most).
HEATMAP_LESIONS = 60
#: Most group or population lesions drawn against their controls.
CONTROL_PANELS = 6


def _overall(ds: xr.Dataset, var: str) -> np.ndarray:
    return np.asarray(ds[var].sel({"class": "overall"}).values, dtype=np.float64)


def _kinds(ds: xr.Dataset) -> np.ndarray:
    return np.array(text_values(ds["lesion_kind"].values)) if "lesion_kind" in ds.coords else np.full(ds.sizes["lesion"], "single")


def _mcnemar_caption(ds: xr.Dataset) -> str:
    return (f"accuracy change (lesioned minus intact, percentage points) on {ds.attrs.get('n_stimuli', '?')} stimuli; "
            f"a dot marks q < 0.05 ({ds.attrs.get('test', 'exact McNemar test')}, {ds.attrs.get('family', 'FDR over the sweep')})")


def _heatmap(assets: Assets, path: str, ds: xr.Dataset, kind: str) -> str:
    kinds = _kinds(ds)
    chosen = np.flatnonzero(kinds == kind)
    what = f"all {len(chosen)} {kind} lesions"
    if len(chosen) > HEATMAP_LESIONS:
        change = np.abs(_overall(ds.isel(lesion=chosen), "delta_accuracy"))
        chosen = np.sort(chosen[np.argsort(-np.nan_to_num(change, nan=-np.inf), kind="stable")[:HEATMAP_LESIONS]])
        what = f"the {HEATMAP_LESIONS} of {int((kinds == kind).sum())} {kind} lesions that change overall accuracy most"
    sub = ds.isel(lesion=chosen)
    return assets.figure(f"{path}-heatmap-{kind}", lambda: plot.lesion_heatmap(sub, kind=kind),
                         f"Lesion x class heat map of {what}: {_mcnemar_caption(ds)}.")


def _controls_of(ds: xr.Dataset, lesion: str) -> xr.Dataset:
    """One population lesion and its matched controls, named as :func:`plot.control_distribution`
    reads them (``<lesion>/control<j>``): a study's controls are shared by populations of one
    size, ``control-<n_units>/<j>``."""
    names = text_values(ds["lesion"].values)
    n_units = int(ds["n_units"].sel(lesion=lesion)) if "n_units" in ds.coords else -1
    prefix = f"control-{n_units}/"
    controls = [n for n in names if n.startswith(prefix)]
    sub = ds.sel(lesion=[lesion, *controls])
    return sub.assign_coords(lesion=[lesion] + [f"{lesion}/control{n[len(prefix):]}" for n in controls])


def _against_controls(assets: Assets, path: str, ds: xr.Dataset, targets: list[str], shared: bool) -> str:
    """Panels of the group lesions with the lowest control p (most harmful against their controls)."""
    if "control_p" in ds:
        p = np.asarray(ds["control_p"].sel({"class": "overall", "lesion": targets}).values, dtype=np.float64)
        targets = [targets[i] for i in np.argsort(np.nan_to_num(p, nan=np.inf), kind="stable")]
    shown = targets[:CONTROL_PANELS]

    def panels():
        cols = min(3, len(shown))
        rows = int(np.ceil(len(shown) / cols))
        fig = Figure(figsize=(4.6 * cols, 3.4 * rows), layout="constrained")
        for ax, name in zip(fig.subplots(rows, cols, squeeze=False).ravel(), shown):
            plot.control_distribution(_controls_of(ds, name) if shared else ds, name, ax=ax)
        for ax in fig.axes[len(shown):]:
            fig.delaxes(ax)
        return fig

    n_controls = ds.attrs.get("n_controls") or ds.attrs.get("null", "matched random")
    return assets.figure(f"{path}-controls", panels,
                         f"Overall accuracy change of {len(shown)} of {len(targets)} group lesions (those with the lowest "
                         f"control p first) against their matched random lesions of as many units of the region "
                         f"({n_controls}); p is the one-sided empirical p, (1 + #controls at least as harmful) / "
                         f"(1 + #controls).")


def _per_lesion(ds: xr.Dataset) -> pd.DataFrame:
    """The overall column of every per-(lesion, class) variable, one row per lesion."""
    frame = pd.DataFrame({"lesion": text_values(ds["lesion"].values)})
    for coord in ("lesion_kind", "n_units"):
        if coord in ds.coords:
            frame[coord] = np.asarray(ds[coord].values).tolist() if coord == "n_units" else text_values(ds[coord].values)
    for var in ("delta_accuracy", "ci_low", "ci_high", "q", "control_median", "control_percentile", "control_p", "control_q"):
        if var in ds and "class" in ds[var].dims:
            frame[f"{var} (overall)"] = _overall(ds, var)
    for var in ("loss", "loss_control_p"):
        if var in ds and ds[var].dims == ("lesion",):
            frame[var] = np.asarray(ds[var].values, dtype=np.float64)
    return frame


def lesion_section(assets: Assets, path: str, ds: xr.Dataset) -> Section:
    """The section of one ``lesions/<name>`` node (a lesion entry, or a study's population lesions)."""
    kinds = _kinds(ds)
    study = "control_median" in ds
    section = Section(f"{path.split('/', 1)[1]} ({'population lesions of a study' if study else 'lesion experiment'})",
                      _html.slug(path))
    counts = ", ".join(f"{int((kinds == k).sum())} {k}" for k in dict.fromkeys(kinds.tolist()))
    section.add(_html.paragraph(f"{ds.sizes['lesion']} lesions ({counts}) of region {ds.attrs.get('region')} "
                                f"({ds.attrs.get('method', '')}), evaluated on {ds.attrs.get('n_stimuli', '?')} stimuli of "
                                f"{ds.attrs.get('evaluate', 'the evaluation set')}; test: {ds.attrs.get('test', '')}."))
    for kind in ("single", "population", "group"):
        if (kinds == kind).any() and "q" in ds:
            section.add(_heatmap(assets, path, ds, kind))
    targets = [n for n, k in zip(text_values(ds["lesion"].values), kinds) if k in ("group", "population")]
    if targets and (kinds == "control").any():
        section.add(_against_controls(assets, path, ds, targets, shared=study))
    if "activity_change" in ds:
        section.add(assets.figure(f"{path}-downstream", lambda: plot.downstream_change(ds, n_lesions=TOP_UNITS + 8),
                                  f"Relative RMS change of each downstream region's response for the {TOP_UNITS + 8} "
                                  f"lesions that change it most (over the evaluated stimuli)."))
    frame = _per_lesion(ds)
    shown = frame[frame["lesion_kind"] != "control"] if "lesion_kind" in frame else frame
    shown = shown.sort_values("delta_accuracy (overall)", kind="stable") if "delta_accuracy (overall)" in shown else shown
    section.add(assets.table(f"{path}--per-lesion", frame, f"{path}: one row per lesion, overall accuracy change "
                             "(percentage points) and its tests; the page shows the most harmful non-control lesions",
                             shown=shown))
    section.parts.extend(tables(assets, path, ds))
    return section


# ------------------------------------------------------------------ studies


def _clustering(assets: Assets, base: str, name: str, clusters: xr.Dataset, profiles: xr.DataArray | None) -> str:
    def panels():
        hierarchical = "linkage" in clusters
        n = 2 + (profiles is not None) + hierarchical
        fig = Figure(figsize=(4.4 * n, 4.2), layout="constrained")
        axes = list(fig.subplots(1, n).ravel())
        if profiles is not None:
            plot.profile_heatmap(profiles, clusters, ax=axes.pop(0))
        plot.criterion_curve(clusters, ax=axes.pop(0))
        if hierarchical:
            plot.dendrogram(clusters, ax=axes.pop(0))
        if profiles is not None:
            plot.embedding(profiles, clusters, method="pca", ax=axes.pop(0))
        return fig

    k = clusters.attrs.get("k_chosen")
    stability = float(clusters["stability"]) if "stability" in clusters else float("nan")
    return assets.figure(f"{base}-{name}", panels,
                         f"Clustering {name}: {k} populations ({clusters.attrs.get('method')}, k chosen by "
                         f"{clusters.attrs.get('criterion')}; bootstrap stability, mean ARI over "
                         f"{clusters.attrs.get('n_boot', '?')} resamples of the conditions: {stability:.2f}). Panels: profiles "
                         "by population (heat map), the criterion against k (chosen k circled), the dendrogram with its "
                         "cut (hierarchical methods), and the first two principal components of the profiles.")


def study_section(assets: Assets, tree: xr.DataTree, region: str, study: str) -> Section:
    """The section of a study's results ``analyses/<region>/<study>/...``."""
    base = f"analyses/{region}/{study}"
    node = tree[base]
    data = {n.path.strip("/")[len(base) + 1:]: n.to_dataset(inherit=False) for n in node.subtree if n.has_data}
    section = Section(f"{region}/{study} (study)", _html.slug(base))
    kind = next((ds.attrs.get("study_kind") for ds in data.values() if ds.attrs.get("study_kind")), "study")
    section.add(_html.paragraph(f"Study {study} ({kind}) of region {region}: {len(data)} result nodes under {base}."))
    profiles = {k: data[f"{k}_profiles"]["profile"] for k in ("response", "lesion") if f"{k}_profiles" in data}
    for name in sorted(n for n in data if n.startswith("clusters/")):
        which = "lesion" if name.endswith("-lesion") else "response"
        section.add(_clustering(assets, base, name.split("/", 1)[1], data[name], profiles.get(which)))
    for name in sorted(n for n in data if n.startswith("agreement/")):
        ds = data[name]
        frame = pd.DataFrame({"measure": text_values(ds["measure"].values), "value": ds["value"].values,
                              "p": ds["p"].values, "null_mean": ds["null_mean"].values})
        section.add(assets.table(f"{base}/{name}", frame, f"Agreement of the activity and lesion populations, {name.split('/')[1]} "
                                 f"(permutation p over {ds.attrs.get('n_perm', '?')} permutations keeping population sizes; "
                                 f"{ds.attrs.get('n_units', '?')} units)"))
    if "match" in data:
        ds = data["match"]
        section.add(_html.paragraph(f"Preferred condition = most-hurt class for a fraction {float(ds['fraction_match']):.3f} of "
                                    f"{ds.sizes['neuroid']} units (chance {float(ds['chance']):.3f}, permutation p "
                                    f"{float(ds['p']):.3g})."))
    if "indicators" in data:
        indicators, correlations = data["indicators"], data.get("correlations")
        keep = [v for v in ("magnitude", "csi", "dprime", "lesion_impact", "max_class_impact") if v in indicators]
        section.add(assets.figure(f"{base}-indicators", lambda: plot.indicator_matrix(indicators, correlations, variables=keep),
                                  "Per-unit indicators against each other: scatter plots, histograms, and the Spearman and "
                                  "Pearson correlations with their bootstrap 95 % CIs "
                                  f"({(correlations.attrs.get('n_boot') if correlations is not None else 0)} resamples of the units)."))
    if "prediction" in data:
        frame = data["prediction"].to_dataframe().reset_index()
        section.add(assets.table(f"{base}/prediction", frame, "How well each indicator finds the units whose lesion hurts most "
                                 "(Spearman correlation with lesion impact; overlap of the top-k sets, permutation p)"))
    pops = sorted(n for n in data if n.startswith("populations/"))
    if pops:
        frame = pd.DataFrame([{"population": n.split("/", 1)[1], "rule": data[n].attrs.get("rule", ""),
                               "n_members": int(np.asarray(data[n]["member"].values, dtype=bool).sum()),
                               "stability": data[n].attrs.get("stability", "")} for n in pops])
        section.add(assets.table(f"{base}/populations", frame, "Populations of the study (members: the store's "
                                 f"{base}/populations/<name>/member)"))
    for name, ds in data.items():
        if name.startswith("populations/"):  # summarised in the table above
            continue
        section.parts.extend(tables(assets, f"{base}/{name}", ds))
    return section
