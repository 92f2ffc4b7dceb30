"""A protocol with analyses and lesions run with a ``dask.distributed`` client in scope (a local
cluster of 2 worker processes) writes the same store as a single process: the lesion blocks ran
on the workers (task stream), the analyses' kernels too, and every node is identical."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import neurorecord
from neurorecord.cli.main import main
from neurorecord.lesion.distributed import cluster_client, current_client
from tests.conftest import REPO

distributed = pytest.importorskip("distributed")

#: Provenance that differs between two runs of the same protocol (times, the run's thread count).
VOLATILE = {"created", "finished", "torch_threads", "manifest"}

#: How a lesion sweep's passes were sized: measured while it runs (timing), so two runs may differ
#: even in one process; the predictions do not depend on them, float sums over units may (last bits).
PASS_SIZES = {"pack_size", "stimulus_chunk", "upstream_batch", "shortcut", "shortcut_reason", "split_kind"}

LESION_STUDY = REPO / "protocols" / "lesion-study.yaml"


def assert_same_store(a, b) -> None:
    ta, tb = xr.open_datatree(a, engine="zarr"), xr.open_datatree(b, engine="zarr")
    assert sorted(n.path for n in ta.subtree) == sorted(n.path for n in tb.subtree)
    assert {k: v for k, v in ta.attrs.items() if k not in VOLATILE} == {k: v for k, v in tb.attrs.items() if k not in VOLATILE}
    for node in ta.subtree:
        if node.has_data:
            da_, db_ = node.to_dataset(inherit=False).load(), tb[node.path].to_dataset(inherit=False).load()
            for ds in (da_, db_):
                ds.attrs = {k: v for k, v in ds.attrs.items() if k not in PASS_SIZES}
            if node.path.startswith("/lesions/"):
                # float32 activity summed in passes of measured sizes: two single-process runs of the
                # lesion study differ by up to 8e-8 in unit_change (values up to 1.5) on this machine
                xr.testing.assert_allclose(da_, db_, rtol=1e-6, atol=1e-6)
                for name in ("correct", "delta_accuracy", "p", "q", "ci_low", "ci_high"):  # from predictions: exact
                    if name in da_:
                        xr.testing.assert_identical(da_[name], db_[name])
            else:
                xr.testing.assert_identical(da_, db_)


@pytest.mark.slow  # two runs of the lesion study and a 2-process cluster: about a minute here
def test_lesion_study_on_a_local_cluster_equals_one_process(tmp_path):
    single = tmp_path / "single"
    neurorecord.run(LESION_STUDY, single, quiet=True)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        assert current_client() is client
        workers = set(client.scheduler_info()["workers"])
        neurorecord.run(LESION_STUDY, tmp_path / "cluster", quiet=True)
    assert_same_store(single, tmp_path / "cluster")
    keys = [str(t["key"]) for t in stream.data]
    lesion_tasks = [t for t in stream.data if str(t["key"]).startswith("lesion-blocks-")]
    assert {str(t["key"]).split("-")[2] for t in lesion_tasks} >= {"fc3", "fc2"}  # the 100-unit sweeps: blocks past the first
    assert {t["worker"] for t in lesion_tasks} <= workers and len(workers) == 2
    assert any("unit-kernel" in k for k in keys)  # the likes-3 analysis ran its kernel on the workers
    state = json.loads((tmp_path / "cluster" / "zarr.json").read_text())["attributes"]["run"]
    assert state["stage"] == "complete" and set(state["lesions_done"].values()) == {-1}


def test_cli_cluster_options(tmp_path, capsys):
    with cluster_client() as client:
        assert client is None
    with pytest.raises(SystemExit):
        main(["run", str(LESION_STUDY), "--out", str(tmp_path / "o"), "--workers", "0"])
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(LESION_STUDY), "--out", str(tmp_path / "o"), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # two runs and a 2-process cluster: about a minute here
def test_cli_workers_runs_on_a_local_cluster(write_protocol, tmp_path, capsys):
    from tests.helpers import DIGITS_MLP, LIKES_3

    text = DIGITS_MLP + "analyses:\n" + LIKES_3 + "lesions:\n  - name: fc3-single\n    region: fc3\n    units: all\n    evaluate: digits\n"
    protocol = write_protocol(text)
    assert main(["run", str(protocol), "--out", str(tmp_path / "cluster"), "--workers", "2", "--quiet"]) == 0
    neurorecord.run(protocol, tmp_path / "single", quiet=True)
    assert_same_store(tmp_path / "single", tmp_path / "cluster")
    fx = neurorecord.open_recording(tmp_path / "cluster")["lesions/fc3-single"]
    assert fx.sizes["lesion"] == 100 and np.isfinite(fx["delta_accuracy"].values).all()
