"""The lesion sweep on a CUDA device (skipped where torch sees none): same predictions as the
obvious loop on the CPU, the caller's model left where it was."""

from __future__ import annotations

import pytest
import torch

from neurorecord.lesion import Lesion, lesion_predictions, obvious_predictions, single_unit_lesions, unit_means
from tests.lesion.test_sweep import Skip, seeded

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")


@pytest.mark.parametrize("mixed", [False, True], ids=["single-units", "mixed"])
@pytest.mark.parametrize("shortcut", [True, False], ids=["default", "recomputed"])
@pytest.mark.parametrize("subject, region, n_channel", [("mlp", "fc2", 100), ("mlp", "fc3", 100), ("cnn", "conv1", 16), ("skip", "relu1", 8)])
def test_cuda_sweep_matches_the_obvious_loop_on_the_cpu(request, x, subject, region, n_channel, shortcut, mixed) -> None:  # type: ignore[no-untyped-def]
    model = seeded(Skip) if subject == "skip" else request.getfixturevalue(subject)
    means = unit_means(model, x, region)
    lesions = single_unit_lesions(n_channel) + [Lesion((1,), "mean"), Lesion((2,), "clamp", value=0.3)]
    if mixed:  # a group and a noise lesion: the shortcut does not apply
        lesions += [Lesion((0, 1), "mean"), Lesion((2,), "noise", std=0.5)]
    fast = lesion_predictions(model, x, region, lesions, means=means, device="cuda", shortcut=shortcut, return_logits=True)
    slow, logits = obvious_predictions(model, x, region, lesions, means=means, return_logits=True)
    top2 = logits.topk(2, dim=2).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4  # GPU kernels round differently: near ties may go either way
    assert torch.equal(fast.predictions[clear], slow[clear])
    torch.testing.assert_close(fast.logits, logits, rtol=1e-4, atol=1e-4)
    assert next(model.parameters()).device.type == "cpu"
    assert fast.shortcut == (shortcut and not mixed and subject != "skip")

