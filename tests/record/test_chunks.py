"""Stored chunks of several batches (``record.batches_per_chunk``): the loop gathers a chunk's
batches and hands the writer one whole chunk at a time, with the values a chunk per batch gives;
ranges that do not start or end on a chunk are refused (two writers would share a chunk)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurorecord
from neurorecord.protocol import load_protocol
from neurorecord.record.plan import PresentationPlan
from neurorecord.record.stream import stream_batches
from neurorecord.record.trials import TrialVariability
from neurorecord.stimuli import build_stimulus_sets
from neurorecord.subjects import build_subject


@pytest.fixture(scope="module")
def subject():
    protocol = load_protocol(neurorecord.default_protocol_path())
    return build_subject(protocol.subject, protocol.folder).model, PresentationPlan(build_stimulus_sets(protocol))


def _record(model, plan, per_chunk, first=0, stop=None):
    shapes = {"fc1": (100,), "fc3": (100,)}
    rows = {r: np.full((len(plan), 100), np.nan, np.float32) for r in shapes}
    calls = []

    def write(batch, start, stop_, buffers):
        calls.append((batch, start, stop_))
        for r in shapes:
            rows[r][start:stop_] = buffers[r][: stop_ - start]

    stream_batches(model, plan, shapes, "mean", TrialVariability(None, 0, len(plan)), torch.device("cpu"), 0, 64, first,
                   write, behaviour=10, quiet=True, stop_batch=stop, batches_per_chunk=per_chunk)
    return rows, calls


def test_a_chunk_of_three_batches_is_written_whole_with_the_same_values(subject):
    model, plan = subject
    one, calls_one = _record(model, plan, 1)
    three, calls_three = _record(model, plan, 3)
    assert calls_one == [(b, 64 * b, min(454, 64 * (b + 1))) for b in range(8)]
    assert calls_three == [(2, 0, 192), (5, 192, 384), (7, 384, 454)]  # the chunk's last batch, its rows
    for region in one:
        assert np.isfinite(three[region]).all()
        np.testing.assert_array_equal(three[region], one[region])
    resumed, calls = _record(model, plan, 3, first=3)  # a resumed run starts at its first unwritten chunk
    assert calls == [(5, 192, 384), (7, 384, 454)]
    np.testing.assert_array_equal(resumed["fc1"][192:], one["fc1"][192:])


@pytest.mark.parametrize("first, stop", [(1, None), (0, 4)])
def test_a_range_that_splits_a_chunk_is_refused(subject, first, stop):
    model, plan = subject
    with pytest.raises(ValueError, match="expected whole chunks of 3 batches"):
        _record(model, plan, 3, first=first, stop=stop)
