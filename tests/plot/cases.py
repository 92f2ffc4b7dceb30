"""Small fixed synthetic inputs and the figure each plot function draws of them.

Shared by the image tests (tests/plot/test_figures.py) and the script that draws their
reference images (tests/plot/make_baseline.py), so that both draw exactly the same thing.
Every input is built from seeded generators and the package's own analyses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import matplotlib
import matplotlib.style
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from neurorecord import analysis, plot
from neurorecord.analysis.lesion_stats import lesion_effects

BASELINE = Path(__file__).resolve().parent / "baseline"
#: Tolerance of the image comparison (RMS of the pixel difference, 0-255 scale).
TOL = 2.0
#: Deterministic drawing: matplotlib's default style, fixed font, size and dpi, no hash salt.
RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "figure.dpi": 72, "savefig.dpi": 72,
      "svg.hashsalt": "neurorecord", "path.simplify": False, "text.hinting": "none"}


@contextmanager
def rc_context() -> Iterator[None]:
    """The style every test figure is drawn and saved in (restored on exit)."""
    with matplotlib.style.context("default"), matplotlib.rc_context(RC):
        yield


@lru_cache(maxsize=None)
def spikes() -> xr.DataArray:
    """Binned spike counts of 3 units: 8 directions x 6 trials x 30 bins of 10 ms (-100 .. 200 ms)."""
    rng = np.random.default_rng(0)
    direction = np.repeat(np.arange(0, 360, 45.0), 6)
    start = np.arange(30) * 10.0 - 100
    on = (start >= 0) & (start < 150)
    pref = np.array([90.0, 180.0, 0.0])
    rate = 0.1 + 0.8 * on[None, None, :] * np.exp(2 * (np.cos(np.deg2rad(direction[:, None, None] - pref[None, :, None])) - 1))
    counts = rng.poisson(rate).astype(np.float32)
    return xr.DataArray(counts, dims=("presentation", "neuroid", "time_bin"), attrs={"long_name": "spike count", "units": "spikes per bin"},
                        coords={"direction": ("presentation", direction, {"long_name": "direction of motion", "units": "deg", "period": 360.0}),
                                "neuroid_id": ("neuroid", ["V1.u0", "V1.u1", "V1.u2"]),
                                "time_bin_start": ("time_bin", start, {"units": "ms"}),
                                "time_bin_end": ("time_bin", start + 10, {"units": "ms"})})


@lru_cache(maxsize=None)
def model_time() -> xr.DataArray:
    """A model's time-resolved activity (not counts): 12 presentations x 2 units x 8 steps of 25 ms."""
    rng = np.random.default_rng(1)
    label = np.arange(12) % 3
    epoch = np.array(["before"] * 2 + ["stimulus"] * 4 + ["after"] * 2, dtype=object)
    values = rng.random((12, 2, 8)) * 0.2 + (epoch == "stimulus")[None, None, :] * (1 + label[:, None, None])
    step = np.arange(8)
    return xr.DataArray(values.astype(np.float32), dims=("presentation", "neuroid", "time_bin"),
                        attrs={"long_name": "activity of gru", "units": "a.u."},
                        coords={"label": ("presentation", label, {"long_name": "class label"}),
                                "neuroid_id": ("neuroid", ["gru.0", "gru.1"]),
                                "time_bin_start": ("time_bin", (step - 2) * 25.0, {"units": "ms"}),
                                "time_bin_end": ("time_bin", (step - 1) * 25.0, {"units": "ms"}),
                                "epoch": ("time_bin", epoch)})


@lru_cache(maxsize=None)
def orientation() -> xr.DataArray:
    """Responses of 6 units to 12 orientations x 5 repetitions, von Mises tuned with noise."""
    rng = np.random.default_rng(2)
    theta = np.repeat(np.arange(0, 180, 15.0), 5)
    pref = np.array([30.0, 60.0, 90.0, 120.0, 150.0, 0.0])
    kappa = np.array([4.0, 2.0, 1.0, 3.0, 0.5, 6.0])
    mean = 0.5 + 3 * np.exp(kappa * (np.cos(np.deg2rad(2 * (theta[:, None] - pref))) - 1))
    return xr.DataArray(mean + rng.normal(0, 0.4, mean.shape), dims=("presentation", "neuroid"), attrs={"units": "a.u."},
                        coords={"orientation": ("presentation", theta, {"long_name": "orientation", "units": "deg", "period": 180.0}),
                                "neuroid_id": ("neuroid", [f"conv2.{i}" for i in range(6)])})


@lru_cache(maxsize=None)
def positions() -> xr.DataArray:
    """Responses of 2 units to patches on a 5 x 5 grid of positions, 2 repetitions."""
    rng = np.random.default_rng(3)
    x, y = (v.ravel() for v in np.meshgrid(np.arange(-4, 5, 2.0), np.arange(-4, 5, 2.0)))
    x, y = np.tile(x, 2), np.tile(y, 2)
    rf = np.stack([np.exp(-((x - 2) ** 2 + (y + 1) ** 2) / 8), np.exp(-(x ** 2 + y ** 2) / 20)], axis=1)
    attrs = {"units": "pixels"}
    return xr.DataArray(rf + rng.normal(0, 0.05, rf.shape), dims=("presentation", "neuroid"), attrs={"units": "a.u."},
                        coords={"x": ("presentation", x, {"long_name": "horizontal position", **attrs}),
                                "y": ("presentation", y, {"long_name": "vertical position", **attrs}),
                                "neuroid_id": ("neuroid", ["conv1.0", "conv1.1"])})


@lru_cache(maxsize=None)
def classes() -> xr.DataArray:
    """Responses of 24 units to 4 classes x 5 repetitions: three groups of 8 preferring classes 0, 1, 2."""
    rng = np.random.default_rng(4)
    label = np.repeat(np.arange(4), 5)
    prefer = np.repeat(np.arange(3), 8)
    values = 0.3 * rng.random((20, 24)) + 2.0 * (label[:, None] == prefer[None, :]) + 0.5 * (label[:, None] == 3)
    return xr.DataArray(values, dims=("presentation", "neuroid"), attrs={"units": "a.u."},
                        coords={"label": ("presentation", label, {"long_name": "class label"}),
                                "neuroid_id": ("neuroid", [f"fc2.{i}" for i in range(24)])})


@lru_cache(maxsize=None)
def clustered() -> tuple[xr.DataArray, xr.Dataset]:
    profiles = analysis.response_profiles(classes(), "label")
    return profiles, analysis.cluster_profiles(profiles, k_range=(2, 5), n_boot=0)


@lru_cache(maxsize=None)
def effects() -> xr.Dataset:
    """Single-unit lesions of 6 units, one group lesion and its 20 controls, on 40 stimuli of 4 classes."""
    rng = np.random.default_rng(5)
    labels = np.arange(40) % 4
    intact = rng.random(40) > 0.1
    p_wrong = np.r_[[0.6, 0.0, 0.3, 0.0, 0.05, 0.1], 0.7, np.full(20, 0.15)]
    cls_hit = np.r_[[0, -1, 2, -1, 1, 3], -1, np.full(20, -1)]
    wrong = (rng.random((27, 40)) < p_wrong[:, None]) & ((cls_hit[:, None] < 0) | (labels[None, :] == cls_hit[:, None]))
    names = [f"fc3.{i}" for i in range(6)] + ["group"] + [f"group/control{i}" for i in range(20)]
    fx = lesion_effects(intact & ~wrong, intact, labels, names, n_boot=0)
    kinds = ["single"] * 6 + ["group"] + ["control"] * 20
    fx = fx.assign_coords(lesion_kind=("lesion", np.array(kinds, dtype=object)))
    change = np.abs(rng.normal(0, 0.05, (27, 2))) + np.r_[[0.3, 0.0, 0.2, 0.0, 0.1, 0.05], 0.5, np.zeros(20)][:, None]
    fx["activity_change"] = (("lesion", "downstream"), change, {"units": "1 (relative to the intact activity)"})
    return fx.assign_coords(downstream=["fc3", "out"])


@lru_cache(maxsize=None)
def indicators() -> xr.Dataset:
    rng = np.random.default_rng(6)
    csi = rng.random(30)
    impact = 3 * csi + rng.normal(0, 0.5, 30)
    return xr.Dataset({"csi": ("neuroid", csi, {"units": "1", "long_name": "class selectivity index"}),
                       "magnitude": ("neuroid", rng.gamma(2.0, 1.0, 30), {"units": "a.u."}),
                       "lesion_impact": ("neuroid", impact, {"units": "percentage points"})},
                      coords={"neuroid_id": ("neuroid", [f"fc2.{i}" for i in range(30)])})


def _ax(draw: Callable[..., object]) -> Callable[[], Figure]:
    def figure() -> Figure:
        out = draw()
        return out if isinstance(out, Figure) else out.figure
    return figure


@lru_cache(maxsize=None)
def _tuning_orientation():
    act = orientation()
    return analysis.tuning_curve(act, "orientation", n_boot=100), analysis.fit_von_mises(act, "orientation", period=180)


@lru_cache(maxsize=None)
def _tuning_direction():
    counts = spikes().sel(time_bin=spikes()["time_bin_start"] >= 0).sum("time_bin")
    return analysis.tuning_curve(counts, "direction", n_boot=100)


def _rdm(shuffled: bool = False) -> xr.DataArray:
    from neurorecord.compare import rdm

    act = classes()
    if shuffled:
        act = act.copy(data=np.random.default_rng(7).permuted(act.values, axis=0))
    return rdm(act, "label")


#: name -> (the figure, the inputs it reads): the inputs are checked to be left as they were.
FIGURES: dict[str, tuple[Callable[[], Figure], Callable[[], tuple]]] = {
    "raster-counts": (_ax(lambda: plot.raster(spikes(), "V1.u1", sort_by="direction")), lambda: (spikes(),)),
    "raster-model": (_ax(lambda: plot.raster(model_time(), 1, sort_by="label")), lambda: (model_time(),)),
    "psth-counts": (_ax(lambda: plot.psth(spikes(), "V1.u0", rate=True)), lambda: (spikes(),)),
    "psth-by": (_ax(lambda: plot.psth(model_time(), 0, by="label")), lambda: (model_time(),)),
    "tuning-fit": (_ax(lambda: plot.tuning_curve(*_tuning_orientation()[:1], "conv2.1", fit=_tuning_orientation()[1])),
                   lambda: _tuning_orientation()),
    "tuning-labels": (_ax(lambda: plot.tuning_curve(analysis.tuning_curve(classes(), "label", n_boot=100), 0, band="sem")),
                      lambda: (classes(),)),
    "polar-orientation": (_ax(lambda: plot.polar_tuning(_tuning_orientation()[0], 2, fit=_tuning_orientation()[1])),
                          lambda: _tuning_orientation()),
    "polar-direction": (_ax(lambda: plot.polar_tuning(_tuning_direction(), "V1.u0")), lambda: (_tuning_direction(),)),
    "receptive-field": (_ax(lambda: plot.receptive_field(analysis.tuning_curve(positions(), ["x", "y"], n_boot=10), 0)),
                        lambda: (positions(),)),
    "selective-units": (lambda: plot.selective_units(analysis.tuning_curve(classes(), "label", n_boot=50),
                                                     analysis.selectivity(classes(), "label", "csi"), n_units=4),
                        lambda: (classes(),)),
    "profile-heatmap": (_ax(lambda: plot.profile_heatmap(*clustered())), lambda: clustered()),
    "dendrogram": (_ax(lambda: plot.dendrogram(clustered()[1])), lambda: clustered()),
    "criterion-curve": (_ax(lambda: plot.criterion_curve(clustered()[1])), lambda: clustered()),
    "embedding-pca": (_ax(lambda: plot.embedding(*clustered(), method="pca")), lambda: clustered()),
    "embedding-tsne": (_ax(lambda: plot.embedding(*clustered(), method="tsne", seed=0)), lambda: clustered()),
    "lesion-heatmap": (_ax(lambda: plot.lesion_heatmap(effects())), lambda: (effects(),)),
    "control-distribution": (_ax(lambda: plot.control_distribution(effects(), "group")), lambda: (effects(),)),
    "downstream-change": (_ax(lambda: plot.downstream_change(effects(), n_lesions=5)), lambda: (effects(),)),
    "indicator-matrix": (lambda: plot.indicator_matrix(indicators()), lambda: (indicators(),)),
    "rdm": (lambda: plot.rdm_heatmap({"fc2": _rdm(), "fc2 (shuffled units)": _rdm(shuffled=True)}), lambda: (classes(),)),
}


_DRAWN: dict[str, Figure] = {}


def draw(name: str, path: Path) -> Figure:
    """Draw figure ``name`` afresh in the test style and save it as ``path`` (PNG)."""
    with rc_context():
        fig = FIGURES[name][0]()
        fig.savefig(path)
    _DRAWN[name] = fig
    return fig


def figure(name: str) -> Figure:
    """Figure ``name`` in the test style, drawn once per test session."""
    if name not in _DRAWN:
        with rc_context():
            _DRAWN[name] = FIGURES[name][0]()
    return _DRAWN[name]
