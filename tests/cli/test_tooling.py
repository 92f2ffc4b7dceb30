"""``neurorecord schema``, ``neurorecord stimuli`` (contact sheets) and the plan ``validate`` prints."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest
import yaml

import neurorecord
from neurorecord.cli.main import main
from neurorecord.cli.plan import estimate
from neurorecord.plot.sheet import COLUMNS, THUMB, contact_sheet, sample_indices
from neurorecord.protocol.schema import FORMAT_VERSION, STIMULUS_KINDS
from neurorecord.stimuli.base import StimulusSet
from tests.helpers import DIGITS_MLP

DEFAULT = neurorecord.default_protocol_path()


def _schema(capsys) -> dict:
    assert main(["schema"]) == 0
    return json.loads(capsys.readouterr().out)


def test_schema_names_format_and_every_kind(capsys, tmp_path):
    schema = _schema(capsys)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == f"neurorecord protocol, format version {FORMAT_VERSION}"
    assert schema["x-neurorecord-format"] == FORMAT_VERSION
    assert schema["properties"]["neurorecord"]["const"] == FORMAT_VERSION
    kinds = set()
    for ref in schema["properties"]["stimuli"]["items"]["oneOf"]:
        kind = schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]["properties"]["kind"]
        kinds |= {kind["const"]} if "const" in kind else set(kind["enum"])
    assert kinds == set(STIMULUS_KINDS)
    out = tmp_path / "editor" / "protocol.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == schema
    assert main(["schema", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_schema_validates_protocols(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    schema = _schema(capsys)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(DEFAULT.read_text())
    assert list(validator.iter_errors(good)) == []
    bad = yaml.safe_load(DIGITS_MLP.replace("reduce: mean", "reduce: avg").replace("seed: 0", "sed: 0"))
    messages = " | ".join(e.message for e in validator.iter_errors(bad))
    assert "'avg' is not one of" in messages and "'sed' was unexpected" in messages


class _Frames(StimulusSet):
    """A sequence set: stimulus i is a ramp whose frame t has the value 10 * i + t everywhere."""

    name, image_shape, time_steps = "frames", (1, 4, 4), 6

    def __len__(self) -> int:
        return 5

    def parameters(self) -> dict[str, np.ndarray]:
        return {"stimulus_id": np.array([f"f{i}" for i in range(5)]), "speed": np.arange(5.0)}

    def images(self, index: np.ndarray) -> np.ndarray:
        t = np.arange(self.time_steps)
        values = 10.0 * np.asarray(index)[:, None] + t[None, :]
        return np.broadcast_to(values[:, :, None, None, None], (len(index), self.time_steps, 1, 4, 4)).astype(np.float32)


class _Colour(StimulusSet):
    """Three RGB images with values outside [0, 1], to be clipped."""

    name, image_shape = "colour", (3, 2, 2)

    def __len__(self) -> int:
        return 3

    def parameters(self) -> dict[str, np.ndarray]:
        return {"stimulus_id": np.array(["c0", "c1", "c2"])}

    def images(self, index: np.ndarray) -> np.ndarray:
        return np.stack([np.full((3, 2, 2), 0.7 * i - 0.5, dtype=np.float32) for i in index])


def _image_axes(block) -> list:
    return [ax for ax in block.axes if ax.images]


def test_contact_sheet_draws_each_set():
    digits = neurorecord.stimuli.DigitsSet("digits", "test")
    fig = contact_sheet([digits, _Frames(), _Colour()], max_per_set=12, frames=3)
    grey, frames, colour = fig.subfigs
    shown = sample_indices(len(digits), 12)
    assert shown.tolist() == [0, 41, 82, 124, 165, 206, 247, 288, 329, 371, 412, 453]
    axes = _image_axes(grey)
    assert len(axes) == 12
    for ax, image in zip(axes, digits.images(shown)):
        assert np.array_equal(ax.images[0].get_array(), image[0])
        assert ax.images[0].get_cmap().name == "gray" and ax.images[0].get_clim() == (0.0, 1.0)
    params = digits.parameters()  # titled with the parameters that vary: label and digit_index
    assert axes[1].get_title() == f"label {params['label'][41]}\ndigit_index {params['digit_index'][41]}"
    # a sequence set: 12 thumbnails of 3 frames -> 4 stimuli (0, 1, 3, 4) by frames 0, 2 (rounded from 2.5) and 5
    axes = _image_axes(frames)
    assert len(axes) == 12
    values = [float(ax.images[0].get_array()[0, 0]) for ax in axes]
    assert values == [10 * i + t for i in (0, 1, 3, 4) for t in (0, 2, 5)]
    assert [ax.get_title() for ax in axes[:3]] == ["t=0", "t=2", "t=5"] and axes[3].get_ylabel() == "speed 1"
    axes = _image_axes(colour)
    assert [ax.images[0].get_array().shape for ax in axes] == [(2, 2, 3)] * 3
    assert [float(ax.images[0].get_array()[0, 0, 0]) for ax in axes] == pytest.approx([0.0, 0.2, 0.9])  # -0.5 clipped to 0
    assert [ax.get_title() for ax in axes] == ["c0", "c1", "c2"]


def test_stimuli_command_writes_sheet(write_protocol, tmp_path, capsys):
    out = tmp_path / "sheets" / "digits.png"
    assert main(["stimuli", str(DEFAULT), "--out", str(out), "--max", "16"]) == 0
    assert "wrote" in capsys.readouterr().err
    height, width, _ = matplotlib.image.imread(out).shape
    # 16 thumbnails in 2 rows of COLUMNS at 100 dpi, one set title
    assert (width, height) == (round((COLUMNS * THUMB + 1.0) * 100), round((2 * THUMB * 1.3 + 0.5) * 100))
    two = write_protocol(DIGITS_MLP.replace("    split: test\n", "    split: test\n  - name: train\n    kind: digits\n    split: train\n"))
    assert main(["stimuli", str(two), "--out", str(tmp_path / "test.png"), "--set", "digits", "--max", "8"]) == 0
    assert main(["stimuli", str(two), "--out", str(tmp_path / "train.png"), "--set", "train", "--max", "8"]) == 0
    test_sheet, train_sheet = (matplotlib.image.imread(tmp_path / f) for f in ("test.png", "train.png"))
    assert test_sheet.shape == train_sheet.shape and not np.array_equal(test_sheet, train_sheet)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--set", "digts"], "--set: "),
        (["--out-name", "sheet.bmpx"], "--out: cannot tell the image format from 'sheet.bmpx'"),
        (["--protocol", DIGITS_MLP.replace("split: test", "split: tset")], "stimuli[0].split: expected one of 'test', 'train' or 'all', found 'tset'"),
    ],
)
def test_stimuli_command_errors_write_nothing(write_protocol, tmp_path, capsys, argv, expected):
    protocol = write_protocol(argv[1] if argv[0] == "--protocol" else DIGITS_MLP)
    out = tmp_path / "sheet" / (argv[1] if argv[0] == "--out-name" else "sheet.png")
    extra = argv if argv[0] == "--set" else []
    assert main(["stimuli", str(protocol), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert not out.parent.exists()


def test_validate_prints_estimates_for_default_protocol(capsys):
    assert main(["validate", str(DEFAULT)]) == 0
    out = capsys.readouterr().out
    # by hand: 3 regions (fc1, fc2, fc3) of 100 units, 454 presentations, float32
    activity = 3 * 454 * 100 * 4  # 544,800 B
    # coordinates per region node: stimulus_id 'digits-0000' (11 chars) + stimulus_set 'digits' (6) per
    # presentation, repetition / label / digit_index int64; neuroid_id 'fc1.0'..'fc1.99', region 'fc1', channel int64
    presentation = 454 * (11 + 6 + 3 * 8)
    neuroid = (10 * 5 + 90 * 6) + 100 * 3 + 100 * 8
    coordinates = 3 * (presentation + neuroid)  # 60,912 B
    batch = 256  # min(batch_size 256, 454 presentations)
    images = batch * 1 * 8 * 8 * 4  # 65,536 B
    outputs = 3 * batch * 100 * 4  # 307,200 B
    chunk = 454  # batches_per_chunk auto: 2 batches of 100 kB (the plan's 2) make one stored chunk
    buffers = 2 * 3 * chunk * 100 * 4  # two write buffers per region, a chunk each: 1,089,600 B
    weights = 4 * ((64 * 100 + 100) + 2 * (100 * 100 + 100) + (100 * 10 + 10))  # 110,840 B
    est = estimate(neurorecord.prepare(DEFAULT))
    assert (est.activity_bytes, est.coordinate_bytes, est.image_batch_bytes, est.output_batch_bytes, est.buffer_bytes,
            est.weight_bytes) == (activity, coordinates, images, outputs, buffers, weights)
    assert est.peak_bytes == 1_573_176 and est.disk_bytes == 605_712
    assert "disk     about 605.7 kB uncompressed: activity 544.8 kB + coordinates 60.9 kB; compression" in out
    assert ("memory   about 1.6 MB at peak while recording: images 65.5 kB (batch of 256) + region outputs 307.2 kB "
            "+ 2 write buffers 1.1 MB + weights 110.8 kB") in out
    assert "lesions" not in out and out.rstrip().endswith("protocol is valid")


def test_validate_counts_lesion_evaluations(write_protocol, capsys):
    lesions = """lesions:
  - {name: every-fc2, region: fc2, units: all, evaluate: digits}
  - {name: two-fc2, region: fc2, units: {each: [3, 17]}, evaluate: digits}
  - {name: quarter-fc1, region: fc1, units: {fraction: 0.25}, controls: 9, evaluate: digits}
  - {name: pre-fc3, region: fc3.linear, units: all, evaluate: digits}
"""
    assert main(["validate", str(write_protocol(DIGITS_MLP + lesions))]) == 0
    out = capsys.readouterr().out
    assert "lesions  every-fc2: 100 lesions of fc2 x 454 stimuli (digits) = 45,400 lesioned evaluations" in out
    assert "lesions  two-fc2: 2 lesions of fc2 x 454 stimuli (digits) = 908 lesioned evaluations" in out
    assert "lesions  quarter-fc1: 10 lesions of fc1 x 454 stimuli (digits) = 4,540 lesioned evaluations" in out
    # fc3.linear is not recorded: its 100 units are counted from a probe image
    assert "lesions  pre-fc3: 100 lesions of fc3.linear x 454 stimuli (digits) = 45,400 lesioned evaluations" in out
    assert f"lesions  total {45_400 + 908 + 4_540 + 45_400:,} lesioned evaluations" in out
