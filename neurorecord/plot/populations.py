"""Functional populations: the condition x unit heat map sorted by population, the dendrogram
with its cut, the criterion curve that chose the number of clusters, and a 2-D embedding (PCA or
t-SNE) of the profiles coloured by population.

Inputs are :func:`~neurorecord.analysis.response_profiles` or
:func:`~neurorecord.analysis.lesion_profiles` (``profiles``, dims ``(neuroid, condition)``) and
:func:`~neurorecord.analysis.cluster_profiles` of them (``clusters``: ``population``,
``criterion_curve``, ``linkage``). Populations have the same colour in every figure.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.axes import Axes

from ._common import (DIVERGING, SEQUENTIAL, PlotError, category_colors, check_dataset, label, new_axes, short,
                      symmetric_limits, texts, wrapped)

__all__ = ["profile_heatmap", "dendrogram", "criterion_curve", "embedding", "EMBEDDINGS"]

#: Embeddings of :func:`embedding`.
EMBEDDINGS = ("pca", "tsne")
#: Colour of units set aside by the clustering (silent or not finite).
ASIDE = "0.6"
#: Most tick labels on a unit or lesion axis; beyond, the axis says how many there are.
MAX_TICKS = 40


def _check_profiles(profiles: object) -> xr.DataArray:
    if not isinstance(profiles, xr.DataArray) or profiles.ndim != 2 or "neuroid" not in profiles.dims:
        found = profiles.dims if isinstance(profiles, xr.DataArray) else type(profiles).__name__
        raise PlotError(f"profiles: expected a (neuroid, condition) DataArray from response_profiles or "
                        f"lesion_profiles, found {found}")
    return profiles.transpose("neuroid", ...)


def _populations(profiles: xr.DataArray, clusters: xr.Dataset | None) -> np.ndarray:
    """Population of every row of ``profiles`` (-1: set aside), checked to be the same units."""
    if clusters is None:
        return np.zeros(profiles.sizes["neuroid"], dtype=np.int64)
    check_dataset("clusters", clusters, ("population",), "a cluster_profiles result")
    population = np.asarray(clusters["population"].values, dtype=np.int64)
    if len(population) != profiles.sizes["neuroid"] or (
            "neuroid_id" in profiles.coords and "neuroid_id" in clusters.coords
            and not np.array_equal(texts(profiles["neuroid_id"].values),
                                   texts(clusters["neuroid_id"].values))):
        raise PlotError(f"clusters: expected the clustering of these profiles (the same {profiles.sizes['neuroid']} "
                        f"units in the same order), found {len(population)} units")
    return population


def _colors(population: np.ndarray) -> dict[int, object]:
    groups = sorted(int(p) for p in np.unique(population) if p >= 0)
    return {**dict(zip(groups, category_colors(len(groups)))), -1: ASIDE}


def _condition_label(profiles: xr.DataArray) -> str:
    dim = profiles.dims[1]
    by = profiles.attrs.get("by", dim)
    return label(profiles[dim].attrs, by if by != "class" else "class") if dim in profiles.coords else str(by)


def profile_heatmap(profiles: xr.DataArray, clusters: xr.Dataset | None = None, ax: Axes | None = None) -> Axes:
    """Condition x unit heat map of profiles, units sorted by population, then by preferred condition.

    Parameters
    ----------
    profiles : xarray.DataArray, dims (neuroid, condition)
        From :func:`~neurorecord.analysis.response_profiles` or
        :func:`~neurorecord.analysis.lesion_profiles`.
    clusters : xarray.Dataset, optional
        :func:`~neurorecord.analysis.cluster_profiles` of ``profiles``: rows are grouped by
        ``population`` (set-aside units last), with a line between populations and their names
        and sizes on the y axis. Default: one group, sorted by preferred condition.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        Signed profiles (z-scores, accuracy changes) use a diverging map centred at 0, others
        viridis; the colour bar carries ``long_name [units]`` of ``profiles``.

    Raises
    ------
    PlotError
        ``profiles`` is not (neuroid, condition); ``clusters`` is of other units.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis import cluster_profiles
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(np.eye(3) * 3, 4, axis=0) + 0.2 * rng.normal(size=(12, 3))
    >>> prof = xr.DataArray(x, dims=("neuroid", "condition"), attrs={"long_name": "response", "units": "z"},
    ...                     coords={"condition": ["a", "b", "c"], "neuroid_id": ("neuroid", [f"u{i}" for i in range(12)])})
    >>> ax = profile_heatmap(prof, cluster_profiles(prof, k_range=(2, 4), n_boot=0))
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['population 0 (n=4)', 'population 1 (n=4)', 'population 2 (n=4)']
    """
    profiles = _check_profiles(profiles)
    population = _populations(profiles, clusters)
    values = np.asarray(profiles.values, dtype=np.float64)
    finite = np.where(np.isfinite(values), values, -np.inf)
    preferred = np.where(np.isfinite(values).any(axis=1), finite.argmax(axis=1), values.shape[1])
    group_key = np.where(population < 0, np.iinfo(np.int64).max, population)
    order = np.lexsort((np.arange(len(values)), preferred, group_key))
    shown = values[order]
    ax = new_axes(ax, 4.8, 4.8)
    signed = bool(np.nanmin(values) < 0) if np.isfinite(values).any() else False
    vmin, vmax = symmetric_limits(values) if signed else (None, None)
    image = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", interpolation="nearest",
                      cmap=DIVERGING if signed else SEQUENTIAL, vmin=vmin, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, label=wrapped(label(profiles, "profile")))
    conditions = profiles[profiles.dims[1]].values if profiles.dims[1] in profiles.coords else np.arange(values.shape[1])
    step = max(1, int(np.ceil(len(conditions) / 20)))
    ax.set_xticks(np.arange(len(conditions))[::step], [short(c) for c in conditions[::step]])
    ax.set_xlabel(_condition_label(profiles))
    groups = population[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    stops = np.r_[starts[1:], len(groups)]
    for s in starts[1:]:
        ax.axhline(s - 0.5, color="black", lw=1.0)
    if clusters is not None:
        names = [f"population {g} (n={b - a})" if g >= 0 else f"set aside (n={b - a})"
                 for g, a, b in zip(groups[starts], starts, stops)]
        centres = (starts + stops - 1) / 2
        # labels at least ~1/25 of the axis apart (a line of text at the default size): a band too
        # thin for its own label keeps its separating lines and goes unnamed rather than overlap
        keep, last = [], -np.inf
        for i, centre in enumerate(centres):
            if centre - last >= len(groups) / 25:
                keep.append(i)
                last = centre
        ax.set_yticks(centres[keep], [names[i] for i in keep])
        ax.set_ylabel(f"units, by population ({len(groups)} units)")
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"units, by preferred condition ({len(groups)} units)")
    return ax


def _link_colors(z: np.ndarray, leaf_population: np.ndarray, colors: dict[int, object]) -> dict[int, str]:
    """Colour of every link of a scipy linkage: its population's when all its leaves share one."""
    from matplotlib.colors import to_hex

    n = len(leaf_population)
    members: list[set[int]] = [{int(p)} for p in leaf_population]
    out = {}
    for i, row in enumerate(z):
        merged = members[int(row[0])] | members[int(row[1])]
        members.append(merged)
        out[n + i] = to_hex(colors[next(iter(merged))]) if len(merged) == 1 else to_hex(ASIDE)
    return out


def dendrogram(clusters: xr.Dataset, ax: Axes | None = None) -> Axes:
    """The hierarchical clustering's dendrogram, with the cut that gives the chosen populations.

    Parameters
    ----------
    clusters : xarray.Dataset
        A :func:`~neurorecord.analysis.cluster_profiles` result of a hierarchical method
        (``"average"`` or ``"ward"``), which holds ``linkage``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        Branches inside one population take its colour (the same as in the other figures), the
        others are grey; the dashed line is the cut, half-way between the merge heights that
        give ``k_chosen`` clusters. Leaves are labelled by ``neuroid_id`` up to
        :data:`MAX_TICKS` units.

    Raises
    ------
    PlotError
        ``clusters`` has no ``linkage`` (k-means and mixtures have no tree).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis import cluster_profiles
    >>> x = np.repeat(np.eye(3) * 3, 4, axis=0) + 0.2 * np.random.default_rng(0).normal(size=(12, 3))
    >>> clusters = cluster_profiles(xr.DataArray(x, dims=("neuroid", "condition")), k_range=(2, 4), n_boot=0)
    >>> dendrogram(clusters).get_ylabel()
    'merge distance [1 - r]'
    """
    from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

    if not isinstance(clusters, xr.Dataset) or "linkage" not in clusters:
        method = clusters.attrs.get("method") if isinstance(clusters, xr.Dataset) else type(clusters).__name__
        raise PlotError(f"clusters: expected a cluster_profiles result with a 'linkage' (method 'average' or 'ward'), "
                        f"found {method!r} without one")
    z = np.asarray(clusters["linkage"].values, dtype=np.float64)
    population = np.asarray(clusters["population"].values, dtype=np.int64)
    kept = np.flatnonzero(population >= 0)
    colors = _colors(population)
    link_colors = _link_colors(z, population[kept], colors)
    k = int(clusters.attrs.get("k_chosen", 1))
    ax = new_axes(ax, 6.0, 3.6)
    ids = (texts(clusters["neuroid_id"].values)[kept] if "neuroid_id" in clusters.coords
           else kept.astype(str))
    few = len(kept) <= MAX_TICKS
    scipy_dendrogram(z, ax=ax, labels=ids.tolist() if few else None, no_labels=not few,
                     link_color_func=lambda i: link_colors[i], leaf_rotation=90, leaf_font_size=7)
    if 1 < k <= len(z):
        cut = (z[-k, 2] + z[-k + 1, 2]) / 2
        ax.axhline(cut, color="black", ls="--", lw=1.0, label=f"cut: {k} populations")
        ax.legend(fontsize="small", frameon=False, loc="upper right")
    metric = {"average": "merge distance [1 - r]", "ward": "Ward merge distance [z]"}
    ax.set_ylabel(metric.get(str(clusters.attrs.get("method")), "merge distance"))
    ax.set_xlabel(f"units ({len(kept)} clustered)" if few else f"{len(kept)} clustered units")
    return ax


def criterion_curve(clusters: xr.Dataset, ax: Axes | None = None) -> Axes:
    """The criterion (silhouette, gap or BIC) against the number of clusters, the chosen k marked.

    Parameters
    ----------
    clusters : xarray.Dataset
        A :func:`~neurorecord.analysis.cluster_profiles` result (``criterion_curve`` over
        ``k``; with the gap statistic, ``gap_se`` is drawn as error bars).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    PlotError
        ``clusters`` is not such a result.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis import cluster_profiles
    >>> x = np.repeat(np.eye(3) * 3, 4, axis=0) + 0.2 * np.random.default_rng(0).normal(size=(12, 3))
    >>> ax = criterion_curve(cluster_profiles(xr.DataArray(x, dims=("neuroid", "condition")), k_range=(2, 4), n_boot=0))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('number of clusters k', 'silhouette score (correlation)')
    """
    check_dataset("clusters", clusters, ("criterion_curve", "k"), "a cluster_profiles result")
    k = np.asarray(clusters["k"].values)
    curve = np.asarray(clusters["criterion_curve"].values, dtype=np.float64)
    ax = new_axes(ax, 4.4, 3.2)
    se = np.asarray(clusters["gap_se"].values) if "gap_se" in clusters else None
    ax.errorbar(k, curve, yerr=se, fmt="o-", color="#0072B2", ms=4, capsize=3 if se is not None else 0, lw=1.2)
    chosen = clusters.attrs.get("k_chosen")
    if chosen is not None and chosen in k:
        ax.plot([chosen], curve[list(k).index(chosen)], "o", ms=11, mfc="none", mec="#D55E00", mew=2,
                label=f"chosen: k = {chosen}")
        ax.legend(fontsize="small", frameon=False)
    ax.set_xticks(k)
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel(label(clusters["criterion_curve"], str(clusters.attrs.get("criterion", "criterion"))))
    return ax


def embedding(profiles: xr.DataArray, clusters: xr.Dataset | None = None, method: str = "pca", seed: int = 0,
              ax: Axes | None = None) -> Axes:
    """The units' profiles embedded in 2-D (PCA or t-SNE), coloured by population.

    Parameters
    ----------
    profiles : xarray.DataArray, dims (neuroid, condition)
        As for :func:`profile_heatmap`; units with a non-finite value (silent units) are left
        out.
    clusters : xarray.Dataset, optional
        :func:`~neurorecord.analysis.cluster_profiles` of ``profiles``, for the colours.
    method : {"pca", "tsne"}, default "pca"
        ``sklearn.decomposition.PCA(2)`` (axes labelled with their fraction of variance) or
        ``sklearn.manifold.TSNE(2, init="pca", random_state=seed)`` with perplexity
        ``min(30, (n - 1) / 3)``.
    seed : int, default 0
        Seed of t-SNE.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    PlotError
        As :func:`profile_heatmap`; an unknown ``method``; fewer than 3 finite units.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.random.default_rng(0).normal(size=(12, 4))
    >>> embedding(xr.DataArray(x, dims=("neuroid", "condition"))).get_xlabel()[:4]
    'PC 1'
    """
    from .._validation import check_choice, check_seed

    profiles = _check_profiles(profiles)
    method = check_choice("method", method, EMBEDDINGS, error=PlotError)
    seed = check_seed("seed", seed, error=PlotError)
    population = _populations(profiles, clusters)
    values = np.asarray(profiles.values, dtype=np.float64)
    ok = np.isfinite(values).all(axis=1)
    if ok.sum() < 3:
        raise PlotError(f"profiles: expected at least 3 units with finite profiles to embed, found {int(ok.sum())}")
    x = values[ok]
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(x)
        xy = pca.transform(x)
        names = [f"PC {i + 1} ({100 * r:.0f}% of variance)" for i, r in enumerate(pca.explained_variance_ratio_)]
    else:
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, (len(x) - 1) / 3)).fit_transform(x)
        names = ["t-SNE 1", "t-SNE 2"]
    ax = new_axes(ax, 4.6, 4.0)
    pops = population[ok]
    colors = _colors(population)
    for p in sorted(set(pops.tolist()), key=lambda v: (v < 0, v)):
        sel = pops == p
        name = None if clusters is None else (f"population {p} (n={int(sel.sum())})" if p >= 0 else f"set aside (n={int(sel.sum())})")
        ax.scatter(xy[sel, 0], xy[sel, 1], s=16, color=colors[p] if clusters is not None else "#0072B2", label=name,
                   edgecolors="white", linewidths=0.3)
    if clusters is not None:
        ax.legend(fontsize="small", frameon=False, loc="best")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if method == "tsne":
        ax.set_xticks([])
        ax.set_yticks([])
    dropped = int((~ok).sum())
    ax.set_title(f"{int(ok.sum())} units" + (f" ({dropped} silent left out)" if dropped else ""), fontsize="medium")
    return ax
