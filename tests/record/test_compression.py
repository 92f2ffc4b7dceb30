"""``record.compression``: each codec stores exactly the same values, says which it is, and a bad
value is refused by name before any work starts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

import neurorecord
from neurorecord.errors import ProtocolError, StoreError
from neurorecord.store import float_codecs
from tests.helpers import DIGITS_MLP

#: The digits CNN with its conv maps kept whole (reduce: none): wide arrays, many exact zeros.
CNN_MAPS = (DIGITS_MLP.replace("digits-mlp", "digits-cnn").replace("[fc1, fc2, fc3]", "[conv1, conv2, fc1]")
            .replace("reduce: mean", "reduce: none"))


def _with(compression: str) -> str:
    return CNN_MAPS.replace("  reduce: none\n", f"  reduce: none\n{compression}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The recording with compression: none (raw chunks), loaded in memory."""
    out = tmp_path_factory.mktemp("raw") / "out"
    path = out.parent / "p.yaml"
    path.write_text(_with("  compression: none\n"))
    tree = neurorecord.run(path, out, quiet=True)
    return out, {r: tree[r]["activity"].values for r in ["conv1", "conv2", "fc1"]}


@pytest.mark.parametrize("compression, codec, level", [
    ("", "lz4", 1),  # the default
    ("  compression: lz4\n  compression_level: 5\n", "lz4", 5),
    ("  compression: zstd\n", "zstd", 1),
    ("  compression: zstd\n  compression_level: 3\n", "zstd", 3),
])
def test_each_codec_stores_the_same_values(reference, write_protocol, tmp_path, compression, codec, level):
    raw_out, raw = reference
    out = tmp_path / "out"
    tree = neurorecord.run(write_protocol(_with(compression)), out, quiet=True)
    for region, values in raw.items():
        stored = tree[region]["activity"].values
        assert stored.dtype == np.float32 and np.array_equal(stored, values)  # lossless, bit for bit
        assert tree[region].attrs["compression"] == {"codec": codec, "level": level}
        # the array's own zarr metadata names the same Blosc compressor and level
        meta = json.loads((out / region / "activity" / "zarr.json").read_text())
        blosc = [c for c in json.dumps(meta["codecs"]).split('"name": ') if c.startswith('"blosc"')]
        assert len(blosc) == 1 and f'"cname": "{codec}"' in blosc[0] and f'"clevel": {level}' in blosc[0]
    assert (raw["conv1"] == 0).mean() > 0.1  # rectified maps: zeros to compress
    assert _activity_bytes(out) < _activity_bytes(raw_out)


def test_none_stores_raw_chunks(reference):
    out, raw = reference
    assert neurorecord.open_recording(out)["conv1"].attrs["compression"] == {"codec": "none", "level": None}
    assert zarr.open_array(out / "conv1" / "activity", mode="r").compressors == ()
    assert _activity_bytes(out) >= sum(v.nbytes for v in raw.values())


def _activity_bytes(out) -> int:
    return sum(f.stat().st_size for r in ["conv1", "conv2", "fc1"] for f in (out / r / "activity").glob("c.*"))


@pytest.mark.parametrize("extra, match", [
    ("  compression: gzip\n", r"p\.yaml:\d+:\d+: record\.compression: expected one of 'none', 'lz4' or 'zstd', found 'gzip'"),
    ("  compression: zstd\n  compression_level: 12\n", r"record\.compression_level: .*less than or equal to 9, found 12"),
    ("  compression: lz4\n  compression_level: 0\n", r"record\.compression_level: .*greater than or equal to 1, found 0"),
    ("  compression: none\n  compression_level: 3\n", r"compression_level: a level applies to lz4 or zstd, found compression: none"),
])
def test_bad_compression_is_refused_by_name(write_protocol, tmp_path, extra, match):
    path = write_protocol(_with(extra), name="p.yaml")
    with pytest.raises(ProtocolError, match=match):
        neurorecord.run(path, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_float_codecs_refuses_an_unknown_name():
    with pytest.raises(StoreError, match=r"compression: expected one of 'none', 'lz4', 'zstd', found 'lz5' \(did you mean 'lz4'\?\)"):
        float_codecs("lz5")
