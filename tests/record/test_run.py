"""Recording a protocol into a store: layout, labels, values, provenance, determinism, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import neurorecord
from neurorecord.errors import IncompleteRecordingError, StoreError
from neurorecord.record import PresentationPlan
from neurorecord.store import read_run_state
from neurorecord.stimuli import DigitsSet, load_digits_array
from neurorecord.subjects import load_zoo_subject
from tests.helpers import DIGITS_MLP

CNN = DIGITS_MLP.replace("digits-mlp", "digits-cnn").replace("[fc1, fc2, fc3]", "[conv1, conv2, fc1]")


@pytest.fixture
def digits_run(write_protocol, tmp_path):
    path = write_protocol(DIGITS_MLP)
    tree = neurorecord.run(path, tmp_path / "out", quiet=True)
    return path, tmp_path / "out", tree


def test_store_layout_and_labels(digits_run):
    path, out, tree = digits_run
    assert set(tree.children) == {"fc1", "fc2", "fc3", "behaviour"}
    test_set = DigitsSet("digits", "test")
    params = test_set.parameters()
    for region in ["fc1", "fc2", "fc3"]:
        ds = tree[region].to_dataset()
        act = ds["activity"]
        assert act.dims == ("presentation", "neuroid") and act.shape == (454, 100) and act.dtype == np.float32
        # dask-backed, chunked along presentation: 5 batches of 100 x 100 units (40 kB) make one chunk (batches_per_chunk: auto)
        assert act.chunks is not None and act.chunks[0] == (454,)
        assert act.encoding["chunks"] == (454, 100)
        assert list(ds["stimulus_id"].values) == list(params["stimulus_id"])
        assert np.array_equal(ds["label"].values, params["label"])
        assert set(ds["repetition"].values) == {0} and set(ds["stimulus_set"].values) == {"digits"}
        assert list(ds["neuroid_id"].values[:3]) == [f"{region}.0", f"{region}.1", f"{region}.2"]
        assert set(ds["region"].values) == {region} and np.array_equal(ds["channel"].values, np.arange(100))
        assert act.attrs["units"] == "a.u." and ds.attrs["region"] == region


def test_values_equal_direct_forward_pass(digits_run):
    """Recorded activity is exactly what the layers compute on the same batches, and matches a
    stimulus-by-stimulus float64 computation to float32 precision."""
    _, _, tree = digits_run
    model = load_zoo_subject("digits-mlp").model
    images = DigitsSet("digits", "test").images(np.arange(454))
    recorded = {r: tree[r]["activity"].values for r in ["fc1", "fc2", "fc3"]}
    with torch.inference_mode():
        for start in range(0, 454, 100):
            h1 = model.fc1(model.flatten(torch.from_numpy(images[start : start + 100])))
            h2 = model.fc2(h1)
            h3 = model.fc3(h2)
            for region, h in zip(["fc1", "fc2", "fc3"], [h1, h2, h3]):
                assert np.array_equal(recorded[region][start : start + 100], h.numpy())
    weights = {k: v.double().numpy() for k, v in model.state_dict().items()}
    for i in [0, 17, 453]:
        h = images[i].reshape(-1).astype(np.float64)
        for region in ["fc1", "fc2", "fc3"]:
            h = np.maximum(weights[f"{region}.linear.weight"] @ h + weights[f"{region}.linear.bias"], 0)
            np.testing.assert_allclose(recorded[region][i], h, rtol=1e-5, atol=1e-5)


def test_provenance_attrs(digits_run):
    path, out, tree = digits_run
    attrs = tree.attrs
    protocol = neurorecord.load_protocol(path)
    assert attrs["protocol_text"] == path.read_text() and attrs["protocol_sha256"] == protocol.sha256
    assert attrs["subject_weight_sha256"] == load_zoo_subject("digits-mlp").weight_sha256
    assert attrs["subject"]["info"]["test_accuracy"] > 0.95
    assert attrs["packages"]["torch"] == torch.__version__ and attrs["packages"]["neurorecord"]
    assert attrs["seed"] == 0 and attrs["device"] == "cpu" and attrs["complete"] is True
    assert attrs["created"].startswith("20") and attrs["finished"] >= attrs["created"]
    assert attrs["regions"] == ["fc1", "fc2", "fc3"] and attrs["presentations"] == 454
    assert read_run_state(out).complete


def test_same_protocol_gives_bit_identical_arrays(write_protocol, tmp_path):
    path = write_protocol(CNN.replace("reduce: mean", "reduce: none"))
    a = neurorecord.run(path, tmp_path / "a", quiet=True)
    b = neurorecord.run(path, tmp_path / "b", quiet=True)
    for region in ["conv1", "conv2", "fc1"]:
        da, db = a[region].to_dataset(), b[region].to_dataset()
        assert da["activity"].values.tobytes() == db["activity"].values.tobytes()
        xr.testing.assert_identical(da.drop_vars("activity"), db.drop_vars("activity"))
    for key in ["protocol_sha256", "subject_weight_sha256", "seed", "regions"]:
        assert a.attrs[key] == b.attrs[key]


@pytest.mark.parametrize("reduce", ["mean", "max", "center", "none"])
def test_conv_reductions_in_store(write_protocol, tmp_path, reduce):
    path = write_protocol(CNN.replace("reduce: mean", f"reduce: {reduce}"))
    tree = neurorecord.run(path, tmp_path / "out", quiet=True)
    conv = tree["conv2"].to_dataset()
    model = load_zoo_subject("digits-cnn").model
    x = torch.from_numpy(DigitsSet("digits", "test").images(np.arange(100)))
    with torch.inference_mode():
        maps = model.conv2(model.conv1(x)).numpy()  # (100, 32, 8, 8)
    want = {"mean": maps.mean(axis=(2, 3)), "max": maps.max(axis=(2, 3)), "center": maps[:, :, 4, 4], "none": maps.reshape(100, -1)}[reduce]
    np.testing.assert_allclose(conv["activity"].values[:100], want, rtol=1e-5, atol=1e-6)
    n = 32 * 64 if reduce == "none" else 32
    assert conv.sizes["neuroid"] == n and conv.attrs["reduce"] == reduce and conv.attrs["output_shape"] == [32, 8, 8]
    if reduce == "none":
        assert conv["neuroid_id"].values[9] == "conv2.0.1.1"
        assert conv["channel_y"].values[9] == 1 and conv["channel_x"].values[9] == 1
        assert maps[3, 0, 1, 1] == pytest.approx(conv["activity"].values[3, 9], abs=1e-6)
    assert tree["fc1"].to_dataset().sizes["neuroid"] == 64


def test_repetitions_and_several_sets(write_protocol, tmp_path):
    images, labels = load_digits_array()
    np.save(tmp_path / "imgs.npy", images[:10, 0])  # (n, H, W): read as one channel
    np.save(tmp_path / "labels.npy", labels[:10])
    text = DIGITS_MLP.replace(
        "    split: test\n",
        "    split: test\n  - name: extra\n    kind: npy\n    path: imgs.npy\n    labels: labels.npy\n",
    ).replace("reduce: mean", "reduce: mean\n  repetitions: 3")
    tree = neurorecord.run(write_protocol(text), tmp_path / "out", quiet=True)
    ds = tree["fc1"].to_dataset()
    assert ds.sizes["presentation"] == 3 * 464
    assert list(ds["repetition"].values[[0, 463, 464, 3 * 464 - 1]]) == [0, 0, 1, 2]
    assert ds["stimulus_set"].values[454] == "extra" and ds["stimulus_id"].values[454] == "extra-0"
    assert np.array_equal(ds["label"].values[454:464], labels[:10])
    assert np.isnan(ds["digit_index"].values[454]) and ds["digit_index"].values[0] == 0
    # the npy copies of digits 0..9 give the same activity as the digits set's own images of them
    plan = PresentationPlan([DigitsSet("all", "all")])
    direct = load_zoo_subject("digits-mlp").model.fc1(torch.from_numpy(plan.images(0, 10)).flatten(1)).detach().numpy()
    np.testing.assert_allclose(ds["activity"].values[454:464], direct, rtol=1e-6, atol=1e-6)
    # each repetition of a deterministic subject repeats the values exactly
    assert np.array_equal(ds["activity"].values[:464], ds["activity"].values[464:928])


def test_output_folder_refusals(write_protocol, tmp_path, digits_run):
    path, out, _ = digits_run
    with pytest.raises(StoreError, match="already holds a complete recording of this protocol; use --overwrite"):
        neurorecord.run(path, out, quiet=True)
    assert neurorecord.run(path, out, resume=True, quiet=True)["fc1"]["activity"].shape == (454, 100)
    other = write_protocol(DIGITS_MLP.replace("seed: 0", "seed: 5"), "other.yaml")
    with pytest.raises(StoreError, match=r"already holds a different run \(protocol 'digits'"):
        neurorecord.run(other, out, quiet=True)
    with pytest.raises(StoreError, match="already holds a different run"):
        neurorecord.run(other, out, resume=True, quiet=True)
    tree = neurorecord.run(other, out, overwrite=True, quiet=True)
    assert tree.attrs["seed"] == 5
    foreign = tmp_path / "papers"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    for flags in [{}, {"overwrite": True}, {"resume": True}]:
        with pytest.raises(StoreError, match="holds no neurorecord recording"):
            neurorecord.run(path, foreign, quiet=True, **flags)
    assert (foreign / "thesis.tex").read_text() == "precious"


def _run_with_power_cut(monkeypatch, path, out, at: int) -> None:
    """Run `path` into `out`, failing when presentation `at` is reached, and restore the plan."""
    real_images = PresentationPlan.images

    def failing(self, start, stop, out=None):
        if start >= at:
            raise RuntimeError("power cut")
        return real_images(self, start, stop, out)

    monkeypatch.setattr(PresentationPlan, "images", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        neurorecord.run(path, out, quiet=True)
    monkeypatch.setattr(PresentationPlan, "images", real_images)


@pytest.mark.parametrize("per_chunk, done", [(1, 3), (2, 2)])
def test_failed_run_is_incomplete_and_resumes(write_protocol, tmp_path, monkeypatch, per_chunk, done):
    """Cut while the 4th batch is read: the chunks finished before are on disk (batches of 100;
    with 2 batches per chunk, the 2nd chunk, batches 3 and 4, is lost), the rest is recorded on resume."""
    path = write_protocol(DIGITS_MLP.replace("  batch_size: 100\n", f"  batch_size: 100\n  batches_per_chunk: {per_chunk}\n"))
    reference = neurorecord.run(path, tmp_path / "ref", quiet=True)
    _run_with_power_cut(monkeypatch, path, tmp_path / "out", at=300)
    state = read_run_state(tmp_path / "out")
    assert not state.complete and state.batches_done == done and state.batches_total == 5 and state.batches_per_chunk == per_chunk
    with pytest.raises(IncompleteRecordingError, match=f"INCOMPLETE: stage 'recording', {done} of 5 batches written"):
        neurorecord.open_recording(tmp_path / "out")
    partial = neurorecord.open_recording(tmp_path / "out", allow_incomplete=True)
    act = partial["fc1"]["activity"].values
    assert np.isnan(act[done * 100:]).all() and not np.isnan(act[: done * 100]).any()
    with pytest.raises(StoreError, match="holds an unfinished recording of this protocol"):
        neurorecord.run(path, tmp_path / "out", quiet=True)
    done = neurorecord.run(path, tmp_path / "out", resume=True, quiet=True)
    for region in ["fc1", "fc2", "fc3"]:
        assert done[region]["activity"].values.tobytes() == reference[region]["activity"].values.tobytes()


def test_open_recording_refuses_non_stores(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        neurorecord.open_recording(tmp_path / "missing")
    with pytest.raises(StoreError, match="is not a neurorecord store"):
        neurorecord.open_recording(tmp_path)


def test_cuda_asked_without_cuda(write_protocol, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(neurorecord.NeurorecordError, match=r"protocol.yaml:\d+:\d+: record.device: 'cuda' asked for, but torch sees no CUDA device"):
        neurorecord.run(write_protocol(DIGITS_MLP.replace("reduce: mean", "reduce: mean\n  device: cuda")), tmp_path / "o", quiet=True)
    assert not (tmp_path / "o").exists()


def test_stimulus_errors_name_file_and_field(write_protocol, tmp_path):
    text = DIGITS_MLP.replace("    split: test\n", "    split: test\n  - name: extra\n    kind: npy\n    path: missing.npy\n")
    with pytest.raises(neurorecord.NeurorecordError, match=r"protocol.yaml:\d+:\d+: .*missing.npy: stimuli 'extra': path: file not found"):
        neurorecord.run(write_protocol(text), tmp_path / "o", quiet=True)
    np.save(tmp_path / "big.npy", np.zeros((4, 3, 16, 16), dtype=np.float32))
    text = DIGITS_MLP.replace("    split: test\n", "    split: test\n  - name: extra\n    kind: npy\n    path: big.npy\n")
    with pytest.raises(neurorecord.NeurorecordError, match=r"every set must have the same image shape .* digits: \(1, 8, 8\), extra: \(3, 16, 16\)"):
        neurorecord.run(write_protocol(text), tmp_path / "o", quiet=True)
    assert not (tmp_path / "o").exists()


def test_open_recording_gives_usable_labels(digits_run):
    """Regions in protocol order; coordinates in memory and indexed, so groupby/sel work directly."""
    _, _, tree = digits_run
    assert list(tree.children) == ["fc1", "fc2", "fc3", "behaviour"]
    act = tree["fc2"]["activity"]
    assert act.chunks is not None  # the data stays lazy
    by_label = act.groupby("label").mean()
    assert by_label.dims == ("label", "neuroid") and list(by_label["label"].values) == list(range(10))
    unit = act.sel(neuroid_id="fc2.7")
    assert unit.shape == (454,) and np.array_equal(unit.values, act.values[:, 7])
    assert act.sel(stimulus_id="digits-0004")["label"].item() == 4



def test_opened_arrays_have_their_own_dask_names(write_protocol, digits_run):
    """Each node's arrays get a dask name of their own (computed together they stay apart, as zarr
    holds them), and a store written again gets new names (dask would otherwise reuse old results)."""
    import dask
    import zarr

    path, out, tree = digits_run
    arrays = {f"{node}/{var}": tree[node][var].data for node in tree.children for var in tree[node].data_vars}
    assert len({a.name for a in arrays.values()}) == len(arrays) == 6
    computed = dict(zip(arrays, dask.compute(*arrays.values())))
    group = zarr.open_group(out, mode="r")
    for name, values in computed.items():
        np.testing.assert_array_equal(values, group[name][:])
    assert tree["fc1"]["activity"].data.name == neurorecord.open_recording(out)["fc1"]["activity"].data.name
    again = neurorecord.run(write_protocol(DIGITS_MLP.replace("seed: 0", "seed: 1")), out, overwrite=True, quiet=True)
    assert again["fc1"]["activity"].data.name != tree["fc1"]["activity"].data.name

NOISY_MODEL = """
import torch
from torch import nn

class Noisy(nn.Module):
    def forward(self, x):
        return x + torch.randn_like(x)

def build():
    torch.manual_seed(0)  # the same weights at every build: resume refuses a subject whose weights changed
    return nn.Sequential(nn.Flatten(), Noisy(), nn.Linear(64, 3))
"""


def test_random_subject_resumes_identically(write_protocol, tmp_path, monkeypatch):
    """Randomness inside the subject is seeded per batch: resuming draws what an uninterrupted run draws."""
    (tmp_path / "noisy.py").write_text(NOISY_MODEL)
    text = DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'noisy:build'").replace("[fc1, fc2, fc3]", "['1']")
    path = write_protocol(text)
    reference = neurorecord.run(path, tmp_path / "ref", quiet=True)["1"]["activity"].values
    _run_with_power_cut(monkeypatch, path, tmp_path / "out", at=200)
    resumed = neurorecord.run(path, tmp_path / "out", resume=True, quiet=True)["1"]["activity"].values
    assert resumed.tobytes() == reference.tobytes()
    images = DigitsSet("digits", "test").images(np.arange(454)).reshape(454, -1)
    assert not np.array_equal(reference, images)  # the noise is real
    other_seed = write_protocol(text.replace("seed: 0", "seed: 1"), "seed1.yaml")
    assert not np.array_equal(neurorecord.run(other_seed, tmp_path / "s1", quiet=True)["1"]["activity"].values, reference)


def test_integer_region_names(write_protocol, tmp_path):
    (tmp_path / "seq.py").write_text("from torch import nn\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.ReLU())\n")
    text = DIGITS_MLP.replace("zoo: digits-mlp", "entry_point: 'seq:build'").replace("[fc1, fc2, fc3]", "[1, 2]")
    tree = neurorecord.run(write_protocol(text), tmp_path / "o", quiet=True)
    assert list(tree.children) == ["1", "2", "behaviour"] and tree["2"]["neuroid_id"].values[0] == "2.0"


def test_concurrent_writer_is_refused(write_protocol, tmp_path):
    import fcntl
    import os

    path = write_protocol(DIGITS_MLP)
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as another neurorecord process holds it
    try:
        with pytest.raises(StoreError, match="another neurorecord process is writing this store"):
            neurorecord.run(path, out, quiet=True)
    finally:
        os.close(fd)
    assert neurorecord.run(path, out, quiet=True)["fc1"]["activity"].shape == (454, 100)


def test_generated_and_loaded_sets_share_one_store(write_protocol, tmp_path):
    text = DIGITS_MLP.replace(
        "    split: test\n",
        "    split: test\n  - name: gratings\n    kind: grating\n    size: [8, 8]\n"
        "    grid: {orientation: [0, 90], spatial_frequency: 0.25}\n",
    )
    tree = neurorecord.run(write_protocol(text), tmp_path / "out", quiet=True)
    ds = tree["fc1"].to_dataset()
    assert ds.sizes["presentation"] == 456
    is_grating = ds["stimulus_set"].values == "gratings"
    assert is_grating.sum() == 2 and is_grating[-2:].all()
    assert np.isnan(ds["orientation"].values[~is_grating]).all()
    assert ds["orientation"].values[is_grating].tolist() == [0.0, 90.0]
    assert np.isnan(ds["label"].values[is_grating]).all() and (ds["label"].values[:454] == DigitsSet("d", "test").parameters()["label"]).all()
    assert [s["name"] for s in tree.attrs["stimulus_sets"]] == ["digits", "gratings"]


def test_analyses_equal_on_every_reading_path(tmp_path, monkeypatch):
    """The run's analyses read small regions whole without dask (open_recording(dask=False));
    the same entries on a region chunked as stored (over IN_PROCESS_BYTES) or opened dask-backed
    give the same results."""
    from neurorecord import default_protocol_path, store
    from neurorecord.analysis import runner
    from neurorecord.protocol import load_protocol

    protocol = load_protocol(default_protocol_path())
    out = tmp_path / "run"
    neurorecord.run(protocol, out, quiet=True)
    lazy = neurorecord.open_recording(out, dask=False)
    assert lazy["fc1"]["activity"].chunks is None
    np.testing.assert_array_equal(lazy["fc1"]["activity"].values, neurorecord.open_recording(out)["fc1"]["activity"].values)
    written = runner.run_analyses(protocol, neurorecord.open_recording(out, dask=False), out)
    assert len(written) == 12 and written[0].startswith("analyses/fc1/")  # region by region
    for name, tree, limit in [("chunked", neurorecord.open_recording(out, dask=False), 0),
                              ("dask", neurorecord.open_recording(out), runner.IN_PROCESS_BYTES)]:
        monkeypatch.setattr(runner, "IN_PROCESS_BYTES", limit)
        assert runner.run_analyses(protocol, tree, tmp_path / name) == written
        for node in written:
            xr.testing.assert_identical(store.load_result_node(tmp_path / name, node), store.load_result_node(out, node))
