"""Analyses of an opened recording with a ``distributed.Client`` in scope: the kernels run on the
cluster's worker processes (task stream), not in the client, and the results equal numpy's."""

from __future__ import annotations

import os

import pytest
import xarray as xr

from neurorecord import analysis
from neurorecord.analysis import _units
from tests.analysis.test_dask_units import synthetic, write_sharded

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # a 2-process cluster: about 30 s here


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  memory_limit="1GiB") as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_sharded(tmp_path_factory.mktemp("distributed") / "rec", synthetic(n_pres=400, n_units=100), unit_chunk=16)


def test_analyses_run_on_the_workers_and_equal_numpy(client, recording, monkeypatch):
    activity = recording
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * activity.sizes["presentation"] * 10)  # 10 blocks of 10 units
    loaded = activity.copy(data=activity.values)
    calls = {
        "anova": lambda a: analysis.anova(a, "label"),
        "tuning_curve": lambda a: analysis.tuning_curve(a, "label", n_boot=50, seed=1),
        "selectivity": lambda a: analysis.selectivity(a, "label", "dprime"),
        "kruskal": lambda a: analysis.kruskal(a, "label"),
    }
    workers = set(client.scheduler_info()["workers"])
    assert len(workers) == 2
    for name, call in calls.items():
        with distributed.get_task_stream(client) as stream:
            result = call(activity)
        kernels = [t for t in stream.data if "unit-kernel" in str(t["key"])]
        assert len(kernels) >= 10, f"{name}: {len(kernels)} kernel tasks ran on the cluster, expected one per block at least"
        assert {t["worker"] for t in kernels} <= set(workers), name
        xr.testing.assert_allclose(result, call(loaded), rtol=1e-12, atol=1e-12)


def test_worker_pids_are_not_the_client(client):
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
