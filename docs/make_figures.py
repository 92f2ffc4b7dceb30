"""Draw the pictures of docs/figures.md from real package output.

Runs small protocols (the default digits protocol, the lesion study, an orientation-tuning and
the Gabor receptive-field protocol of ``protocols/``, a time-resolved digits-gru protocol), reads
the macaque V1 recording of Ecker et al. (2010) when it is present, and calls every function of
:mod:`neurorecord.plot` on the results. Nothing is drawn by hand.

    python docs/make_figures.py [--work DIR]

``--work`` keeps the recordings in DIR, so a second run skips the recording (default: a
temporary folder). The PNGs go to ``docs/figures/``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import matplotlib
import numpy as np

import neurorecord
from neurorecord import analysis, plot
from neurorecord.store import load_result_node

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
OUT = DOCS / "figures"
RC = {"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10}

ORIENTATION = """\
neurorecord: 1
name: orientation-small
seed: 0
subject: {zoo: digits32-cnn}
stimuli:
  - name: gratings
    kind: grating
    size: [32, 32]
    background: 0.5
    grid:
      orientation: {start: 0, stop: 165, step: 15}
      spatial_frequency: [0.125]
      phase: [0, 90, 180, 270]
      contrast: 100
record:
  regions: [conv2, fc1]
  batch_size: 240
  reduce: mean
  repetitions: 5
  variability: {jitter: 1, fill: 0.5, input_noise: 0.05}
"""

TIME = """\
neurorecord: 1
name: digits-time
seed: 0
subject: {zoo: digits-gru}
stimuli:
  - {name: digits, kind: digits, split: test}
record:
  regions: [gru]
  batch_size: 256
  time: {steps: 12, onset: 2, offset: 6, step_ms: 25, blank: 0.0}
"""


def _run(work: Path, name: str, protocol: Path | str) -> Path:
    """The recording of ``protocol`` (a path, or YAML text) in ``work/name``, made once."""
    out = work / name
    if isinstance(protocol, str):
        path = work / f"{name}.yaml"
        path.write_text(protocol)
        protocol = path
    if not (out / "zarr.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        neurorecord.run(protocol, out, quiet=True)
    (out.parent / f"{name}.protocol").write_text(str(protocol))
    return out


def _activity(out: Path, region: str):
    """A region's activity, its presentation coordinates given the attrs (units, long_name) of
    their stimulus sets (:func:`neurorecord.stimuli.coordinate_attrs`).

    The recorder does not yet store these attrs on the coordinates; until it does, they are
    attached here from the protocol the recording was made with."""
    from neurorecord.stimuli import build_stimulus_sets, coordinate_attrs

    activity = neurorecord.open_recording(out)[region]["activity"]
    protocol = neurorecord.load_protocol(Path((out.parent / f"{out.name}.protocol").read_text()))
    for name, attrs in coordinate_attrs(build_stimulus_sets(protocol)).items():
        if name in activity.coords:
            activity[name].attrs.update(attrs)
    return activity


def _save(fig, name: str) -> None:
    fig.savefig(OUT / f"{name}.png")
    print(f"wrote docs/figures/{name}.png")


def main(work: Path) -> None:
    OUT.mkdir(exist_ok=True)
    with matplotlib.rc_context(RC):
        # -- digits (default protocol): tuning by class, selectivity, functional populations
        digits = _run(work, "digits", neurorecord.default_protocol_path())
        fc2 = _activity(digits, "fc2")
        tuning = analysis.tuning_curve(fc2, "label", n_boot=500)
        csi = analysis.selectivity(fc2, "label", "csi")
        best = str(csi["neuroid_id"].values[int(np.nanargmax(csi["csi"].values))])
        _save(plot.tuning_curve(tuning, best).figure, "tuning-label")
        _save(plot.selective_units(tuning, csi, n_units=9), "selective-units")
        profiles = analysis.response_profiles(fc2, "label")
        clusters = analysis.cluster_profiles(profiles, method="average", n_boot=20)
        _save(plot.profile_heatmap(profiles, clusters).figure, "profile-heatmap")
        _save(plot.dendrogram(clusters).figure, "dendrogram")
        _save(plot.criterion_curve(clusters).figure, "criterion-curve")
        _save(plot.embedding(profiles, clusters, method="pca").figure, "embedding-pca")
        _save(plot.embedding(profiles, clusters, method="tsne").figure, "embedding-tsne")
        from neurorecord.compare import rdm

        _save(plot.rdm_heatmap({"fc1": rdm(_activity(digits, "fc1"), "label"), "fc2": rdm(fc2, "label"),
                                "fc3": rdm(_activity(digits, "fc3"), "label")}), "rdm")

        # -- orientation tuning of a CNN: curve with von Mises fit, polar plot
        ori = _run(work, "orientation", ORIENTATION)
        conv2 = _activity(ori, "conv2")
        t_ori = analysis.tuning_curve(conv2, "orientation", n_boot=500)
        fit = analysis.fit_von_mises(conv2, "orientation", period=180)
        unit = int(np.nanargmax(np.where(fit["converged"].values, fit["r2"].values * fit["amplitude"].values, np.nan)))
        _save(plot.tuning_curve(t_ori, unit, fit=fit).figure, "tuning-orientation")
        _save(plot.polar_tuning(t_ori, unit, fit=fit).figure, "polar-orientation")

        # -- receptive fields from the Gabor mapping protocol
        rf = _run(work, "gabor-rf", REPO / "protocols" / "gabor-rf-mapping.yaml")
        rf_map = analysis.tuning_curve(_activity(rf, "conv2"), ["x", "y"], n_boot=10)
        peak = int(np.nanargmax(np.nanmax(rf_map["mean"].values, axis=(0, 1)) - np.nanmin(rf_map["mean"].values, axis=(0, 1))))
        _save(plot.receptive_field(rf_map, peak).figure, "receptive-field")

        # -- time-resolved model activity
        gru = _activity(_run(work, "time", TIME), "gru")
        _save(plot.raster(gru.isel(presentation=slice(0, 120)), 0, sort_by="label").figure, "raster-model")
        _save(plot.psth(gru, 0, by="label").figure, "psth-model")

        # -- lesions
        les = _run(work, "lesion-study", REPO / "protocols" / "lesion-study.yaml")
        fx3 = load_result_node(les, "lesions/fc3-single")
        _save(plot.lesion_heatmap(fx3).figure, "lesion-heatmap")
        _save(plot.control_distribution(load_result_node(les, "lesions/likes3"), "population:likes-3").figure,
              "control-distribution")
        fx2 = load_result_node(les, "lesions/fc2-single")
        _save(plot.downstream_change(fx2, n_lesions=15).figure, "downstream-change")
        fc2_les = _activity(les, "fc2")
        # (unit_indicators casts the stored StringDType coordinates with .astype(str), which numpy refuses;
        # text coordinates as object arrays meanwhile)
        text = {k: fx2[k].astype(object) for k in fx2.coords if fx2[k].dtype.kind == "T"}
        indicators = analysis.unit_indicators(fc2_les, fx2.assign_coords(text))
        keep = ["magnitude", "csi", "dprime", "lesion_impact", "max_class_impact"]
        corr = analysis.indicator_correlations(indicators[keep], n_boot=200)
        _save(plot.indicator_matrix(indicators, corr, variables=keep), "indicator-matrix")

        # -- biology: macaque V1 (Ecker et al. 2010), when the file is here
        from neurorecord.interop import ecker2010_path, read_ecker2010, response_window

        path = ecker2010_path() or REPO.parent / "shared" / "data" / "v1-ecker2010" / "data_v1_binned_moving.mat"
        if Path(path).is_file():
            v1 = read_ecker2010(path, sessions=[0])["session00"]["activity"]
            counts = response_window(v1, rate=True)
            t_dir = analysis.tuning_curve(counts, "direction", n_boot=500)
            fit_dir = analysis.fit_von_mises(counts, "direction", period=360, two_peaks=True)
            cell = int(np.nanargmax(np.where(fit_dir["converged"].values, fit_dir["r2"].values, np.nan)
                                    * np.nanmax(t_dir["mean"].values, axis=0)))
            _save(plot.raster(v1, cell, sort_by="direction", stimulus=(0, 500)).figure, "raster-v1")
            _save(plot.psth(v1.sel(time_bin=slice(None, None)), cell, stimulus=(0, 500), rate=True).figure, "psth-v1")
            _save(plot.polar_tuning(t_dir, cell, fit=fit_dir).figure, "polar-v1")
        else:
            print(f"Ecker 2010 file not found at {path}: the V1 figures are not redrawn")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="folder to keep the recordings in")
    args = parser.parse_args()
    if args.work is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        main(args.work)
