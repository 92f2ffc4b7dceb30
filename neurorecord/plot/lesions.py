"""Lesions: the lesion x class heat map of accuracy changes with significance marks, a group
lesion against its matched random controls, the downstream activity change per lesion, and the
scatter matrix of per-unit indicators with their correlations.

Inputs are a lesion entry's stored Dataset (``lesions/<name>``, docs/lesion.md "The stored
Dataset"; :func:`~neurorecord.analysis.lesion_stats.lesion_effects` gives the same variables)
and :func:`~neurorecord.analysis.unit_indicators` /
:func:`~neurorecord.analysis.indicator_correlations`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import (DIVERGING, PlotError, category_colors, check_dataset, label, new_axes, new_figure, symmetric_limits,
                      texts, wrapped)

__all__ = ["lesion_heatmap", "control_distribution", "downstream_change", "indicator_matrix"]

#: Most lesion names on an axis; beyond, the axis says how many lesions there are.
MAX_TICKS = 40


def _of_kind(effects: xr.Dataset, kind: str | None) -> xr.Dataset:
    if kind is None or "lesion_kind" not in effects.coords:
        return effects
    kinds = texts(effects["lesion_kind"].values)
    if not (kinds == kind).any():
        raise PlotError(f"kind: expected a lesion_kind of effects, found {kind!r}; kinds: {', '.join(sorted(set(kinds)))}")
    return effects.isel(lesion=np.flatnonzero(kinds == kind))


def lesion_heatmap(effects: xr.Dataset, q_below: float = 0.05, kind: str | None = "single", ax: Axes | None = None) -> Axes:
    """Lesion x class heat map of accuracy changes, significant changes marked.

    Parameters
    ----------
    effects : xarray.Dataset
        A lesion entry (``delta_accuracy`` and ``q``, dims (lesion, class)).
    q_below : float, default 0.05
        Cells with ``q < q_below`` get a dot (the McNemar tests corrected over the sweep, as
        stored).
    kind : str or None, default "single"
        Keep the lesions of this ``lesion_kind`` (``"single"``, ``"group"``, ``"control"``);
        None keeps all.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        Diverging map centred at 0 (blue: accuracy lost), colour bar labelled from
        ``delta_accuracy``'s attrs; the ``"overall"`` column is set apart by a line.

    Raises
    ------
    PlotError
        ``effects`` lacks the variables, ``q_below`` is not in (0, 1], an unknown ``kind``.

    Examples
    --------
    >>> import numpy as np
    >>> from neurorecord.analysis.lesion_stats import lesion_effects
    >>> correct = np.array([[0, 0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 0]], bool)
    >>> fx = lesion_effects(correct, np.ones(8, bool), [3, 3, 3, 3, 7, 7, 7, 7], ["fc2.0", "fc2.1"], n_boot=0)
    >>> lesion_heatmap(fx).get_xlabel()
    'class'
    """
    from .._validation import check_scalar

    check_dataset("effects", effects, ("delta_accuracy", "q"), "a lesion entry's Dataset (lesion_effects)")
    check_scalar("q_below", q_below, float, low=0.0, high=1.0, closed="right", error=PlotError)
    fx = _of_kind(effects, kind)
    delta = fx["delta_accuracy"].transpose("lesion", "class")
    values = np.asarray(delta.values, dtype=np.float64)
    q = np.asarray(fx["q"].transpose("lesion", "class").values, dtype=np.float64)
    classes = texts(delta["class"].values)
    names = texts(delta["lesion"].values)
    ax = new_axes(ax, 5.0, max(3.0, min(8.0, 1.2 + 0.16 * len(names))))
    vmin, vmax = symmetric_limits(values)
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", interpolation="nearest", cmap=DIVERGING,
                      vmin=vmin, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, label=wrapped(label(delta, "accuracy change")))
    rows, cols = np.nonzero(q < q_below)
    ax.scatter(cols, rows, s=6 if len(names) > MAX_TICKS else 14, color="black", marker="o", lw=0,
               label=f"q < {q_below:g} ({len(rows)} of {values.size} cells)")
    if "overall" in classes:
        ax.axvline(float(np.flatnonzero(classes == "overall")[0]) - 0.5, color="black", lw=1.0)
    ax.set_xticks(np.arange(len(classes)), classes, rotation=90 if max(map(len, classes)) > 3 else 0)
    if len(names) <= MAX_TICKS:
        ax.set_yticks(np.arange(len(names)), names, fontsize="small")
        ax.set_ylabel("lesion")
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{len(names)} lesions" + (f" ({kind})" if kind else ""))
    ax.set_xlabel("class")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize="small", frameon=False, handletextpad=0.2)
    return ax


def control_distribution(effects: xr.Dataset, lesion: str, cls: str = "overall", ax: Axes | None = None) -> Axes:
    """A group lesion's accuracy change against the changes of its matched random controls.

    Parameters
    ----------
    effects : xarray.Dataset
        A lesion entry with ``controls:``; the controls of lesion ``name`` are named
        ``name/control0`` ... (docs/lesion.md, "Matched random controls").
    lesion : str
        The group lesion's name (``"population:likes-3"``).
    cls : str, default "overall"
        The class whose accuracy change is compared.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        Histogram of the controls, the target as a vertical line; the legend gives the
        empirical p and percentile of :func:`~neurorecord.analysis.lesion_stats.control_null`.

    Raises
    ------
    PlotError
        Unknown lesion or class, or no controls of that lesion.

    Examples
    --------
    >>> import numpy as np
    >>> from neurorecord.analysis.lesion_stats import lesion_effects
    >>> rng = np.random.default_rng(0)
    >>> correct = rng.random((21, 40)) > np.r_[0.6, np.full(20, 0.1)][:, None]
    >>> names = ["pop"] + [f"pop/control{i}" for i in range(20)]
    >>> fx = lesion_effects(correct, np.ones(40, bool), np.arange(40) % 2, names, n_boot=0)
    >>> control_distribution(fx, "pop").get_ylabel()
    'control lesions'
    """
    from ..analysis.lesion_stats import control_null

    check_dataset("effects", effects, ("delta_accuracy",), "a lesion entry's Dataset (lesion_effects)")
    names = texts(effects["lesion"].values)
    classes = texts(effects["class"].values)
    if lesion not in names:
        groups = sorted({n.split("/control")[0] for n in names if "/control" in n})
        raise PlotError(f"lesion: expected a lesion of effects with controls, found {lesion!r}; lesions with controls: "
                        f"{', '.join(groups) or 'none'}")
    if str(cls) not in classes:
        raise PlotError(f"cls: expected a class of effects, found {cls!r}; classes: {', '.join(classes)}")
    controls = [n for n in names if n.startswith(f"{lesion}/control")]
    if not controls:
        raise PlotError(f"lesion: {lesion!r} has no matched controls (lesions named '{lesion}/control<i>') in effects")
    delta = effects["delta_accuracy"].sel({"class": str(cls)})
    target, null = float(delta.sel(lesion=lesion)), np.asarray(delta.sel(lesion=controls).values, dtype=np.float64)
    result = control_null([target], null[:, None], classes=[str(cls)])
    ax = new_axes(ax, 4.6, 3.2)
    spread = np.r_[null, target]
    bins = np.histogram_bin_edges(spread[np.isfinite(spread)], bins=min(30, max(5, len(null) // 3)))
    ax.hist(null, bins=bins, color="0.6", label=f"{len(null)} matched random lesions")
    ax.axvline(target, color="#D55E00", lw=2,
               label=f"{lesion}: p = {float(result['p_empirical'][0]):.3g}, "
                     f"percentile {float(result['percentile'][0]):.0f}")
    ax.axvline(0.0, color="black", lw=0.6, ls=":")
    ax.set_xlabel(label(effects["delta_accuracy"], "accuracy change") + ("" if cls == "overall" else f", class {cls}"))
    ax.set_ylabel("control lesions")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(0.0, 1.25))
    return ax


def downstream_change(effects: xr.Dataset, n_lesions: int = 20, kind: str | None = "single", ax: Axes | None = None) -> Axes:
    """How much each lesion changes the activity of the downstream regions: the top lesions.

    Parameters
    ----------
    effects : xarray.Dataset
        A lesion entry with ``downstream:`` (``activity_change``, dims (lesion, downstream)).
    n_lesions : int, default 20
        The lesions shown: those with the largest change in any downstream region, largest
        first.
    kind : str or None, default "single"
        Keep the lesions of this ``lesion_kind``; None keeps all.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new Figure.

    Returns
    -------
    matplotlib.axes.Axes
        Horizontal bars, one colour per downstream region.

    Raises
    ------
    PlotError
        No ``activity_change`` (the entry had no ``downstream:``), bad ``n_lesions`` or ``kind``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fx = xr.Dataset({"activity_change": (("lesion", "downstream"), [[0.1, 0.02], [0.3, 0.1]])},
    ...                 coords={"lesion": ["fc2.0", "fc2.1"], "downstream": ["fc3", "out"]})
    >>> [t.get_text() for t in downstream_change(fx).get_yticklabels()]
    ['fc2.1', 'fc2.0']
    """
    check_dataset("effects", effects, ("activity_change",), "a lesion entry with downstream: (activity_change)")
    if isinstance(n_lesions, bool) or not isinstance(n_lesions, (int, np.integer)) or n_lesions < 1:
        raise PlotError(f"n_lesions: expected an integer >= 1, found {n_lesions!r}")
    change = _of_kind(effects, kind)["activity_change"].transpose("lesion", "downstream")
    values = np.asarray(change.values, dtype=np.float64)
    top = np.argsort(-np.nan_to_num(np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=1), neginf=-1.0),
                     kind="stable")[: int(n_lesions)]
    regions = texts(change["downstream"].values)
    names = texts(change["lesion"].values)[top]
    ax = new_axes(ax, 4.8, max(2.6, 0.9 + 0.22 * len(top) * max(1, len(regions)) ** 0.5))
    height = 0.8 / len(regions)
    for j, (region, color) in enumerate(zip(regions, category_colors(len(regions)))):
        ax.barh(np.arange(len(top)) + (j - (len(regions) - 1) / 2) * height, values[top, j], height=height,
                color=color, label=region)
    ax.set_yticks(np.arange(len(top)), names, fontsize="small")
    ax.invert_yaxis()
    attrs = change.attrs
    ax.set_xlabel(label({"long_name": attrs.get("long_name", "relative RMS change of the response"),
                         "units": "1" if str(attrs.get("units", "1")).startswith("1") else attrs["units"]}))
    ax.set_ylabel(f"lesion (top {len(top)} of {values.shape[0]})")
    ax.legend(title="downstream", fontsize="small", title_fontsize="small", frameon=False, loc="lower right")
    return ax


def _short_label(var: xr.DataArray, name: str) -> str:
    units = var.attrs.get("units")
    return wrapped(f"{name} [{units}]" if units not in (None, "", "1") else name, 22)


def indicator_matrix(indicators: xr.Dataset, correlations: xr.Dataset | None = None,
                     variables: list[str] | None = None) -> Figure:
    """Scatter matrix of per-unit indicators: scatter plots below the diagonal, histograms on it,
    Spearman and Pearson correlations (with their bootstrap CIs when given) above it.

    Parameters
    ----------
    indicators : xarray.Dataset
        From :func:`~neurorecord.analysis.unit_indicators` (variables over ``neuroid``).
    correlations : xarray.Dataset, optional
        :func:`~neurorecord.analysis.indicator_correlations` of ``indicators``; default: computed
        here without bootstrap (``n_boot=0``).
    variables : list of str, optional
        The indicators, in order; default every numeric per-unit variable.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    PlotError
        Fewer than two variables, or one that is not a per-unit variable of ``indicators``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ind = xr.Dataset({"csi": ("neuroid", rng.random(30)), "lesion_impact": ("neuroid", rng.random(30))})
    >>> len(indicator_matrix(ind).axes)
    4
    """
    from ..analysis import indicator_correlations

    if not isinstance(indicators, xr.Dataset):
        raise PlotError(f"indicators: expected a unit_indicators result (an xarray.Dataset), found {type(indicators).__name__}")
    numeric = [str(k) for k, v in indicators.data_vars.items() if v.dims == ("neuroid",) and v.dtype.kind in "iuf"]
    variables = numeric if variables is None else list(variables)
    unknown = [v for v in variables if v not in numeric]
    if unknown or len(variables) < 2:
        raise PlotError(f"variables: expected at least two per-unit variables of indicators, found {variables!r}; "
                        f"per-unit variables: {', '.join(numeric) or 'none'}")
    if correlations is None:
        correlations = indicator_correlations(indicators[variables], n_boot=0)
    check_dataset("correlations", correlations, ("spearman", "pearson"), "an indicator_correlations result")
    k = len(variables)
    fig = new_figure(1.9 * k + 0.6, 1.9 * k + 0.3)
    axes = fig.subplots(k, k, squeeze=False)
    data = {v: np.asarray(indicators[v].values, dtype=np.float64) for v in variables}
    for i, yv in enumerate(variables):
        for j, xv in enumerate(variables):
            ax = axes[i, j]
            if i == j:
                finite = data[xv][np.isfinite(data[xv])]
                ax.hist(finite, bins=20, color="0.5")
                ax.set_yticks([])
            elif i > j:
                ax.scatter(data[xv], data[yv], s=5, color="#0072B2", alpha=0.6, lw=0)
            else:
                ax.set_axis_off()
                text = []
                for m, sym in (("spearman", "ρ"), ("pearson", "r")):
                    value = float(correlations[m].sel(indicator=xv, indicator2=yv))
                    ci = ""
                    if f"{m}_ci_low" in correlations:
                        lo = float(correlations[f"{m}_ci_low"].sel(indicator=xv, indicator2=yv))
                        hi = float(correlations[f"{m}_ci_high"].sel(indicator=xv, indicator2=yv))
                        ci = f"\n[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else ""
                    text.append(f"{sym} = {value:.2f}{ci}")
                n = int(correlations["n"].sel(indicator=xv, indicator2=yv)) if "n" in correlations else None
                ax.text(0.5, 0.5, "\n".join(text) + (f"\nn = {n}" if n is not None else ""), ha="center", va="center",
                        fontsize="small", transform=ax.transAxes)
            ax.tick_params(labelsize="x-small")
            if i == k - 1:
                ax.set_xlabel(_short_label(indicators[xv], xv), fontsize="small")
            elif i >= j:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(_short_label(indicators[yv], yv), fontsize="small")
            elif j > 0 and i > j:
                ax.set_yticklabels([])
    fig.suptitle(f"per-unit indicators ({indicators.sizes['neuroid']} units); ρ: Spearman, r: Pearson", fontsize="medium")
    return fig

