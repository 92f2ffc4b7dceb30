"""Protocol loading: valid files load; every kind of mistake gives its specific message."""

from __future__ import annotations

import pytest

import neurorecord
from neurorecord.errors import ProtocolError
from neurorecord.protocol import load_protocol, protocol_from_text

from tests.helpers import DIGITS_MLP


def test_default_protocol_loads_with_core_keys():
    p = load_protocol(neurorecord.default_protocol_path())
    assert p.neurorecord == 1 and p.name == "digits" and p.seed == 0
    assert p.subject.zoo == "digits-mlp"
    assert p.stimuli[0].kind == "digits" and p.stimuli[0].split == "test"
    assert p.record.regions == ["fc1", "fc2", "fc3"] and p.record.batch_size == 256 and p.record.reduce == "mean"
    assert len(p.sha256) == 64 and p.text.startswith("#")


def test_paths_resolve_against_protocol_folder(write_protocol, tmp_path):
    p = load_protocol(write_protocol(DIGITS_MLP))
    assert p.folder == tmp_path.resolve()
    assert p.resolve("x/w.pt") == tmp_path.resolve() / "x" / "w.pt"


def test_sha256_changes_with_text(write_protocol):
    a = load_protocol(write_protocol(DIGITS_MLP, "a.yaml"))
    b = load_protocol(write_protocol(DIGITS_MLP.replace("seed: 0", "seed: 1"), "b.yaml"))
    assert a.sha256 != b.sha256


def _error(text: str) -> str:
    with pytest.raises(ProtocolError) as info:
        protocol_from_text(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    split: test", "    splitt: test"), ":9:5: stimuli[0].splitt: unknown key (did you mean 'split'?)"),
        (("  regions:", "  regoins:"), ":11:3: record.regoins: unknown key (did you mean 'regions'?)"),
        (("seed: 0", "sed: 0"), ":3:1: sed: unknown key (did you mean 'seed'?)"),
        (("  zoo: digits-mlp", "  zooo: digits-mlp"), "subject.zooo: unknown key (did you mean 'zoo'?)"),
        (("reduce: mean", "reduce: meen"), "record.reduce: expected one of 'mean', 'max', 'center' or 'none', found 'meen' (did you mean 'mean'?)"),
        (("kind: digits", "kind: digit"), "stimuli[0].kind: unknown stimulus kind 'digit' (did you mean 'digits'?); valid kinds: "),
        (("split: test", "split: validation"), "stimuli[0].split: expected one of 'test', 'train' or 'all', found 'validation'"),
        (("batch_size: 100", "batch_size: 0"), "record.batch_size: input should be greater than 0, found 0"),
        (("batch_size: 100", "batch_size: many"), "record.batch_size: input should be a valid integer"),
        (("regions: [fc1, fc2, fc3]", "regions: [fc1, fc1]"), "record: region listed twice: 'fc1'"),
        (("regions: [fc1, fc2, fc3]", "regions: []"), "record.regions: expected at least 1 item(s), found none"),
        (("  zoo: digits-mlp", "  zoo: digits-mlp\n  torchscript: m.ts"), "subject: give exactly one of 'zoo', 'entry_point', 'torchscript' (found zoo, torchscript)"),
        (("  zoo: digits-mlp", "  zoo: digits-mlp\n  state_dict: w.pt"), "'state_dict' needs 'entry_point'"),
        (("name: digits\n", "name: my digits\n"), "name: expected only letters, digits, '_', '.' and '-' (no spaces), found 'my digits'"),
        (("neurorecord: 1", "neurorecord: 0"), "neurorecord: protocol format version must be 1, found 0"),
        (("record:\n", "recording:\n"), "recording: unknown key (did you mean 'record'?)"),
    ],
)
def test_specific_messages(change, expected):
    old, new = change
    assert old in DIGITS_MLP
    assert expected in _error(DIGITS_MLP.replace(old, new, 1))


def test_missing_required_key_named():
    text = DIGITS_MLP.replace("subject:\n  zoo: digits-mlp\n", "")
    assert "subject: required key is missing" in _error(text)


def test_all_problems_reported_in_line_order():
    text = DIGITS_MLP.replace("splitt", "x").replace("    split: test", "    splitt: test").replace("reduce: mean", "reduce: meen")
    msg = _error(text)
    assert msg.splitlines()[0].endswith("2 problems in the protocol")
    assert msg.index("stimuli[0].splitt") < msg.index("record.reduce")


def test_newer_format_version_is_explained():
    msg = _error(DIGITS_MLP.replace("neurorecord: 1", "neurorecord: 3"))
    assert "protocol format version 3 is newer than this neurorecord supports (1); upgrade neurorecord" in msg


def test_malformed_yaml_has_position(write_protocol):
    path = write_protocol("neurorecord: 1\nname: x\nsubject: {zoo: digits-mlp\n")
    with pytest.raises(ProtocolError, match=r"protocol.yaml:4:1: not valid YAML"):
        load_protocol(path)


def test_not_a_mapping(write_protocol):
    with pytest.raises(ProtocolError, match="expected a mapping of protocol keys at the top level, found an empty file"):
        load_protocol(write_protocol(""))
    with pytest.raises(ProtocolError, match="found a list"):
        load_protocol(write_protocol("- 1\n- 2\n"))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ProtocolError, match="nope.yaml: protocol file not found"):
        load_protocol(tmp_path / "nope.yaml")
    with pytest.raises(ProtocolError, match="is a folder"):
        load_protocol(tmp_path)


def test_yaml_is_loaded_safely(write_protocol):
    """Python tags are refused by yaml.safe_load instead of being executed."""
    path = write_protocol(DIGITS_MLP.replace("name: digits", "name: !!python/object/apply:os.system ['echo hi']"))
    with pytest.raises(ProtocolError, match="not valid YAML"):
        load_protocol(path)


def test_unknown_stimulus_kind_lists_every_kind():
    from neurorecord.protocol.schema import STIMULUS_KINDS

    message = _error(DIGITS_MLP.replace("kind: digits", "kind: gratingz"))
    assert message.endswith("valid kinds: " + ", ".join(sorted(STIMULUS_KINDS)))


def test_tuning_curve_by_takes_one_or_two_coordinates():
    base = DIGITS_MLP + "analyses:\n  - {name: t, kind: tuning_curve, by: BY}\n"
    assert protocol_from_text(base.replace("BY", "[label, digit_index]")).analyses[0].by == ["label", "digit_index"]
    assert "analyses[0]: by: give one coordinate or a list of two (a 2-D map), found 3" in _error(base.replace("BY", "[a, b, c]"))
