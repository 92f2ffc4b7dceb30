"""A protocol with analyses and lesions run with a ``dask.distributed`` client in scope (a local
cluster of 2 worker processes) writes the same store as a single process: the recording's batches
and the lesion blocks ran on the workers (task stream), the analyses' kernels too, and every node
is identical. A worker killed while recording and another while lesioning, or the whole cluster
run killed and resumed, still give the single process's store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import neurorecord
from neurorecord.cli.main import main
from neurorecord.cluster import cluster_client, current_client
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
    protocol = tmp_path / "lesion-study.yaml"  # a chunk per batch: the recording's 2 batches can go to 2 workers
    protocol.write_text(LESION_STUDY.read_text().replace("  batch_size: 256\n", "  batch_size: 256\n  batches_per_chunk: 1\n"))
    neurorecord.run(protocol, single, quiet=True)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        assert current_client() is client
        workers = set(client.scheduler_info()["workers"])
        neurorecord.run(protocol, tmp_path / "cluster", quiet=True)
    assert_same_store(single, tmp_path / "cluster")
    keys = [str(t["key"]) for t in stream.data]
    lesion_tasks = [t for t in stream.data if str(t["key"]).startswith("lesion-blocks-")]
    assert {str(t["key"]).split("-")[2] for t in lesion_tasks} >= {"fc3", "fc2"}  # the 100-unit sweeps: blocks past the first
    assert {t["worker"] for t in lesion_tasks} <= workers and len(workers) == 2
    assert any("unit-kernel" in k for k in keys)  # the likes-3 analysis ran its kernel on the workers
    recorded = [t for t in stream.data if str(t["key"]).startswith("record-batches-")]
    assert len({t["worker"] for t in recorded}) == 2  # the recording's batches ran on both workers
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


# A subject whose layer after the lesioned region kills the dask worker running it, once per
# marker file: a worker at its third forward pass or later claims a marker that exists (unlinks
# it) and dies with SIGKILL in the middle of its task, as a worker whose machine is lost does.
# The recording's marker exists from the start; the test creates the lesions' marker when the run
# reaches that stage. The module lives in the protocol's folder, which the workers cannot import:
# it travels by value with the subject (neurorecord.cluster).
KILLER = '''
import os
import signal
import time

import torch
from torch import nn

MARKERS = {markers!r}
CALLS = [0]


class Killer(nn.Module):
    def forward(self, x):
        if x.shape[0] > 2:
            time.sleep(0.03)
            if _on_a_worker():
                CALLS[0] += 1
                for marker in MARKERS if CALLS[0] >= 3 else []:
                    try:
                        os.unlink(marker)
                    except FileNotFoundError:
                        continue
                    os.kill(os.getpid(), signal.SIGKILL)
        return x


def _on_a_worker():
    try:
        from distributed import get_worker
        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 80), nn.ReLU(), Killer(), nn.Linear(80, 10))
'''

KILLED_PROTOCOL = """neurorecord: 1
name: worker-killed
seed: 0
subject:
  entry_point: 'killersubject:build'
stimuli:
  - name: digits
    kind: digits
    split: test
record:
  regions: ['2', '4']
  batch_size: 16
  batches_per_chunk: 2
  variability: {input_noise: 0.05}
analyses:
  - name: responsive
    kind: anova
    regions: ['2', '4']
    by: label
lesions:
  - name: single
    region: '2'
    units: all
    evaluate: digits
    n_boot: 50
"""


def _watch_and_mark(store, recording_marker, lesion_marker, stop) -> list[str]:
    """The run state when the recording's marker was claimed; creates the lesions' marker once the
    run is lesioning (and notes the state then): the proof that both kills were mid-stage."""
    import time

    seen: list[str] = []
    while len(seen) < 2 and not stop.is_set():
        try:
            state = json.loads((store / "zarr.json").read_text())["attributes"]["run"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            state = None
        if state is not None:
            if not seen and not recording_marker.exists():
                seen.append(f"{state['stage']}:{state['batches_done']}")
            elif len(seen) == 1 and state["stage"] == "lesioning":
                lesion_marker.touch()
                seen.append(f"{state['stage']}:{state['lesions_done']}")
        time.sleep(0.002)
    return seen


@pytest.mark.slow  # a single-process run and a cluster run of a slowed subject: about a minute here
def test_a_worker_killed_while_recording_and_while_lesioning_loses_nothing(tmp_path):
    import threading

    recording_marker, lesion_marker = tmp_path / "kill-while-recording", tmp_path / "kill-while-lesioning"
    (tmp_path / "killersubject.py").write_text(KILLER.format(markers=[str(recording_marker), str(lesion_marker)]))
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(KILLED_PROTOCOL)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker: a GEMM of a few rows sums in another order on 2 threads (last bit)
    try:
        neurorecord.run(protocol, tmp_path / "single", quiet=True)  # the client never kills itself
    finally:
        torch.set_num_threads(threads)

    store = tmp_path / "cluster"
    stop = threading.Event()
    seen: list[str] = []
    watcher = threading.Thread(target=lambda: seen.extend(_watch_and_mark(store, recording_marker, lesion_marker, stop)),
                               daemon=True)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        recording_marker.touch()
        watcher.start()
        try:
            neurorecord.run(protocol, store, quiet=True)
        finally:
            stop.set()
            watcher.join()
    assert [s.split(":")[0] for s in seen] == ["recording", "lesioning"], seen
    assert int(seen[0].split(":")[1]) < -(-454 // 16), seen  # the first kill came before the last batch
    assert not recording_marker.exists() and not lesion_marker.exists()  # both claimed: two workers died mid-task
    workers = {t["worker"] for t in stream.data}
    assert len(workers) >= 3  # the nanny restarted the killed workers under new addresses
    state = json.loads((store / "zarr.json").read_text())["attributes"]["run"]
    assert state["stage"] == "complete" and state["batches_done"] == -(-454 // 16)
    assert_same_store(tmp_path / "single", store)


CLUSTER_RUN = """
import sys
import distributed
import neurorecord

if __name__ == "__main__":
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \\
            distributed.Client(cluster):
        neurorecord.run(sys.argv[1], sys.argv[2], resume=True, quiet=True)
"""


@pytest.mark.slow  # three runs of a slowed subject, two of them on a 2-process cluster: about a minute here
def test_a_cluster_run_killed_while_recording_resumes_to_the_same_store(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    (tmp_path / "killersubject.py").write_text(KILLER.format(markers=[]))
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(KILLED_PROTOCOL)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        neurorecord.run(protocol, tmp_path / "single", quiet=True)
    finally:
        torch.set_num_threads(threads)
    script = tmp_path / "cluster_run.py"
    script.write_text(CLUSTER_RUN)
    store = tmp_path / "cluster"
    run = subprocess.Popen([sys.executable, str(script), str(protocol), str(store)], start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        try:
            state = json.loads((store / "zarr.json").read_text())["attributes"]["run"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            state = None
        # killed once a worker has written a chunk: batches_done counts only the finished prefix of
        # ranges, which stays 0 until the first range ends and may then jump to the end
        if state is not None and state["stage"] == "recording" and any(store.glob("*/activity/c.*")):
            os.killpg(run.pid, signal.SIGKILL)  # the client, the scheduler and the workers at once
            break
        time.sleep(0.002)
    run.wait()
    assert state is not None and state["stage"] == "recording" and state["batches_done"] < -(-454 // 16), state
    killed = json.loads((store / "zarr.json").read_text())["attributes"]["run"]
    assert killed["stage"] == "recording" and killed["batches_done"] < -(-454 // 16), killed
    assert any(store.glob("*/activity/c.*")), "killed before any chunk was written: nothing for the resume to keep"
    resumed = subprocess.run([sys.executable, str(script), str(protocol), str(store)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_store(tmp_path / "single", store)


def test_a_worker_with_two_threads_runs_one_task_on_the_subject_at_a_time(write_protocol, tmp_path):
    """A worker of several threads (dask-jobqueue's usual `processes=1, cores=8`) holds one subject:
    its recording and lesion tasks take it in turn (two tasks' hooks on one model at once would mix
    their activity), and the client's torch threads are left as they were."""
    import torch

    from tests.helpers import DIGITS_MLP

    text = DIGITS_MLP.replace("batch_size: 100", "batch_size: 32\n  batches_per_chunk: 1") + (
        "lesions:\n  - name: fc3-single\n    region: fc3\n    units: all\n    evaluate: digits\n    n_boot: 50\n")
    protocol = write_protocol(text)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # as the worker's tasks: a GEMM of a few rows sums in another order on 1 thread
        neurorecord.run(protocol, tmp_path / "single", quiet=True)
        torch.set_num_threads(1)  # the client's own setting, which the worker's tasks (in this process) change and restore
        with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
            neurorecord.run(protocol, tmp_path / "cluster", quiet=True)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert sum(str(t["key"]).startswith("record-batches-") for t in stream.data) > 2  # ranges that could overlap
    assert_same_store(tmp_path / "single", tmp_path / "cluster")
