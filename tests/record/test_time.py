"""Time-resolved recording: epochs, the time_bin dim, sequence sets, the digits-gru subject, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurorecord
from neurorecord.cli.main import main
from neurorecord.errors import RegionError, StimulusError
from neurorecord.protocol.schema import TimeSpec
from neurorecord.record import PresentationPlan
from neurorecord.record.regions import reduce_output, reduce_time_output
from neurorecord.stimuli import DigitsSet, StimulusSet
from neurorecord.subjects import load_zoo_subject

GRU = """neurorecord: 1
name: gru
seed: 0
subject: {zoo: digits-gru}
stimuli:
  - {name: digits, kind: digits}
record:
  regions: [encoder, gru, readout]
  batch_size: 100
  time: {steps: 10, onset: 2, offset: 6, step_ms: 25, blank: 0.0}
"""


class Frames(StimulusSet):
    """A tiny sequence set: stimulus i shows frame value i + t / 10 at frame t."""

    def __init__(self, n: int, frames: int) -> None:
        self.name, self.image_shape, self.time_steps, self._n = "frames", (1, 8, 8), frames, n

    def __len__(self) -> int:
        return self._n

    def parameters(self) -> dict[str, np.ndarray]:
        return {"stimulus_id": np.array([f"f{i}" for i in range(self._n)], dtype=object)}

    def images(self, index: np.ndarray) -> np.ndarray:
        t = np.arange(self.time_steps, dtype=np.float32) / 10
        values = np.asarray(index, dtype=np.float32)[:, None] + t[None, :]
        return np.broadcast_to(values[:, :, None, None, None], (len(index), self.time_steps, 1, 8, 8)).copy()


def test_plan_places_static_and_sequence_stimuli_in_their_epoch():
    time = TimeSpec(steps=7, onset=2, offset=5, blank=-1.0)
    plan = PresentationPlan([DigitsSet("digits", "test"), Frames(3, 3)], time=time)
    x = plan.images(452, 457)  # last two digits, then the three sequences
    assert x.shape == (5, 7, 1, 8, 8)
    assert np.all(x[:, :2] == -1.0) and np.all(x[:, 5:] == -1.0)
    digit = DigitsSet("digits", "test").images(np.array([452]))[0]
    for t in range(2, 5):
        np.testing.assert_array_equal(x[0, t], digit)
    np.testing.assert_allclose(x[2:, 2:5, 0, 0, 0], [[0, 0.1, 0.2], [1, 1.1, 1.2], [2, 2.1, 2.2]], rtol=1e-6)
    tc = plan.time_coords()
    assert tc["epoch"].tolist() == ["before"] * 2 + ["stimulus"] * 3 + ["after"] * 2
    assert plan.input_shape == (7, 1, 8, 8)


def test_sequence_set_needs_time_and_matching_frames():
    with pytest.raises(StimulusError, match=r"stimuli\[0\]: set 'frames' is a sequence of 3 frames per stimulus; .*add record.time"):
        PresentationPlan([Frames(2, 3)])
    with pytest.raises(StimulusError, match=r"has 3 frames per stimulus, but record.time shows stimuli for offset - onset = 6 - 2 = 4 steps"):
        PresentationPlan([Frames(2, 3)], time=TimeSpec(steps=8, onset=2, offset=6))


def test_reduce_time_output_equals_step_by_step_reduction():
    out = torch.randn(3, 5, 4, 6, 6)
    for how in ("mean", "max", "center", "none"):
        got = reduce_time_output(out, how, 5)
        want = torch.stack([reduce_output(out[:, t], how) for t in range(5)], dim=2)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    with pytest.raises(RegionError, match=r"output of shape \(3, 10\) has no time dim: .*steps=5"):
        reduce_time_output(torch.zeros(3, 10), "mean", 5)


def test_gru_recording_matches_a_direct_forward(write_protocol, tmp_path):
    tree = neurorecord.run(write_protocol(GRU), tmp_path / "out", quiet=True)
    readout = tree["readout"].to_dataset()
    act = readout["activity"]
    assert act.dims == ("presentation", "neuroid", "time_bin") and act.shape == (454, 10, 10)
    assert act.encoding["chunks"] == (454, 10, 10)  # 5 batches of 100 x 10 x 10 time bins (40 kB) make one chunk
    np.testing.assert_array_equal(readout["time_bin_start"].values, np.arange(-2, 8) * 25.0)
    np.testing.assert_array_equal(readout["time_bin_end"].values, np.arange(-1, 9) * 25.0)
    assert readout["time_bin_start"].attrs["units"] == "ms"
    assert readout["epoch"].values.tolist()[1:3] == ["before", "stimulus"]
    # the same logits as the subject's own per-step forward on the same frame sequences
    model = load_zoo_subject("digits-gru").model
    plan = PresentationPlan([DigitsSet("digits", "test")], time=TimeSpec(steps=10, onset=2, offset=6))
    with torch.inference_mode():
        want = model.steps(torch.from_numpy(plan.images(0, 454))).transpose(1, 2).numpy()
    np.testing.assert_allclose(act.values, want, rtol=1e-5, atol=1e-5)
    # before onset every presentation sees the same blank frames: identical activity
    enc = tree["encoder"]["activity"].values
    assert np.ptp(enc[:, :, :2], axis=0).max() == 0 and np.ptp(enc[:, :, 3], axis=0).max() > 0
    # the subject reports the digit after the offset
    labels = readout["label"].values
    assert (act.values[:, :, -1].argmax(1) == labels).mean() > 0.9
    assert (act.values[:, :, 0].argmax(1) == labels).mean() < 0.3


def test_time_resolved_protocol_on_a_static_subject_is_refused(write_protocol, tmp_path, capsys):
    text = GRU.replace("zoo: digits-gru", "zoo: digits-mlp").replace("[encoder, gru, readout]", "[fc1]")
    path = write_protocol(text)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "subject 'digits-mlp' failed on the stimuli (images of shape (10, 1, 8, 8))" in err
    assert "with record.time the subject receives (batch, steps=10, channels, height, width)" in err
    assert not (tmp_path / "o").exists()


def test_bad_epochs_are_refused_with_positions(write_protocol, tmp_path, capsys):
    path = write_protocol(GRU.replace("onset: 2, offset: 6", "onset: 6, offset: 6"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "record.time: expected 0 <= onset < offset <= steps, found onset 6, offset 6, steps 10" in err


def test_lesions_on_time_resolved_recordings_are_refused(write_protocol, capsys):
    text = GRU + "lesions:\n  - {name: l, region: gru, evaluate: digits}\n"
    assert main(["validate", str(write_protocol(text))]) == 2
    assert "not available for time-resolved recordings" in capsys.readouterr().err


def test_gru_zoo_subject_learns_the_task():
    s = load_zoo_subject("digits-gru")
    assert s.info["test_accuracy"] > 0.9 and s.info["test_epochs"] == {"steps": 12, "onset": 2, "offset": 6}
    c = load_zoo_subject("digits32-cnn")
    assert c.info["test_accuracy"] > 0.9
    with torch.inference_mode():
        assert c.model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_analyses_average_the_asked_time_window(write_protocol, tmp_path):
    from neurorecord.analysis import anova
    from neurorecord.analysis.runner import load_analysis

    text = GRU + (
        "analyses:\n"
        "  - {name: stim, kind: anova, by: label, regions: [gru], window: stimulus}\n"
        "  - {name: late, kind: anova, by: label, regions: [gru], window: [100, 150]}\n"
        "  - {name: every, kind: anova, by: label, regions: [gru]}\n"
    )
    tree = neurorecord.run(write_protocol(text), tmp_path / "out", quiet=True)
    act = tree["gru"]["activity"].load()
    for name, bins in (("stim", [2, 3, 4, 5]), ("late", [6, 7]), ("every", list(range(10)))):
        got = load_analysis(tmp_path / "out", "gru", name)
        want = anova(act.isel(time_bin=bins).mean("time_bin"), "label")
        np.testing.assert_allclose(got["F"].values, want["F"].values, rtol=1e-6)
    assert not np.allclose(load_analysis(tmp_path / "out", "gru", "stim")["F"].values,
                           load_analysis(tmp_path / "out", "gru", "late")["F"].values)


def test_stimulus_coordinates_may_not_take_the_recordings_names():
    class Clashing(Frames):
        def parameters(self) -> dict[str, np.ndarray]:
            return {**super().parameters(), "jitter_x": np.arange(self._n)}

    with pytest.raises(StimulusError, match=r"stimuli\[0\]: set 'frames' has a coordinate named 'jitter_x', a name the recording gives its own"):
        PresentationPlan([Clashing(2, 3)], time=TimeSpec(steps=5, onset=1, offset=4))
