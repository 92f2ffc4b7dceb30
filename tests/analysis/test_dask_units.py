"""Every registered analysis on dask-backed activity runs its kernel as dask tasks (per block of
units, on the active scheduler) and equals the in-memory result, whatever the stored chunking:
a store's sharded layout (narrow unit chunks), chunks along ``presentation`` only (column
groups), the threaded and the process scheduler."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

from neurorecord import store
from neurorecord.analysis import _units
from tests.analysis.test_common import ANALYSES


def synthetic(n_pres: int = 96, n_units: int = 40, seed: int = 0) -> xr.DataArray:
    """Non-negative responses with an orientation and a label per presentation, tuned units."""
    rng = np.random.default_rng(seed)
    orientation = np.tile(np.arange(0.0, 360.0, 45.0), n_pres // 8)
    label = np.arange(n_pres) % 3
    preferred = rng.uniform(0, 360, n_units)
    drive = np.exp(np.cos(np.deg2rad(orientation[:, None] - preferred[None, :])))
    values = (drive + 0.3 * label[:, None] * (np.arange(n_units) % 2) + rng.gamma(2.0, 0.2, (n_pres, n_units)))
    return xr.DataArray(
        values.astype(np.float32), dims=("presentation", "neuroid"),
        coords={"stimulus_id": ("presentation", [f"s{i}" for i in range(n_pres)]), "orientation": ("presentation", orientation),
                "label": ("presentation", label), "neuroid_id": ("neuroid", [f"r.{i}" for i in range(n_units)]),
                "region": ("neuroid", ["r"] * n_units)},
        attrs={"units": "a.u."},
    )


class TaskNames(Callback):
    """The names of the tasks the local schedulers ran."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def _pretask(self, key, dsk, state):  # noqa: ANN001 - dask's callback signature
        self.names.append(str(key[0] if isinstance(key, tuple) else key))


def _by(angular: bool) -> str:
    return "orientation" if angular else "label"


def _kwargs(name: str, kwargs: dict) -> dict:
    return {**kwargs, "period": 360.0} if "period" in kwargs else kwargs


def write_sharded(out, activity: xr.DataArray, unit_chunk: int = 8, rows: int = 32) -> xr.DataArray:
    """``activity`` written with the store's own layout (create_node: sharded), opened lazily."""
    import zarr

    store.create_node(out, "r", {"activity": (("presentation", "neuroid"), activity.shape, np.float32, {})},
                      coords={k: (v.dims[0], v.values) for k, v in activity.coords.items()}, attrs={}, chunk_rows=rows,
                      unit_chunk=unit_chunk)
    zarr.open_array(out / "r" / "activity", mode="r+")[:] = activity.values
    return xr.open_zarr(out, group="r", consolidated=False)["activity"]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> xr.DataArray:
    """The synthetic activity in the store's layout: shards of 32 presentations, 8-unit chunks."""
    opened = write_sharded(tmp_path_factory.mktemp("dask") / "rec", synthetic())
    assert opened.encoding["shards"] == (32, 40) and opened.encoding["chunks"] == (32, 8)
    return opened


@pytest.mark.parametrize("name", list(ANALYSES))
@pytest.mark.parametrize("layout", ["sharded", "rows"])
def test_dask_equals_numpy_and_runs_as_tasks(name, layout, sharded, monkeypatch):
    func, kwargs, angular = ANALYSES[name]
    loaded = synthetic()
    if layout == "sharded":
        lazy = sharded
        monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * 96 * 16)  # blocks of 16 units: two stored chunks each
    else:  # chunked along presentation only: groups of 16 columns, blocks of 8 units
        lazy = loaded.chunk({"presentation": 25})
        monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * 96 * 8)
        monkeypatch.setattr(_units, "GROUP_BYTES", 8 * 96 * 16)
    expected = func(loaded, _by(angular), **_kwargs(name, kwargs))
    with TaskNames() as tasks:
        result = func(lazy, _by(angular), **_kwargs(name, kwargs))
    assert sum("unit-kernel" in n for n in tasks.names) >= 3  # the kernel ran as dask tasks, block by block
    values = [result] if isinstance(result, xr.DataArray) else list(result.data_vars.values())
    assert not any(isinstance(v.data, da.Array) for v in values)  # returned computed
    xr.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)
    assert list(result["neuroid_id"].values) == list(loaded["neuroid_id"].values)


def test_process_scheduler_equals_numpy(sharded):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool, dask.config.set(scheduler="processes", pool=pool):
        for name in ("anova", "tuning_curve", "csi"):
            func, kwargs, angular = ANALYSES[name]
            expected = func(synthetic(), _by(angular), **kwargs)
            xr.testing.assert_allclose(func(sharded, _by(angular), **kwargs), expected, rtol=1e-12, atol=1e-12)


def test_unit_blocks_read_only_their_own_chunks(sharded, monkeypatch):
    """With the store's layout a block of units depends only on its own stored chunks: the graph
    of one block never touches another block's columns."""
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * 96 * 16)
    seen: list[int] = []

    def kernel(block: np.ndarray) -> np.ndarray:
        seen.append(block.shape[1])
        return block.mean(axis=0, keepdims=True)

    out = _units.map_unit_blocks(kernel, sharded.transpose("presentation", "neuroid"), 1)
    np.testing.assert_allclose(out[0], synthetic().values.astype(np.float64).mean(axis=0), rtol=1e-12)
    assert sorted(seen) == [8, 16, 16]  # 40 units: blocks of two 8-unit chunks
    columns = sharded.data.rechunk({0: -1, 1: 16})
    graph = dict(columns.__dask_graph__())
    for key in columns.__dask_keys__()[0]:
        deps = set()
        stack = [key]
        while stack:
            k = stack.pop()
            for dep in dask.core.get_dependencies(graph, k) if k in graph else []:
                deps.add(dep)
                stack.append(dep)
        read = {d[2] for d in deps if isinstance(d, tuple) and len(d) == 3 and str(d[0]).startswith("open_dataset")}
        assert len(read) <= 2, (key, read)
