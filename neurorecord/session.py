"""The run of a protocol: prepare (every check before any work), then the stages in order.

This is the only module that knows the order of the stages::

    creating -> recording -> analysing -> lesioning -> studying -> reporting -> complete

:func:`~neurorecord.experiment.prepare` (re-exported here) builds the subject and the stimulus
sets and checks everything a protocol asks for before any work. :func:`run` then creates the store (:mod:`neurorecord.store`),
streams the recording (:mod:`neurorecord.record`), runs the analyses (:mod:`neurorecord.analysis`),
the lesion sweeps (:mod:`neurorecord.lesion`) and the studies (:mod:`neurorecord.analysis.study`),
advancing the run state after each step, so a killed run resumes where it stopped. The subject is left as it was found: no hook, the same
train/eval flags and parameters, after every stage and after an error.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .cluster import current_client
from .errors import NeurorecordError, StoreError
from .experiment import RESERVED_NODES, Experiment, prepare
from .protocol import Protocol, load_protocol
from .record.stream import batch_rows, stream_batches

if TYPE_CHECKING:  # the store (zarr, xarray) is imported by the stages that use it: `validate` does without
    import xarray as xr

    from . import store

__all__ = ["Experiment", "RESERVED_NODES", "execute", "prepare", "run"]

_PACKAGES = ("neurorecord", "torch", "numpy", "xarray", "zarr", "dask", "scipy", "scikit-learn", "pydantic", "pyyaml")


def run(
    protocol: Protocol | str | os.PathLike[str],
    out: str | os.PathLike[str],
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    quiet: bool = False,
    report: bool = False,
) -> xr.DataTree:
    """Run a protocol: record every region into a zarr store at ``out``, then its analyses, lesions and studies.

    Parameters
    ----------
    protocol
        A :class:`~neurorecord.protocol.Protocol` or the path of a protocol file.
    out
        Folder of the store (created). A folder holding another run is refused.
    resume
        Continue an interrupted run of the same protocol in ``out`` (a no-op if it is complete).
    overwrite
        Replace a neurorecord store already in ``out``.
    device
        ``auto``, ``cpu`` or ``cuda[:N]``; overrides ``record.device``.
    quiet
        No progress bar.
    report
        Write the HTML report (:func:`neurorecord.report.write_report`) into ``<out>.report``
        at the end, as the last stage (``neurorecord run`` does unless ``--no-report``).

    Returns
    -------
    xarray.DataTree
        The finished recording, opened lazily (see :func:`~neurorecord.store.open_recording`).

    Raises
    ------
    NeurorecordError
        The protocol, the subject, the stimuli or ``out`` cannot be used (before anything is
        written or deleted).

    Examples
    --------
    >>> import neurorecord, tempfile
    >>> tree = neurorecord.run(neurorecord.default_protocol_path(), tempfile.mkdtemp() + "/run", quiet=True)
    >>> tree.attrs["regions"], tree["fc2"]["activity"].attrs["units"]
    (['fc1', 'fc2', 'fc3'], 'a.u.')
    >>> float(tree["behaviour"]["correct"].mean()) > 0.9
    True
    """
    from . import store

    return store.open_recording(execute(protocol, out, resume, overwrite, device, quiet, report))


def execute(
    protocol: Protocol | str | os.PathLike[str],
    out: str | os.PathLike[str],
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    quiet: bool = False,
    report: bool = False,
) -> Path:
    """:func:`run`, without opening the finished store: returns its folder (``neurorecord run``
    has no use for the opened tree; opening it checks every file of the store).

    Examples
    --------
    >>> import neurorecord, tempfile
    >>> folder = execute(neurorecord.default_protocol_path(), tempfile.mkdtemp() + "/run", quiet=True)
    >>> (folder / "fc1" / "activity").is_dir()
    True
    """
    from . import store

    if resume and overwrite:
        raise StoreError("resume, overwrite: expected at most one of them (resume continues the run in out, "
                         "overwrite records it again from the start), found both")
    if not isinstance(protocol, Protocol):
        protocol = load_protocol(protocol)
    out = Path(out)
    store.check_output(out, protocol.name, protocol.sha256, resume, overwrite)
    state = store.read_run_state(out)
    if resume and state is not None and state.complete:
        return out
    exp = prepare(protocol, device)  # everything is checked before anything is deleted or written
    if exp.device.type != "cpu" and current_client() is not None:
        raise NeurorecordError(
            f"device: a run with a dask.distributed client in scope records and lesions on the workers' CPUs; found device "
            f"{exp.device} (from {'--device' if device else 'record.device'}); run without a client to use it, or use 'cpu'")
    rec = protocol.record
    n_batches = -(-len(exp.plan) // rec.batch_size)
    out.mkdir(parents=True, exist_ok=True)
    with store.exclusive(out):
        # another process may have written here between the first check and the lock: check again
        store.check_output(out, protocol.name, protocol.sha256, resume, overwrite, holding_lock=True)
        state = store.read_run_state(out)
        if state is not None and state.complete and not overwrite:
            return out  # resume of a run another process finished meanwhile
        if state is None or state.stage == "creating" or overwrite:
            state = store.RunState(protocol.name, protocol.sha256, "creating", len(exp.plan), rec.batch_size, n_batches, 0,
                                   batches_per_chunk=exp.batches_per_chunk)
            group = store.create_store(out, _provenance(exp), state)
            _create_nodes(out, exp, state.batches_per_chunk)
            state.stage = "recording"
            store.write_run_state(group, state)
        else:
            _check_same_inputs(out, exp, state)
            group = store.open_writable(out)
        if state.stage == "recording":
            _record(out, group, exp, state, quiet)
            state.stage = "analysing"
            store.write_run_state(group, state)
        if state.stage == "analysing":
            _analyse(out, exp, quiet)
            state.stage = "lesioning"
            store.write_run_state(group, state)
        if state.stage == "lesioning":
            if protocol.lesions:
                from .lesion.distributed import lesion_sweeps_runner

                run_lesion_sweeps = lesion_sweeps_runner()  # a dask.distributed client in scope spreads the blocks
                run_lesion_sweeps(protocol, exp.subject.model, exp.plan.sets, exp.device, out,
                                  state.lesions_done, lambda: store.write_run_state(group, state), quiet)
            state.stage = "studying"
            store.write_run_state(group, state)
        if state.stage == "studying":
            _study(out, exp, quiet)  # deterministic: recomputed whole on resume
            state.stage = "reporting"
            store.write_run_state(group, state)
        if state.stage == "reporting":
            if report:
                from .report import default_report_dir, write_report

                index = write_report(out, default_report_dir(out), allow_incomplete=True)  # replaced whole on resume
                if not quiet:
                    print(f"report written: {index}", file=sys.stderr)
            state.stage = "complete"
            group.attrs.update({"complete": True, "finished": _now(), store.MANIFEST_ATTR: store.manifest(out),
                                store.RUN_ATTR: asdict(state)})
            store.consolidate(out)  # after the last write: xarray opens the store from the root zarr.json
    return out


def _inputs(provenance: dict[str, Any]) -> dict[str, Any]:
    """What a run's data depend on, from its provenance: protocol, weights, the subject's source
    (module file hash included; not where a zoo cache lives) and each stimulus set (file hashes)."""
    subject = provenance.get("subject", {})
    source = {k: v for k, v in subject.get("source", {}).items() if k != "cache"}
    inputs = {
        "protocol (sha256)": provenance.get("protocol_sha256"),
        "subject weights (sha256)": provenance.get("subject_weight_sha256"),
        "subject source": source,
        "presentations": provenance.get("presentations"),
    }
    for described in provenance.get("stimulus_sets", []):
        inputs[f"stimulus set {described.get('name')!r}"] = described
    return json.loads(json.dumps(inputs, sort_keys=True, default=str))


def _check_same_inputs(out: Path, exp: Experiment, state: store.RunState) -> None:
    """Refuse to resume a run whose inputs changed since it started (rows from both would mix)."""
    from . import store

    stored, now = _inputs(store.root_attrs(out)), _inputs(_provenance(exp))
    changed = [key for key in dict.fromkeys([*stored, *now]) if stored.get(key) != now.get(key)]
    if state.batch_size != exp.protocol.record.batch_size:
        changed.append("record.batch_size")
    if changed:
        raise StoreError(
            f"{out}: cannot resume: the run's inputs changed since it started ({'; '.join(changed)}), so the store would "
            "mix data from both; record again with --overwrite, or restore the inputs"
        )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _provenance(exp: Experiment) -> dict[str, Any]:
    from . import store

    p = exp.protocol
    return {
        "neurorecord_format": store.FORMAT,
        "protocol_name": p.name,
        "protocol_text": p.text,
        "protocol_sha256": p.sha256,
        "protocol_path": str(p.path) if p.path else "",
        "seed": p.seed,
        "subject": exp.subject.identity(),
        "subject_weight_sha256": exp.subject.weight_sha256,
        "device": str(exp.device),
        "torch_threads": torch.get_num_threads(),
        "packages": store.package_versions(_PACKAGES),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created": _now(),
        "complete": False,
        "regions": list(exp.layouts),
        "behaviour": exp.n_outputs is not None,
        "presentations": len(exp.plan),
        "stimulus_sets": [s.describe() for s in exp.plan.sets],
    }


def _create_nodes(out: Path, exp: Experiment, batches_per_chunk: int) -> None:
    """One node per region (coordinates, attributes, unwritten ``activity``), and ``behaviour``,
    stored ``batches_per_chunk`` batches per chunk."""
    from . import store

    rec = exp.protocol.record
    store.create_nodes(out, _node_specs(exp), chunk_rows=rec.batch_size * batches_per_chunk, compression=rec.compression,
                       compression_level=rec.compression_level)


def _node_specs(exp: Experiment) -> dict[str, Any]:
    """The store's region nodes and ``behaviour``, as :func:`neurorecord.store.create_nodes` takes them
    (the presentation coordinates are the same tuples in every node: encoded once)."""
    from .stimuli import coordinate_attrs

    n = len(exp.plan)
    plan_coords = exp.plan.coords()
    units = coordinate_attrs(exp.plan.sets)  # long_name, units of each stimulus parameter (axis labels of figures)
    pres = {k: ("presentation", v, units.get(k, {})) for k, v in {**plan_coords, **exp.variability.coords()}.items()}
    times = {k: ("time_bin", v) for k, v in exp.plan.time_coords().items()}
    if times:
        times["time_bin_start"] += ({"units": "ms", "long_name": "bin start after stimulus onset"},)
        times["time_bin_end"] += ({"units": "ms", "long_name": "bin end after stimulus onset"},)
    nodes: dict[str, Any] = {}
    for region, layout in exp.layouts.items():
        dims: tuple[str, ...] = ("presentation", "neuroid") + (("time_bin",) if times else ())
        shape = (n, layout.n_neuroid) + ((exp.time_steps,) if times else ())
        attrs = {
            "units": "a.u.",
            "long_name": f"activity of {region}",
            "description": "output of the region's module for each presentation"
            + ("" if layout.reduce == "none" or len(layout.output_shape) == 1 else f", {layout.reduce} over space"),
        }
        nodes[region] = (
            {"activity": (dims, shape, np.float32, attrs)},
            {**pres, **{k: ("neuroid", v) for k, v in layout.coords.items()}, **times},
            {"region": region, "module_type": layout.module_type, "output_shape": list(layout.output_shape),
             "reduce": layout.reduce, "output_element": -1 if layout.output_element is None else layout.output_element},
        )
    if exp.n_outputs is not None:
        from .store import BEHAVIOUR_NODE

        nodes[BEHAVIOUR_NODE] = (
            {
                "output": (("presentation", "output_unit"), (n, exp.n_outputs), np.float32,
                           {"units": "a.u.", "long_name": "subject's output (logits)"}),
                "predicted": (("presentation",), (n,), np.int64, {"long_name": "predicted class (argmax of the output)"}),
                "correct": (("presentation",), (n,), np.float32,
                            {"long_name": "predicted class equals the label (1 or 0; NaN where the stimulus has no label)"}),
            },
            {**pres, "output_unit": ("output_unit", np.arange(exp.n_outputs, dtype=np.int64))},
            {"description": "the subject's own output for each presentation, recorded with its activity",
             "labelled": "label" in plan_coords},
        )
    return nodes


def _record(out: Path, group: Any, exp: Experiment, state: store.RunState, quiet: bool) -> None:
    """Record the batches not yet done, advancing the run state after each."""
    from . import store

    rec = exp.protocol.record
    steps = (exp.time_steps,) if exp.time_steps else ()
    shapes = {r: (lay.n_neuroid, *steps) for r, lay in exp.layouts.items()}
    names = [f"{r}/activity" for r in exp.layouts]
    labels = None
    if exp.n_outputs is not None:
        names += [f"{store.BEHAVIOUR_NODE}/{v}" for v in ("output", "predicted", "correct")]
        labels = _numeric_labels(exp.plan.coords().get("label"), len(exp.plan))
    client = current_client()
    if client is not None:  # the batches go to the workers, each writing its own chunks
        from .record.distributed import record_distributed

        def advance(done: int) -> None:
            state.batches_done = done
            store.write_run_state(group, state)

        record_distributed(client, exp.subject.model, exp.plan, shapes, rec.reduce, exp.variability, exp.protocol.seed,
                           rec.batch_size, state.batches_done, exp.n_outputs, labels, str(out), names,
                           advance, quiet, f"recording {exp.protocol.name}", dtype=rec.dtype,
                           batches_per_chunk=state.batches_per_chunk)
        return
    writer = store.row_writer(group, names)

    def write(batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
        writer.write(start, stop, batch_rows(names, labels, start, stop, buffers))
        state.batches_done = batch + 1
        store.write_run_state(group, state)

    stream_batches(exp.subject.model, exp.plan, shapes, rec.reduce, exp.variability, exp.device, exp.protocol.seed,
                   rec.batch_size, state.batches_done, write, behaviour=exp.n_outputs, quiet=quiet,
                   desc=f"recording {exp.protocol.name}", dtype=rec.dtype, batches_per_chunk=state.batches_per_chunk)


def _numeric_labels(label: np.ndarray | None, n: int) -> np.ndarray:
    """Class labels (numeric ``label`` coordinate) as float: NaN where a presentation has none.
    Text labels are not class indices, so their presentations are not scored."""
    if label is None or np.asarray(label).dtype.kind not in "biuf":
        return np.full(n, np.nan)
    return np.asarray(label, dtype=np.float64)


def _analyse(out: Path, exp: Experiment, quiet: bool) -> None:
    """Run the protocol's ``analyses:`` on the recorded store (re-run whole after an interruption)."""
    from . import store

    if not exp.protocol.analyses:
        return
    from .analysis.runner import run_analyses

    # without dask: the runner reads a small region whole, chunks a large one (no dask import for a small run)
    tree = store.open_recording(out, allow_incomplete=True, dask=False)
    for path in run_analyses(exp.protocol, tree, out):
        if not quiet:
            print(f"analysis written: {path}", file=sys.stderr)


def _study(out: Path, exp: Experiment, quiet: bool) -> None:
    """Run the protocol's ``study:`` entries on the recording and the lesion results (re-run whole after an interruption)."""
    from . import store

    if not exp.protocol.study:
        return
    from .analysis.study import run_studies

    from .lesion.populations import run_population_lesions

    tree = store.open_recording(out, allow_incomplete=True)
    written = run_studies(exp.protocol, tree, out)
    lesioned = run_population_lesions(exp.protocol, exp.subject.model, exp.plan.sets, exp.device, out, quiet)
    if not quiet:
        for entry in exp.protocol.study:
            n = sum(path.startswith(f"{store.ANALYSES_NODE}/{entry.region}/{entry.name}/") for path in written)
            print(f"study written: {store.ANALYSES_NODE}/{entry.region}/{entry.name} ({n} nodes)", file=sys.stderr)
        for node in lesioned:
            print(f"population lesions written: {node}", file=sys.stderr)
