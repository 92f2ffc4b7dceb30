"""Protocol entries of ``kind: compare``: a recorded region against a second recording.

The reference is the same digits MLP recorded with trial variability (input noise, 3
repetitions), as a neurorecord store and as an NWB file written by ``to_nwb``. The stored
results must equal the compare functions called directly on the two recordings; a reference
that is the same recording must give an RDM similarity and a CKA of 1; a bad reference, region
or ``by`` must be refused with its protocol position before anything is written.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

import neurorecord
from neurorecord.analysis import load_analysis
from neurorecord.analysis.comparison import COMPARE_METHODS, RDM_METHODS, compare_with_reference
from neurorecord.compare import cka, compare_rdms, linear_predictivity, rdm, rdm_noise_ceiling, split_rdms
from neurorecord.compare.rdm import METHODS
from neurorecord.compare.rdm_compare import RSATOOLBOX_NAMES
from neurorecord.errors import AnalysisError, NeurorecordError
from neurorecord.interop import from_nwb, to_nwb
from neurorecord.protocol.schema import ComparisonAnalysis

SEED = 3
N = 150

HEAD = """neurorecord: 1
name: {name}
seed: {seed}
subject: {{zoo: digits-mlp}}
stimuli:
  - {{name: digits, kind: npz, path: digits.npz, labels: label}}
record:
  regions: [{regions}]
  behaviour: false
{extra}"""

ANALYSES = """analyses:
  - name: vs-noisy
    kind: compare
    regions: [fc2]
    reference: {store: noisy, region: fc2}
    n_boot: 10
    n_folds: 5
  - name: vs-self
    kind: compare
    reference: {store: plain, region: fc2}
    measures: [rdm, cka]
    compare_method: pearson
    n_boot: 0
    ceiling: false
  - name: vs-nwb
    kind: compare
    regions: [fc2]
    by: label
    reference: {nwb: noisy.nwb, region: fc2}
    rdm_method: euclidean
    compare_method: tau_a
    cka_debiased: true
    n_boot: 20
    n_folds: 3
"""


def _protocol(folder, file, name, regions="fc2", seed=0, extra=""):
    path = folder / file
    path.write_text(HEAD.format(name=name, seed=seed, regions=regions, extra=extra))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The reference stores, the NWB file, and one run of a protocol with three compare entries."""
    folder = tmp_path_factory.mktemp("compare-entry")
    digits = np.load(Path(neurorecord.__file__).parent / "data" / "digits.npz")  # 150 of them: quick RDMs
    np.savez(folder / "digits.npz", images=digits["images"][:N].astype(np.float32) / 16, label=digits["labels"][:N],
             stimulus_id=np.array([f"digit{i:03d}" for i in range(N)]))
    noisy = _protocol(folder, "noisy.yaml", "noisy", seed=1,
                      extra="  repetitions: 2\n  variability: {input_noise: 0.2}\n")
    neurorecord.run(noisy, folder / "noisy", quiet=True)
    neurorecord.run(_protocol(folder, "plain.yaml", "plain"), folder / "plain", quiet=True)
    to_nwb(neurorecord.open_recording(folder / "noisy"), folder / "noisy.nwb", regions=["fc2"], spikes=False)
    protocol = _protocol(folder, "compare.yaml", "compare", regions="fc1, fc2", seed=SEED, extra=ANALYSES)
    tree = neurorecord.run(protocol, folder / "run", quiet=True)
    return folder, tree


def _activity(folder, store, region="fc2"):
    return neurorecord.open_recording(folder / store)[region]["activity"]


def _equal(stored, direct):
    np.testing.assert_array_equal(np.asarray(stored), np.asarray(direct))


def test_stored_results_equal_the_compare_functions(runs):
    folder, tree = runs
    model, ref = _activity(folder, "run"), _activity(folder, "noisy")
    ds = load_analysis(folder / "run", "fc2", "vs-noisy")

    model_rdm, ref_rdm = rdm(model), rdm(ref)
    _equal(ds["rdm_model"], model_rdm)
    _equal(ds["rdm_reference"], ref_rdm)
    assert ds["condition"].values.tolist() == sorted(model["stimulus_id"].values.tolist())
    assert (ds["n_model"] == 1).all() and (ds["n_reference"] == 2).all()
    assert ds["label"].values.tolist() == model_rdm["label"].values.tolist()  # the conditions' labels travel
    similarity = compare_rdms(model_rdm, ref_rdm, "spearman", n_boot=10, seed=SEED)  # the protocol's seed
    for name in ("similarity", "ci_low", "ci_high", "bootstrap"):
        _equal(ds["rdm_similarity" if name == "similarity" else f"rdm_similarity_{name}"], similarity[name])
    other_seed = compare_rdms(model_rdm, ref_rdm, n_boot=2, seed=0)["bootstrap"]
    assert not np.isin(other_seed, ds["rdm_similarity_bootstrap"]).any()
    parts = split_rdms(ref)
    ceiling = rdm_noise_ceiling(parts, "spearman")
    _equal(ds["rdm_ceiling_lower"], ceiling["lower"])
    _equal(ds["rdm_ceiling_upper"], ceiling["upper"])
    to_parts = [float(compare_rdms(model_rdm, parts.isel(split=k))["similarity"]) for k in range(2)]
    _equal(ds["rdm_similarity_per_split"], to_parts)
    _equal(ds["rdm_similarity_to_splits"], np.mean(to_parts))
    assert 0 < float(ds["rdm_ceiling_lower"]) < float(ds["rdm_ceiling_upper"]) <= 1
    _equal(ds["cka"], cka(model, ref))
    predictivity = linear_predictivity(model, ref, n_folds=5, seed=SEED)
    for name in ("r", "r_fold", "alpha", "ceiling", "r_ceiled"):
        _equal(ds[f"predictivity_{name}"], predictivity[name])
    _equal(ds["predictivity_median_r_ceiled"], predictivity.attrs["median_r_ceiled"])
    assert ds["neuroid_id"].values.tolist() == ref["neuroid_id"].values.tolist()

    for name, var in ds.data_vars.items():
        assert "long_name" in var.attrs and "units" in var.attrs, name
    assert ds.attrs["reference"] == str(folder / "noisy") and ds.attrs["reference_kind"] == "store"
    assert ds.attrs["reference_protocol_sha256"] == neurorecord.open_recording(folder / "noisy").attrs["protocol_sha256"]
    assert ds.attrs["seed"] == SEED and ds.attrs["n_conditions"] == N and ds.attrs["analysis"].startswith("{")
    assert "analyses/fc1/vs-noisy" not in [n.path.strip("/") for n in tree.subtree]  # regions: [fc2] only


def test_a_recording_against_itself_scores_one(runs):
    folder, tree = runs
    assert tree["fc2"]["activity"].equals(_activity(folder, "plain"))  # the same recording, bit for bit
    ds = load_analysis(folder / "run", "fc2", "vs-self")
    np.testing.assert_allclose([float(ds["rdm_similarity"]), float(ds["cka"])], [1.0, 1.0], rtol=0, atol=1e-12)
    _equal(ds["rdm_model"], ds["rdm_reference"])
    assert "predictivity_r" not in ds and "rdm_ceiling_lower" not in ds and "rdm_similarity_ci_low" not in ds
    other = load_analysis(folder / "run", "fc1", "vs-self")  # regions: all, so fc1 against the same fc2
    assert float(other["cka"]) < 0.99 and other.attrs["reference_region"] == "fc2"


def test_an_nwb_reference(runs):
    folder, _ = runs
    path = folder / "noisy.nwb"
    model = _activity(folder, "run")
    ref = from_nwb(path)["activity"]
    ds = load_analysis(folder / "run", "fc2", "vs-nwb")
    model_rdm, ref_rdm = rdm(model, "label", "euclidean"), rdm(ref, "label", "euclidean")
    _equal(ds["rdm_reference"], ref_rdm)
    # the file holds the store's activity exactly: the same RDM as from the store
    np.testing.assert_allclose(ds["rdm_reference"], rdm(_activity(folder, "noisy"), "label", "euclidean"), rtol=1e-12)
    similarity = compare_rdms(model_rdm, ref_rdm, "tau_a", n_boot=20, seed=SEED)
    _equal(ds["rdm_similarity"], similarity["similarity"])
    _equal(ds["rdm_similarity_bootstrap"], similarity["bootstrap"])
    _equal(ds["rdm_ceiling_lower"], rdm_noise_ceiling(split_rdms(ref, "label", method="euclidean"), "tau_a")["lower"])
    _equal(ds["cka"], cka(model, ref, "label", debiased=True))
    _equal(ds["predictivity_r"], linear_predictivity(model, ref, "label", n_folds=3, seed=SEED)["r"])
    assert ds.attrs["reference_kind"] == "nwb"
    assert ds.attrs["reference_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_function_keeps_labels_and_refuses_bad_arguments(runs):
    folder, _ = runs
    model, ref = _activity(folder, "run"), _activity(folder, "noisy")
    subset = ref.isel(presentation=np.flatnonzero(np.isin(ref["label"].values, [0, 1, 2, 3])))
    ds = compare_with_reference(model, subset, measures=["cka", "rdm"], n_boot=0, ceiling=False)
    assert ds.attrs["n_conditions"] == len(np.unique(subset["stimulus_id"].values)) < ds.attrs["n_conditions_model"]
    _equal(ds["cka"], cka(model.isel(presentation=np.flatnonzero(np.isin(model["label"].values, [0, 1, 2, 3]))), subset))
    for kwargs, message in [
        ({"measures": ["rdm", "rsa"]}, r"measures: expected one of 'rdm', 'cka', 'predictivity', found 'rsa'"),
        ({"measures": ["cka", "cka"]}, r"measures: expected each measure once, found 'cka' twice"),
        ({"rdm_method": "crossnobis"}, r"rdm_method: expected one of 'correlation', 'euclidean', found 'crossnobis'"),
        ({"by": "repetition"}, r"by: expected at least 3 values of 'repetition' shared by the recording and the reference "
                               r"\(conditions to compare\), found 1; the recording has 1 \(0\), the reference 2 \(0, 1\)"),
    ]:
        with pytest.raises(AnalysisError, match=message):
            compare_with_reference(model, ref, **{"n_boot": 0, **kwargs})
    text = model.assign_coords(label=("presentation", model["label"].values.astype(str)))
    with pytest.raises(AnalysisError, match=r"by: expected 'label' to hold the same kind of values in both recordings, "
                                            r"found text in the recording \(0, 1, 2, 3, 4, \.\.\.\) and numbers"):
        compare_with_reference(text, ref, "label")


def test_protocol_names_are_the_compare_functions_names():
    assert COMPARE_METHODS == tuple(RSATOOLBOX_NAMES)
    assert set(RDM_METHODS) <= set(METHODS)
    fields = ComparisonAnalysis.model_fields
    assert get_args(fields["compare_method"].annotation) == COMPARE_METHODS
    assert get_args(fields["rdm_method"].annotation) == RDM_METHODS


BAD = [
    ("reference: {store: missing, region: fc2}", ("reference", "store"),
     r"analyses\[0\]\.reference\.store: expected a complete neurorecord store \(the --out folder of neurorecord run\), "
     r"found .*missing: does not exist"),
    ("reference: {store: noisy, region: fc9}", ("reference", "region"),
     r"analyses\[0\]\.reference\.region: 'fc9' is not a region of the reference store .*noisy \(did you mean 'fc2'\?\); "
     r"regions: fc2"),
    ("reference: {nwb: missing.nwb}", ("reference", "nwb"),
     r"analyses\[0\]\.reference\.nwb: expected an NWB file, found no such file: .*missing\.nwb"),
    ("reference: {nwb: noisy.nwb, region: V1}", ("reference", "region"),
     r"analyses\[0\]\.reference\.region: no unit of .*noisy\.nwb is in region 'V1'; regions: fc2"),
    ("by: jitter_x\n    reference: {store: plain, region: fc2}", ("by",),
     r"analyses\[0\]\.by: 'jitter_x' is not a presentation coordinate of the reference plain; its coordinates: "
     r"label, repetition, stimulus_id, stimulus_set"),
    ("by: repetition\n    reference: {store: noisy, region: fc2}", ("by",),
     r"analyses\[0\]\.by: expected at least 3 values of 'repetition' shared by the recording and the reference "
     r"\(conditions to compare\), found 1; the recording has 1 \(0\), the reference 2 \(0, 1\)"),
    ("reference: {store: plain, region: fc2}", ("ceiling",),
     r"analyses\[0\]\.ceiling: expected at least 2 presentations of every condition in the reference for the split-half "
     r"reliability ceiling, found 1 for digit000, digit001, .* \(150 conditions\); set ceiling: false to compare "
     r"without ceilings"),
    ("by: label\n    reference: {store: noisy, region: fc2}", ("n_folds",),
     r"analyses\[0\]\.n_folds: expected at most 3 folds for the 10 conditions the recordings share \(3 or more per "
     r"fold\), found 10"),
]


@pytest.mark.parametrize("entry, key, message", BAD, ids=[k[-1] + str(i) for i, (_, k, _) in enumerate(BAD)])
def test_a_bad_reference_is_refused_before_anything_is_written(runs, entry, key, message):
    folder, _ = runs
    text = f"analyses:\n  - name: cmp\n    kind: compare\n    {entry}\n"
    protocol = _protocol(folder, "bad.yaml", "bad", extra="  variability: {jitter: 1}\n" + text)
    out = folder / "bad-run"
    with pytest.raises(NeurorecordError, match=message) as caught:
        neurorecord.run(protocol, out, quiet=True)
    assert caught.value.loc == ("analyses", 0, *key)
    # the position is that of the key at fault in the file
    lines = protocol.read_text().splitlines()
    word = {"store": "store:", "region": "region:", "nwb": "nwb:", "by": "by:"}.get(key[-1], "name: cmp")  # a default: the entry
    row = next(i for i, line in enumerate(lines) if re.search(rf"\b{word}", line) and i >= lines.index("analyses:"))
    assert str(caught.value).startswith(f"{protocol}:{row + 1}:"), str(caught.value)
    assert not out.exists()
