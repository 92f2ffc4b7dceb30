"""A node's skeleton, written by :func:`neurorecord.store.create_node` (straight through zarr,
without xarray), is what xarray itself writes from dask zeros, byte for byte."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from neurorecord.store import CHUNK_KEYS, UNIT_CHUNK, create_node, float_codecs


def _reference(out, node, variables, coords, attrs, chunk_rows, compression, level):
    """The slow, obvious skeleton: xarray's ``to_zarr(compute=False)`` of dask zeros."""
    lazy, encoding = {}, {}
    for name, (dims, shape, dtype, var_attrs) in variables.items():
        shard = (min(chunk_rows, shape[0]), *shape[1:])
        lazy[name] = xr.Variable(dims, da.zeros(shape, chunks=shard, dtype=dtype), attrs=var_attrs)
        encoding[name] = {"chunks": shard, "chunk_key_encoding": CHUNK_KEYS}
        if np.dtype(dtype).kind == "f":
            encoding[name]["compressors"] = float_codecs(compression, level)
        if len(shape) > 1 and shape[1] > UNIT_CHUNK:
            encoding[name]["chunks"] = (shard[0], UNIT_CHUNK, *shard[2:])
            encoding[name]["shards"] = (shard[0], -(-shape[1] // UNIT_CHUNK) * UNIT_CHUNK, *shard[2:])
    codecs = float_codecs(compression, level)
    ds = xr.Dataset(lazy, coords=coords, attrs={**attrs, "compression": {"codec": compression, "level": codecs[0].clevel if codecs else None}})
    encoding.update({name: {"chunk_key_encoding": CHUNK_KEYS} for name in ds.coords})
    ds.to_zarr(out, group=node, mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding)


def _keyed(ds):
    """The chunk file names the store uses (CHUNK_KEYS), given to xarray as an encoding."""
    return {name: {"chunk_key_encoding": CHUNK_KEYS} for name in ds.variables}


def _metadata(folder):
    return {p.relative_to(folder).as_posix(): json.loads(p.read_text()) for p in sorted(folder.rglob("zarr.json"))}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("compression, level", [("lz4", None), ("zstd", 3), ("none", None)])
@pytest.mark.parametrize("n_neuroid, time_bins", [(100, 0), (1500, 0), (40, 5)])
def test_skeleton_equals_xarrays_own(tmp_path, compression, level, n_neuroid, time_bins):
    n = 300
    contrast = np.linspace(0, 1, n)
    contrast[::7] = np.nan  # a parameter some stimulus sets lack
    pres = {"stimulus_id": ("presentation", np.array([f"s{i}" for i in range(n)], dtype=object)),
            "label": ("presentation", np.arange(n) % 10), "orientation": ("presentation", np.linspace(0, 180, n)),
            "contrast": ("presentation", contrast, {"units": "1", "long_name": "Michelson contrast"}),
            "shift": ("presentation", (np.arange(n) % 3).astype(np.int32)), "flipped": ("presentation", np.arange(n) % 2 == 0),
            "phase": ("presentation", np.linspace(0, 1, n, dtype=np.float32)),
            "category": ("presentation", np.array(["", "é", "cat"] * (n // 3), dtype=object), {"long_name": "category"})}
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
    assert _files(ours) == _files(theirs)
    a = xr.open_zarr(ours, group="r", consolidated=False)
    b = xr.open_zarr(theirs, group="r", consolidated=False)
    xr.testing.assert_identical(a.load(), b.load())
    assert np.isnan(a["activity"].values).all() and a["activity"].encoding["chunks"] == b["activity"].encoding["chunks"]


def test_coordinates_shared_by_nodes_are_encoded_once_and_each_node_gets_them(tmp_path):
    """The presentation coordinates a run gives every node (the same tuples) are encoded once; the
    nodes written together are those written one by one."""
    from neurorecord.store import create_nodes

    pres = {"stimulus_id": ("presentation", np.array(["a", "b", "c"], dtype=object)), "label": ("presentation", np.arange(3))}
    variables = {"activity": (("presentation", "neuroid"), (3, 2), np.float32, {})}
    nodes = {node: (variables, {**pres, "neuroid_id": ("neuroid", np.array([f"{node}.0", f"{node}.1"], dtype=object))},
                    {"region": node}) for node in ("r1", "r2")}
    create_nodes(tmp_path / "together", nodes, chunk_rows=2)
    for node, (var, coords, attrs) in nodes.items():
        create_node(tmp_path / "one_by_one", node, var, coords, attrs, chunk_rows=2)
    assert _files(tmp_path / "together") == _files(tmp_path / "one_by_one")
    assert json.loads((tmp_path / "together" / "r2" / "activity" / "zarr.json").read_text())["attributes"]["coordinates"] == (
        "label neuroid_id stimulus_id")
    assert xr.open_zarr(tmp_path / "together", group="r2", consolidated=False)["neuroid_id"].values.tolist() == ["r2.0", "r2.1"]


def test_fixed_width_text_is_stored_as_variable_length_text(tmp_path):
    """numpy's fixed-width text (``<U``), which xarray would store in a type zarr calls unstable,
    is stored as variable-length UTF-8, like the object arrays the recorder makes; other dtypes are refused."""
    from neurorecord.errors import StoreError

    create_node(tmp_path, "r", {}, {"name": ("p", np.array(["ab", "c"]))}, {}, chunk_rows=2)
    assert json.loads((tmp_path / "r" / "name" / "zarr.json").read_text())["data_type"] == "string"
    assert xr.open_zarr(tmp_path, group="r", consolidated=False)["name"].values.tolist() == ["ab", "c"]
    with pytest.raises(StoreError, match="variable 'when': expected numbers, booleans or text, found dtype datetime64"):
        create_node(tmp_path, "w", {}, {"when": ("p", np.array(["2026-01-01"], dtype="datetime64[D]"))}, {}, chunk_rows=2)


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
    ds.to_zarr(tmp_path / "obvious", group="analyses/fc1/x", mode="w", zarr_format=3, consolidated=False, encoding=_keyed(ds))

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


def _result_files(root, node):
    folder = root.joinpath(*node.split("/"))
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


EDGE_RESULTS = {
    "no coordinates": xr.Dataset({"n": ("unit", np.arange(3)), "x": ((), 2.5), "name": ((), "anova")}),
    "coordinate of no variable": xr.Dataset({"m": ("neuroid", np.ones(2))},
                                            coords={"edge": ("bin", np.array([0.0, 1.0, np.nan])), "bin": ("bin", [0, 1, 2])}),
    "text and flags": xr.Dataset({"label": ("neuroid", np.array(["a", "", "é"])), "flag": ("neuroid", [True, False, True])},
                                 coords={"neuroid_id": ("neuroid", np.array(["r.0", "r.1", "r.2"], dtype=object))},
                                 attrs={"p": np.float64(np.nan), "levels": np.arange(3)}),
    "dates (xarray's own encoding)": xr.Dataset({"when": ("unit", np.array(["2026-01-01", "2026-02-01"], dtype="datetime64[ns]"))}),
    "2-d with attrs": xr.Dataset({"means": (("condition", "neuroid"), np.arange(6.0).reshape(2, 3), {"units": "a.u."})},
                                 coords={"condition": ("condition", np.array(["x", "y"], dtype=object)),
                                         "neuroid_id": ("neuroid", np.array(["a", "b", "c"], dtype=object))}),
}


@pytest.mark.parametrize("name", list(EDGE_RESULTS))
def test_result_nodes_of_every_shape_have_xarrays_bytes(tmp_path, name):
    from neurorecord.store import _storable, load_result_node, save_result_node

    ds = EDGE_RESULTS[name]
    save_result_node(tmp_path / "fast", "analyses/r/x", ds)
    _storable(ds).to_zarr(tmp_path / "obvious", group="analyses/r/x", mode="w", zarr_format=3, consolidated=False,
                          encoding=_keyed(ds))
    assert _result_files(tmp_path / "fast", "analyses/r/x") == _result_files(tmp_path / "obvious", "analyses/r/x")
    xr.testing.assert_identical(load_result_node(tmp_path / "fast", "analyses/r/x"),
                                load_result_node(tmp_path / "obvious", "analyses/r/x"))


def test_every_result_of_the_default_protocol_has_xarrays_bytes(tmp_path):
    """The analyses' own results, as a run stores them, are the bytes xarray's to_zarr writes."""
    import neurorecord
    from neurorecord.store import _storable, load_result_node

    tree = neurorecord.run(neurorecord.default_protocol_path(), tmp_path / "run", quiet=True)
    nodes = [n.path.lstrip("/") for n in tree.subtree if n.path.startswith("/analyses/") and n.path.count("/") == 3]
    assert len(nodes) == 12
    for node in nodes:
        result = _storable(load_result_node(tree, node))
        result.to_zarr(tmp_path / "obvious", group=node, mode="w", zarr_format=3, consolidated=False, encoding=_keyed(result))
        assert _result_files(tmp_path / "run", node) == _result_files(tmp_path / "obvious", node), node
