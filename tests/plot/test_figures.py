"""Every figure of neurorecord.plot against its reference image, its axis labels with units, its
inputs left unchanged, and its errors for bad input.

The reference images (tests/plot/baseline/) are drawn by ``python -m tests.plot.make_baseline``
from the same inputs (tests/plot/cases.py), never by hand; the comparison is
``matplotlib.testing.compare.compare_images`` with an RMS tolerance of :data:`cases.TOL`.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.testing.compare import compare_images

from neurorecord import analysis, plot
from neurorecord.plot import PlotError
from tests.plot import cases


@pytest.mark.parametrize("name", sorted(cases.FIGURES))
def test_figure_matches_its_reference_image_and_leaves_its_inputs_unchanged(name, tmp_path):
    expected = cases.BASELINE / f"{name}.png"
    assert expected.is_file(), f"no reference image {expected}; draw it with python -m tests.plot.make_baseline {name}"
    inputs = cases.FIGURES[name][1]()
    before = [copy.deepcopy(x) for x in inputs]
    actual = tmp_path / f"{name}.png"
    cases.draw(name, actual)
    diff = compare_images(str(expected), str(actual), tol=cases.TOL)
    assert diff is None, diff
    for old, new in zip(before, inputs):
        xr.testing.assert_identical(old, new)


def _only_axes(name: str):
    return cases.figure(name).axes[0]


@pytest.mark.parametrize("name, xlabel, ylabel", [
    ("raster-counts", "[ms]", "direction of motion [deg]"),
    ("raster-model", "[ms]", "class label"),
    ("psth-counts", "[ms]", "[spikes/s]"),
    ("psth-by", "[ms]", "mean activity of gru [a.u.]"),
    ("tuning-fit", "orientation [deg]", "mean response [a.u.]"),
    ("tuning-labels", "class label", "mean response [a.u.]"),
    ("receptive-field", "horizontal position [pixels]", "vertical position [pixels]"),
    ("profile-heatmap", "label", "units, by population"),  # response_profiles keeps no attrs of `by`
    ("dendrogram", "clustered", "[1 - r]"),
    ("lesion-heatmap", "class", "lesion"),
    ("control-distribution", "[percentage points]", "control lesions"),
    ("downstream-change", "relative RMS change", "lesion"),
])
def test_axis_labels_carry_units_from_the_attrs(name, xlabel, ylabel):
    ax = _only_axes(name)
    assert xlabel in ax.get_xlabel() and ylabel in ax.get_ylabel(), (ax.get_xlabel(), ax.get_ylabel())


def test_colour_bars_say_what_and_in_which_units():
    for name, text in (("receptive-field", "mean response [a.u.]"), ("lesion-heatmap", "[percentage points]"),
                       ("raster-model", "[a.u.]")):
        bars = [ax.get_ylabel().replace("\n", " ") for ax in cases.figure(name).axes[1:]]
        assert any(text in b for b in bars), (name, bars)


def test_polar_plot_names_angle_and_radius_with_units():
    title = cases.figure("polar-orientation").axes[0].get_title()
    assert "orientation [deg]" in title and "[a.u.]" in title


def test_polar_orientation_is_drawn_at_both_opposite_angles():
    tuning, fit = cases._tuning_orientation()
    ax = plot.polar_tuning(tuning, 0, band="none")
    theta = np.rad2deg(ax.lines[0].get_xdata())
    assert sorted(np.unique(np.round(theta % 360, 6))) == sorted(np.r_[np.arange(0, 180, 15.0), np.arange(180, 360, 15.0)])


def test_raster_draws_one_tick_per_spike_in_the_right_trials():
    counts = cases.spikes()
    ax = plot.raster(counts, "V1.u1", sort_by="direction")
    xy = ax.collections[0].get_offsets()
    assert len(xy) == int(counts.sel(neuroid=1).sum())
    order = np.argsort(counts["direction"].values, kind="stable")
    per_row = np.bincount(np.asarray(xy[:, 1], dtype=int), minlength=counts.sizes["presentation"])
    np.testing.assert_array_equal(per_row, counts.isel(neuroid=1).sum("time_bin").values[order])


def test_psth_rate_is_the_trial_mean_over_the_bin_width():
    counts = cases.spikes()
    ax = plot.psth(counts, "V1.u0", rate=True)
    expected = counts.isel(neuroid=0).mean("presentation").values * 1000 / 10
    np.testing.assert_allclose(ax.lines[0].get_ydata(), expected, rtol=1e-6)


def test_dendrogram_cut_gives_the_chosen_number_of_populations():
    from scipy.cluster.hierarchy import fcluster

    _, clusters = cases.clustered()
    ax = plot.dendrogram(clusters)
    cut = [line for line in ax.lines if line.get_linestyle() == "--"][0].get_ydata()[0]
    z = clusters["linkage"].values
    assert len(np.unique(fcluster(z, cut, criterion="distance"))) == clusters.attrs["k_chosen"]


def test_embedding_pca_matches_sklearn():
    from sklearn.decomposition import PCA

    profiles, clusters = cases.clustered()
    ax = plot.embedding(profiles, clusters, method="pca")
    ok = np.isfinite(profiles.values).all(axis=1)
    expected = PCA(2).fit_transform(profiles.values[ok])
    pops = clusters["population"].values[ok]
    drawn = np.concatenate([c.get_offsets() for c in ax.collections])
    order = np.concatenate([np.flatnonzero(pops == p) for p in sorted(set(pops.tolist()), key=lambda v: (v < 0, v))])
    np.testing.assert_allclose(drawn, expected[order], atol=1e-12)


def test_control_distribution_reports_the_stored_empirical_p():
    from neurorecord.analysis.lesion_stats import control_null

    fx = cases.effects()
    ax = plot.control_distribution(fx, "group")
    controls = [f"group/control{i}" for i in range(20)]
    p = control_null([float(fx["delta_accuracy"].sel(lesion="group", **{"class": "overall"}))],
                     fx["delta_accuracy"].sel(lesion=controls, **{"class": "overall"}).values[:, None])["p_empirical"]
    assert f"p = {float(p[0]):.3g}" in ax.get_legend().get_texts()[1].get_text()


def test_lesion_heatmap_marks_exactly_the_significant_cells():
    fx = cases.effects()
    ax = plot.lesion_heatmap(fx, q_below=0.05)
    marks = ax.collections[0].get_offsets()
    q = fx["q"].sel(lesion=[f"fc3.{i}" for i in range(6)]).transpose("lesion", "class").values
    assert sorted(map(tuple, np.asarray(marks, dtype=int)[:, ::-1].tolist())) == sorted(zip(*np.nonzero(q < 0.05)))


def test_indicator_matrix_prints_the_correlations_of_indicator_correlations():
    ind = cases.indicators()
    corr = analysis.indicator_correlations(ind, n_boot=50)
    fig = plot.indicator_matrix(ind, corr)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    rho = float(corr["spearman"].sel(indicator="csi", indicator2="lesion_impact"))
    assert any(f"ρ = {rho:.2f}" in t for t in texts)


def _bad(call, match):
    with pytest.raises(PlotError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: plot.raster(cases.spikes().isel(time_bin=0), 0), r"activity: expected dims .*time-resolved"),
    (lambda: plot.raster(cases.spikes(), "V1.u9"), r"neuroid: expected a neuroid_id of the data, found 'V1.u9'.*V1.u0"),
    (lambda: plot.raster(cases.spikes(), 5), r"neuroid: expected a unit position in \[0, 3\), found 5"),
    (lambda: plot.psth(cases.spikes(), 0, by="orientation"), r"by: expected a presentation coordinate, found 'orientation'; "
                                                            r"presentation coordinates: direction"),
    (lambda: plot.psth(cases.spikes(), 0, rate="yes"), r"rate: expected a bool, found 'yes'"),
    (lambda: plot.tuning_curve(cases.classes(), 0), r"tuning: expected a tuning_curve result \(an xarray.Dataset\), found DataArray"),
    (lambda: plot.tuning_curve(cases._tuning_orientation()[0], 0, band="sd"), r"band: expected one of 'ci', 'sem', 'none', found 'sd'"),
    (lambda: plot.polar_tuning(analysis.tuning_curve(cases.classes(), "label", n_boot=5), 0),
     r"period: the conditions 'label' are not known angles"),
    (lambda: plot.polar_tuning(cases._tuning_orientation()[0], 0, ax=Figure().add_subplot()), r"ax: expected polar axes"),
    (lambda: plot.receptive_field(cases._tuning_orientation()[0], 0), r"tuning: expected a 2-D tuning_curve result"),
    (lambda: plot.selective_units(analysis.tuning_curve(cases.classes(), "label", n_boot=5),
                                  analysis.selectivity(cases.classes(), "label", "csi"), variable="osi"),
     r"variable: expected a per-unit index of selectivity, found 'osi'; per-unit indices: csi"),
    (lambda: plot.dendrogram(analysis.cluster_profiles(cases.clustered()[0], method="kmeans", k_range=(2, 3), n_boot=0)),
     r"clusters: expected a cluster_profiles result with a 'linkage'.*found 'kmeans'"),
    (lambda: plot.embedding(*cases.clustered(), method="umap"), r"method: expected one of 'pca', 'tsne', found 'umap'"),
    (lambda: plot.profile_heatmap(cases.clustered()[0].isel(neuroid=slice(0, 5)), cases.clustered()[1]),
     r"clusters: expected the clustering of these profiles"),
    (lambda: plot.lesion_heatmap(cases.effects(), kind="pair"), r"kind: expected a lesion_kind of effects, found 'pair'; kinds: control, group, single"),
    (lambda: plot.lesion_heatmap(cases.effects(), q_below=2), r"q_below"),
    (lambda: plot.control_distribution(cases.effects(), "fc3.0"), r"lesion: 'fc3.0' has no matched controls"),
    (lambda: plot.control_distribution(cases.effects(), "grp"), r"lesion: expected a lesion of effects with controls, found 'grp'; lesions with controls: group"),
    (lambda: plot.control_distribution(cases.effects(), "group", cls="11"), r"cls: expected a class of effects, found '11'"),
    (lambda: plot.downstream_change(cases.effects().drop_vars("activity_change")), r"effects: expected a lesion entry with downstream"),
    (lambda: plot.indicator_matrix(cases.indicators(), variables=["csi"]), r"variables: expected at least two per-unit variables"),
])
def test_bad_input_is_an_error_naming_argument_expected_and_found(call, match):
    _bad(call, match)


def test_plot_never_imports_torch_or_pyplot():
    script = ("import sys; import neurorecord.plot, neurorecord.plot.activity; "
              "print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
