"""A node's skeleton, written by :func:`neurorecord.store.create_node` (coordinates through xarray,
unwritten variables straight through zarr), is what xarray itself writes from dask zeros."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from neurorecord.store import UNIT_CHUNK, create_node, float_codecs


def _reference(out, node, variables, coords, attrs, chunk_rows, compression, level):
    """The slow, obvious skeleton: xarray's ``to_zarr(compute=False)`` of dask zeros."""
    lazy, encoding = {}, {}
    for name, (dims, shape, dtype, var_attrs) in variables.items():
        shard = (min(chunk_rows, shape[0]), *shape[1:])
        lazy[name] = xr.Variable(dims, da.zeros(shape, chunks=shard, dtype=dtype), attrs=var_attrs)
        encoding[name] = {"chunks": shard}
        if np.dtype(dtype).kind == "f":
            encoding[name]["compressors"] = float_codecs(compression, level)
        if len(shape) > 1 and shape[1] > UNIT_CHUNK:
            encoding[name]["chunks"] = (shard[0], UNIT_CHUNK, *shard[2:])
            encoding[name]["shards"] = (shard[0], -(-shape[1] // UNIT_CHUNK) * UNIT_CHUNK, *shard[2:])
    codecs = float_codecs(compression, level)
    ds = xr.Dataset(lazy, coords=coords, attrs={**attrs, "compression": {"codec": compression, "level": codecs[0].clevel if codecs else None}})
    ds.to_zarr(out, group=node, mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding)


def _metadata(folder):
    return {p.relative_to(folder).as_posix(): json.loads(p.read_text()) for p in sorted(folder.rglob("zarr.json"))}


@pytest.mark.parametrize("compression, level", [("lz4", None), ("zstd", 3), ("none", None)])
@pytest.mark.parametrize("n_neuroid, time_bins", [(100, 0), (1500, 0), (40, 5)])
def test_skeleton_equals_xarrays_own(tmp_path, compression, level, n_neuroid, time_bins):
    n = 300
    pres = {"stimulus_id": ("presentation", np.array([f"s{i}" for i in range(n)], dtype=object)),
            "label": ("presentation", np.arange(n) % 10), "orientation": ("presentation", np.linspace(0, 180, n))}
    neur = {"neuroid_id": ("neuroid", np.array([f"r.{i}" for i in range(n_neuroid)], dtype=object)),
            "channel": ("neuroid", np.arange(n_neuroid))}
    times = {"time_bin": ("time_bin", np.arange(time_bins)),
             "time_bin_start": ("time_bin", np.arange(time_bins) * 10.0, {"units": "ms"})} if time_bins else {}
    dims = ("presentation", "neuroid") + (("time_bin",) if time_bins else ())
    shape = (n, n_neuroid) + ((time_bins,) if time_bins else ())
    variables = {
        "activity": (dims, shape, np.float32, {"units": "a.u.", "long_name": "activity of r"}),
        "predicted": (("presentation",), (n,), np.int64, {"long_name": "predicted class"}),
    }
    coords = {**pres, **neur, **times}
    attrs = {"region": "r", "output_shape": [4, 5]}
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    create_node(ours, "r", variables, coords, attrs, chunk_rows=128, compression=compression, compression_level=level)
    _reference(theirs, "r", variables, coords, attrs, 128, compression, level)
    assert _metadata(ours) == _metadata(theirs)
    a = xr.open_zarr(ours, group="r", consolidated=False)
    b = xr.open_zarr(theirs, group="r", consolidated=False)
    xr.testing.assert_identical(a.load(), b.load())
    assert np.isnan(a["activity"].values).all() and a["activity"].encoding["chunks"] == b["activity"].encoding["chunks"]


def test_a_result_node_has_the_bytes_xarray_writes_to_disk(tmp_path):
    """save_result_node builds the node in a MemoryStore and writes plain files: the same files,
    byte for byte, as xarray's own to_zarr on the disk (the obvious path), and the same Dataset read back."""
    from pathlib import Path

    from neurorecord.store import save_result_node

    rng = np.random.default_rng(0)
    p = rng.uniform(size=7)
    p[2] = np.nan
    ds = xr.Dataset(
        {"p": ("neuroid", p, {"units": "1", "long_name": "p value"}),
         "member": ("neuroid", p < 0.5),
         "rank": ("neuroid", np.arange(7, dtype=np.int64)),
         "means": (("condition", "neuroid"), rng.normal(size=(3, 7)))},
        coords={"neuroid_id": ("neuroid", np.array([f"fc1.{i}" for i in range(7)], dtype=object)),
                "condition": ("condition", np.array([0, 1, 2])),
                "region": ("neuroid", np.array(["fc1"] * 7, dtype=object))},
        attrs={"test": "anova", "n_members": 3},
    )
    save_result_node(tmp_path / "fast", "analyses/fc1/x", ds)
    save_result_node(tmp_path / "fast", "analyses/fc1/x", ds)  # replacing a node leaves no stale file
    ds.to_zarr(tmp_path / "obvious", group="analyses/fc1/x", mode="w", zarr_format=3, consolidated=False)

    def files(root: Path) -> dict[str, bytes]:
        node = root / "analyses" / "fc1" / "x"
        return {str(f.relative_to(node)): f.read_bytes() for f in sorted(node.rglob("*")) if f.is_file()}

    assert files(tmp_path / "fast") == files(tmp_path / "obvious")
    for root in ("fast", "obvious"):
        assert (tmp_path / root / "analyses" / "fc1" / "zarr.json").is_file()  # the groups above exist
    fast = xr.open_zarr(tmp_path / "fast", group="analyses/fc1/x", consolidated=False).load()
    xr.testing.assert_identical(fast, xr.open_zarr(tmp_path / "obvious", group="analyses/fc1/x", consolidated=False).load())
    xr.testing.assert_identical(fast[["p", "member", "rank", "means"]].reset_coords(drop=True),
                                ds[["p", "member", "rank", "means"]].reset_coords(drop=True))
