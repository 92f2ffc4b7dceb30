"""``record.dtype: bfloat16``: the forward pass under autocast, float32 in the store, values within
bfloat16's precision of the float32 recording, the subject untouched; and the recording on a CUDA
device (pinned buffers, copies overlapped with the next batch; skipped where torch sees none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurorecord
from neurorecord.record.plan import PresentationPlan
from neurorecord.record.stream import stream_batches
from neurorecord.record.trials import TrialVariability
from neurorecord.stimuli import build_stimulus_sets
from tests.helpers import DIGITS_MLP


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dtype")
    trees = {}
    for dtype in ("float32", "bfloat16"):
        path = folder / f"{dtype}.yaml"
        path.write_text(DIGITS_MLP.replace("reduce: mean", f"reduce: mean\n  dtype: {dtype}"))
        trees[dtype] = neurorecord.run(path, folder / dtype, quiet=True)
    return trees


def test_bfloat16_is_stored_as_float32_within_bfloat16_precision(both):
    a, b = both["float32"], both["bfloat16"]
    for region in ("fc1", "fc2", "fc3"):
        x, y = a[region]["activity"].values, b[region]["activity"].values
        assert y.dtype == np.float32 and b[region]["activity"].attrs["units"] == "a.u."
        assert not np.array_equal(x, y)  # it did run in bfloat16
        # 8 bits of mantissa, rounded at every layer: well within 2 % of the range, never near it
        assert np.abs(y - x).max() < 0.02 * np.ptp(x)
        assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.9999
    assert (a["behaviour"]["predicted"].values == b["behaviour"]["predicted"].values).mean() > 0.99


def test_bfloat16_values_are_what_autocast_gives(both):
    """The stored activity equals the obvious autocast forward pass of the same weights."""
    from neurorecord.protocol import load_protocol
    from neurorecord.subjects import build_subject

    protocol = load_protocol(neurorecord.default_protocol_path())
    model = build_subject(protocol.subject, protocol.folder).model
    x = torch.from_numpy(PresentationPlan(build_stimulus_sets(protocol)).images(0, 454))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        h1 = model.fc1(model.flatten(x))
        h2 = model.fc2(h1)
        h3 = model.fc3(h2)
    for region, h in {"fc1": h1, "fc2": h2, "fc3": h3}.items():
        np.testing.assert_array_equal(both["bfloat16"][region]["activity"].values, h.float().numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_recording_on_cuda_equals_the_cpu(dtype, tmp_path):
    """Pinned host buffers and asynchronous copies (chunks of 3 batches: the writer waits for the last batch's copies): every batch arrives whole, equal to the CPU
    recording (to the GPU's rounding), the subject's parameters left on their device."""
    from neurorecord.protocol import load_protocol
    from neurorecord.subjects import build_subject

    protocol = load_protocol(neurorecord.default_protocol_path())
    model = build_subject(protocol.subject, protocol.folder).model
    plan = PresentationPlan(build_stimulus_sets(protocol))
    shapes = {"fc1": (100,), "fc3": (100,)}
    got = {}
    for device in ("cpu", "cuda"):
        rows = {r: np.full((len(plan), 100), np.nan, np.float32) for r in shapes}

        def write(batch, start, stop, buffers, rows=rows):
            for r in shapes:
                rows[r][start:stop] = buffers[r][: stop - start]

        stream_batches(model.to(device), plan, shapes, "mean", TrialVariability(None, 0, len(plan)), torch.device(device),
                       0, 64, 0, write, behaviour=10, quiet=True, dtype=dtype, batches_per_chunk=3)
        got[device] = rows
    model.cpu()
    for r in shapes:
        assert np.isfinite(got["cuda"][r]).all()
        np.testing.assert_allclose(got["cuda"][r], got["cpu"][r], rtol=2e-2 if dtype == "bfloat16" else 1e-4,
                                   atol=2e-2 if dtype == "bfloat16" else 1e-5)
