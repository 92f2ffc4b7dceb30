"""The run of a protocol: prepare (every check before any work), then the stages in order.

This is the only module that knows the order of the stages::

    creating -> recording -> analysing -> lesioning -> studying -> reporting -> complete

:func:`prepare` builds the subject and the stimulus sets and checks everything a protocol asks
for against them (regions, analyses' coordinates and indices, lesion targets, behaviour) with
one probe pass, so a protocol that ``neurorecord validate`` accepts does not fail later for a
reason knowable before the run. :func:`run` then creates the store (:mod:`neurorecord.store`),
streams the recording (:mod:`neurorecord.record`), runs the analyses (:mod:`neurorecord.analysis`),
the lesion sweeps (:mod:`neurorecord.lesion`) and the studies (:mod:`neurorecord.analysis.study`),
advancing the run state after each step, so a killed run resumes where it stopped. The subject is left as it was found: no hook, the same
train/eval flags and parameters, after every stage and after an error.

(Over 600 lines, one job: the run of a protocol. Its stages and the checks of ``prepare`` stay
together because each check exists for a stage that follows; the checks are about half of it and
are the next thing to move out, into a checks module of their own, if it grows.)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import NeurorecordError, RegionError, StoreError, SubjectError
from .protocol import Protocol, load_protocol
from .protocol.schema import EACH
from .record.plan import PresentationPlan
from .record.regions import RegionLayout, RegionTap, check_regions, reduce_output, reduce_time_output, region_layout
from .record.stream import store_rows, stream_batches
from .cluster import current_client
from .record.trials import TrialVariability
from .stimuli import build_stimulus_sets
from .subjects import Subject, build_subject
from .subjects.base import eval_mode

if TYPE_CHECKING:  # the store (zarr, xarray) is imported by the stages that use it: `validate` does without
    import xarray as xr

    from . import store

__all__ = ["Experiment", "execute", "prepare", "run"]

#: Store nodes a region may not be named after.
RESERVED_NODES = ("behaviour", "analyses", "lesions", "progress")  # store.BEHAVIOUR_NODE, ... (tests/test_dependencies.py)
_PACKAGES = ("neurorecord", "torch", "numpy", "xarray", "zarr", "dask", "scipy", "scikit-learn", "pydantic", "pyyaml")


@dataclass
class Experiment:
    """A protocol made concrete: subject, presentation plan, device, region layouts, behaviour.

    ``n_outputs`` is the number of the subject's output units when its behaviour is recorded
    (``record.behaviour``), else None.
    """

    protocol: Protocol
    subject: Subject
    plan: PresentationPlan
    device: torch.device
    layouts: dict[str, RegionLayout]
    variability: TrialVariability
    n_outputs: int | None = None

    @property
    def time_steps(self) -> int | None:
        """Time steps per presentation (None: not time-resolved)."""
        return None if self.plan.time is None else self.plan.time.steps

    def summary(self) -> str:
        """Human-readable plan: presentations, trials and time, regions with unit counts and activity size."""
        rec = self.protocol.record
        lines = [
            f"protocol {self.protocol.name} (sha256 {self.protocol.sha256[:12]})",
            f"subject  {self.subject.name}  weights {self.subject.weight_sha256[:12]}",
            f"stimuli  {', '.join(f'{s.name} ({len(s)})' for s in self.plan.sets)}; image {self.plan.image_shape}",
            f"presentations {len(self.plan)} = {self.plan.n_stimuli} stimuli x {self.plan.repetitions} repetitions; "
            f"batch {rec.batch_size}; device {self.device}",
        ]
        if rec.time is not None:
            t = rec.time
            lines.append(f"time     {t.steps} steps of {t.step_ms:g} ms; stimulus on steps {t.onset}..{t.offset - 1}, blank {t.blank:g} otherwise")
        if self.variability.active:
            v = rec.variability
            parts = [f"input noise s.d. {v.input_noise:g}"] if v.input_noise else []
            parts += [f"jitter up to {v.jitter} px"] if v.jitter else []
            parts += [f"dropout p={v.dropout.p:g} in {v.dropout.region}"] if v.dropout else []
            lines.append(f"trials   {', '.join(parts)}")
        for layout in self.layouts.values():
            nbytes = 4 * len(self.plan) * layout.n_neuroid * (self.time_steps or 1)
            how = f" (reduce: {layout.reduce})" if len(layout.output_shape) > 1 else ""
            lines.append(
                f"region   {layout.region:<16} {layout.module_type:<12} output {layout.output_shape} -> "
                f"{layout.n_neuroid} neuroids{how}, {nbytes / 1e6:.1f} MB"
            )
        for entry in self.protocol.study:
            methods = ", ".join(f"{m.method}/{m.criterion}" for m in entry.methods)
            lines.append(f"study    {entry.name}: functional populations of {entry.region} by {entry.by} and by lesions "
                         f"{entry.lesions} ({methods}; n_boot {entry.n_boot}, n_perm {entry.n_perm})")
            if entry.population_lesions is not None:
                pl = entry.population_lesions
                lines.append(f"         then lesions {', '.join(pl.sets)} (top {pl.top_fraction:g} of units) whole, each against "
                             f"{pl.controls} random lesions of its size -> lesions/{entry.name}")
        if self.n_outputs is not None:
            lines.append(f"behaviour {self.n_outputs} output units per presentation, predicted class, correct where labelled")
        return "\n".join(lines)


def _resolve_device(name: str, field: str) -> torch.device:
    """``auto`` -> cuda if available, else cpu; ``field`` names where ``name`` came from, for errors."""
    loc = ("record", "device") if field == "record.device" else None
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise NeurorecordError(f"{field}: expected auto, cpu, cuda or cuda:N, found {name!r}", loc=loc)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NeurorecordError(f"{field}: {name!r} asked for, but torch sees no CUDA device; use 'cpu' or 'auto'", loc=loc)
    return device


def prepare(protocol: Protocol | str | os.PathLike[str], device: str | None = None) -> Experiment:
    """Check everything that can be checked before recording, and build the experiment.

    Builds the subject and the stimulus sets, checks the regions exist, the analyses' and
    lesions' entries against the stimuli and the subject, and runs one probe batch of two
    stimuli to learn each region's output shape and the subject's output. The subject is left
    with no hook and its own train/eval flags.

    Parameters
    ----------
    protocol
        A :class:`~neurorecord.protocol.Protocol` or the path of a protocol file.
    device
        ``auto``, ``cpu`` or ``cuda[:N]``; overrides ``record.device``.

    Returns
    -------
    Experiment

    Raises
    ------
    NeurorecordError
        Anything the protocol asks for that the subject or the stimuli cannot give, prefixed
        with ``file:line:col`` of the protocol entry.

    Examples
    --------
    >>> import neurorecord
    >>> exp = prepare(neurorecord.default_protocol_path())
    >>> len(exp.plan), {r: l.n_neuroid for r, l in exp.layouts.items()}, exp.n_outputs
    (454, {'fc1': 100, 'fc2': 100, 'fc3': 100}, 10)
    """
    if not isinstance(protocol, Protocol):
        protocol = load_protocol(protocol)
    try:
        return _prepare(protocol, device)
    except NeurorecordError as exc:
        if exc.loc is None or str(exc).startswith(str(protocol.path)):
            raise
        raise type(exc)(f"{protocol.where(*exc.loc)}: {exc}", loc=exc.loc) from None


def _prepare(protocol: Protocol, device: str | None) -> Experiment:
    rec = protocol.record
    dev = _resolve_device(device, "--device") if device else _resolve_device(rec.device, "record.device")
    try:
        subject = build_subject(protocol.subject, protocol.folder)
    except SubjectError as exc:
        spec = protocol.subject
        field = "state_dict" if "subject.state_dict" in str(exc) else next(
            k for k in ("zoo", "entry_point", "torchscript") if getattr(spec, k) is not None
        )
        exc.loc = ("subject", field)
        raise
    subject.model.to(dev)
    plan = PresentationPlan(build_stimulus_sets(protocol), rec.repetitions, rec.time)
    variability = TrialVariability(rec.variability, protocol.seed, len(plan))
    variability.check_region(subject.model)
    if rec.time is not None and protocol.lesions:
        raise NeurorecordError(
            "lesions: lesion sweeps score one prediction per stimulus and are not available for time-resolved "
            "recordings (record.time); record the lesioned network's activity instead, or drop record.time",
            loc=("lesions",),
        )
    _check_analyses(protocol, plan, variability)
    _check_studies(protocol, plan, variability)
    check_regions(subject.model, rec.regions)
    for i, region in enumerate(rec.regions):
        if region in RESERVED_NODES:
            raise RegionError(
                f"record.regions: a region cannot be named {region!r}: the store keeps its {region!r} node under that name "
                f"(reserved: {', '.join(RESERVED_NODES)}); record a module inside it, or rename the module",
                loc=("record", "regions", i),
            )
    probe = torch.from_numpy(plan.images(0, min(2, len(plan)))).to(dev)
    with eval_mode(subject.model), RegionTap(subject.model, rec.regions) as tap, torch.inference_mode():
        try:
            if rec.dtype == "bfloat16":  # what the recording will run: a layer autocast cannot take fails here
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    tap.with_output(probe)
            outputs, result = tap.with_output(probe)
        except (RuntimeError, TypeError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise SubjectError(
                f"subject {subject.name!r} failed on the stimuli (images of shape {tuple(probe.shape[1:])}): "
                f"{type(exc).__name__}: {detail}"
                + ("" if rec.time is None else
                   f"; with record.time the subject receives (batch, steps={rec.time.steps}, channels, height, width): "
                   "is it a recurrent or sequence model (such as zoo digits-gru)?"),
                loc=("subject",),
            ) from None
        output_element = dict(tap.output_element)
    for i, r in enumerate(rec.regions):
        if rec.time is None and outputs[r].ndim == 3 and _sequence_module(subject.model.get_submodule(r)):
            raise RegionError(
                f"record.regions: region {r!r} outputs {tuple(outputs[r].shape)} from a module that works along the last dim "
                f"({type(subject.model.get_submodule(r)).__name__}), so its second dim is steps of a sequence, not channels; "
                "recorded as a conv output it would collapse them: record a time-resolved subject with record.time",
                loc=("record", "regions", i),
            )
        try:
            if rec.time is None:
                reduce_output(outputs[r], rec.reduce)
            else:
                reduce_time_output(outputs[r], rec.reduce, rec.time.steps)
        except RegionError as exc:
            exc.loc = ("record", "regions", i)
            raise
    n_outputs = _check_behaviour(result, len(probe)) if rec.behaviour else None
    for i, lesion in enumerate(protocol.lesions):
        _check_lesion(i, lesion, subject, plan, probe, result)
        _check_each_population(protocol, i, lesion, {**plan.coords(), **variability.coords()})
    # a time-resolved region's units are laid out like one time step's output
    layouts = {
        r: region_layout(r, subject.model.get_submodule(r), outputs[r] if rec.time is None else outputs[r][:, 0], rec.reduce,
                         output_element.get(r))
        for r in rec.regions
    }
    return Experiment(protocol, subject, plan, dev, layouts, variability, n_outputs)


#: Modules whose 3-D output is (batch, steps, features): recurrent, attention, and layers applied along the last dim.
_SEQUENCE_MODULES = (torch.nn.RNNBase, torch.nn.Linear, torch.nn.MultiheadAttention, torch.nn.TransformerEncoderLayer,
                     torch.nn.TransformerDecoderLayer, torch.nn.LayerNorm, torch.nn.Embedding)
#: Modules whose 3-D output is (batch, channels, width).
_CONV1D_MODULES = (torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.MaxPool1d, torch.nn.AvgPool1d, torch.nn.BatchNorm1d,
                   torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveMaxPool1d)


def _sequence_module(module: torch.nn.Module) -> bool:
    """Whether a module's 3-D output is a sequence (batch, steps, features) rather than a 1-D conv map."""
    kinds = list(module.modules())
    return any(isinstance(m, _SEQUENCE_MODULES) for m in kinds) and not any(isinstance(m, _CONV1D_MODULES) for m in kinds)


def _check_behaviour(result: Any, n: int) -> int:
    """The number of output units, if the subject's output can be recorded as behaviour."""
    if not isinstance(result, torch.Tensor) or result.ndim != 2 or result.shape[0] != n:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        raise NeurorecordError(
            f"record.behaviour: the subject's output is recorded as behaviour, which needs a tensor of shape (batch, classes); "
            f"found {found}; set record.behaviour: false to record without it",
            loc=("record",),
        )
    return int(result.shape[1])


def _check_analyses(protocol: Protocol, plan: PresentationPlan, variability: TrialVariability) -> None:
    """Every ``analyses:`` entry against the presentation coordinates the recording will have
    (:func:`~neurorecord.analysis.checks.check_analysis_plan`): names, levels, angles, partners, conditions."""
    if protocol.analyses:
        from .analysis.checks import check_analysis_plan

        check_analysis_plan(protocol.analyses, {**plan.coords(), **variability.coords()}, folder=protocol.folder)


def _check_studies(protocol: Protocol, plan: PresentationPlan, variability: TrialVariability) -> None:
    """Every ``study:`` entry against the presentation coordinates (:func:`~neurorecord.analysis.checks.check_study_plan`)."""
    if protocol.study:
        from .analysis.checks import check_study_plan

        check_study_plan(protocol.study, protocol.lesions, {**plan.coords(), **variability.coords()})


def _check_each_population(protocol: Protocol, i: int, lesion: Any, coords: dict[str, np.ndarray]) -> None:
    """A lesion of ``<name>-<level>`` from a ``condition: each`` population entry names a level of its ``by``."""
    named = getattr(lesion.units, "population", None)
    entries = [a for a in protocol.analyses if a.kind == "population" and a.condition == EACH and named is not None
               and named.startswith(f"{a.name}-") and lesion.region in protocol.analysis_regions(a)]
    if not entries or any(a.name == named for a in protocol.analyses):
        return
    entry = entries[0]
    levels = [str(v.item() if hasattr(v, "item") else v) for v in np.unique(coords[entry.by])] if entry.by in coords else []
    if named[len(entry.name) + 1:] not in levels:
        raise NeurorecordError(
            f"lesions[{i}].units: population {named!r} is not one of those {entry.name!r} defines (condition: each over "
            f"{entry.by!r}); they are: {', '.join(f'{entry.name}-{v}' for v in levels)}", loc=("lesions", i, "units"))


def _check_lesion(i: int, lesion: Any, subject: Subject, plan: PresentationPlan, probe: torch.Tensor, result: Any) -> None:
    """Check a ``lesions:`` entry against the subject, its output and the stimuli before any work starts."""
    if isinstance(subject.model, torch.jit.ScriptModule):
        raise NeurorecordError(
            f"lesions[{i}]: lesion sweeps silence units with hooks, and a TorchScript subject takes none; give the model "
            "as an entry point (module:callable, with state_dict:) to lesion it",
            loc=("lesions", i),
        )
    if not isinstance(result, torch.Tensor) or result.ndim != 2:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        raise NeurorecordError(
            f"lesions[{i}]: a lesion sweep scores the subject's predicted class, which needs an output of shape "
            f"(batch, classes); found {found}",
            loc=("lesions", i),
        )
    try:
        check_regions(subject.model, [lesion.region])
    except RegionError as exc:
        raise RegionError(str(exc).replace("record.regions:", f"lesions[{i}].region:"), loc=("lesions", i, "region")) from None
    with eval_mode(subject.model), RegionTap(subject.model, [lesion.region]) as tap, torch.inference_mode():
        n_units = int(tap(probe)[lesion.region].shape[1])
    listed = lesion.units if isinstance(lesion.units, list) else getattr(lesion.units, "each", [])
    bad = [u for u in listed if not 0 <= u < n_units]
    if bad:
        raise NeurorecordError(
            f"lesions[{i}].units: unit {bad[0]} does not exist in {lesion.region}, whose units are 0..{n_units - 1}",
            loc=("lesions", i, "units"),
        )
    if lesion.downstream:
        from .lesion.experiment import check_lesion_downstream

        check_lesion_downstream(lesion, i, subject.model, probe)
    evaluated = next(s for s in plan.sets if s.name == lesion.evaluate)
    params = evaluated.parameters()
    if "label" not in params:
        raise NeurorecordError(
            f"lesions[{i}].evaluate: stimulus set {lesion.evaluate!r} has no 'label' coordinate to score predictions against",
            loc=("lesions", i, "evaluate"),
        )
    labels = np.asarray(params["label"])
    n_classes = int(result.shape[1])
    numeric = labels.dtype.kind in "biuf" and np.isfinite(labels.astype(float)).all() and (labels == np.round(labels)).all()
    if not numeric or labels.min() < 0 or labels.max() >= n_classes:
        bad = labels[0] if not numeric else labels.min() if labels.min() < 0 else labels.max()
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise NeurorecordError(
            f"lesions[{i}].evaluate: the labels of stimulus set {lesion.evaluate!r} must be class indices 0..{n_classes - 1} "
            f"of the subject's {n_classes} outputs; found {bad!r}",
            loc=("lesions", i, "evaluate"),
        )


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
            state = store.RunState(protocol.name, protocol.sha256, "creating", len(exp.plan), rec.batch_size, n_batches, 0)
            group = store.create_store(out, _provenance(exp), state)
            _create_nodes(out, exp)
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
        raise store.StoreError(
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


def _create_nodes(out: Path, exp: Experiment) -> None:
    """One node per region (coordinates, attributes, unwritten ``activity``), and ``behaviour``."""
    from . import store

    rec = exp.protocol.record
    n = len(exp.plan)
    plan_coords = exp.plan.coords()
    from .stimuli import coordinate_attrs

    units = coordinate_attrs(exp.plan.sets)  # long_name, units of each stimulus parameter (axis labels of figures)
    pres = {k: ("presentation", v, units.get(k, {})) for k, v in {**plan_coords, **exp.variability.coords()}.items()}
    times = {k: ("time_bin", v) for k, v in exp.plan.time_coords().items()}
    if times:
        times["time_bin_start"] += ({"units": "ms", "long_name": "bin start after stimulus onset"},)
        times["time_bin_end"] += ({"units": "ms", "long_name": "bin end after stimulus onset"},)
    for region, layout in exp.layouts.items():
        dims: tuple[str, ...] = ("presentation", "neuroid") + (("time_bin",) if times else ())
        shape = (n, layout.n_neuroid) + ((exp.time_steps,) if times else ())
        attrs = {
            "units": "a.u.",
            "long_name": f"activity of {region}",
            "description": "output of the region's module for each presentation"
            + ("" if layout.reduce == "none" or len(layout.output_shape) == 1 else f", {layout.reduce} over space"),
        }
        store.create_node(
            out, region, {"activity": (dims, shape, np.float32, attrs)},
            coords={**pres, **{k: ("neuroid", v) for k, v in layout.coords.items()}, **times},
            attrs={"region": region, "module_type": layout.module_type, "output_shape": list(layout.output_shape),
                   "reduce": layout.reduce, "output_element": -1 if layout.output_element is None else layout.output_element},
            chunk_rows=rec.batch_size, compression=rec.compression, compression_level=rec.compression_level,
        )
    if exp.n_outputs is not None:
        labelled = "label" in plan_coords
        store.create_node(
            out, store.BEHAVIOUR_NODE,
            {
                "output": (("presentation", "output_unit"), (n, exp.n_outputs), np.float32,
                           {"units": "a.u.", "long_name": "subject's output (logits)"}),
                "predicted": (("presentation",), (n,), np.int64, {"long_name": "predicted class (argmax of the output)"}),
                "correct": (("presentation",), (n,), np.float32,
                            {"long_name": "predicted class equals the label (1 or 0; NaN where the stimulus has no label)"}),
            },
            coords={**pres, "output_unit": ("output_unit", np.arange(exp.n_outputs, dtype=np.int64))},
            attrs={"description": "the subject's own output for each presentation, recorded with its activity",
                   "labelled": labelled},
            chunk_rows=rec.batch_size, compression=rec.compression, compression_level=rec.compression_level,
        )


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
                           advance, quiet, f"recording {exp.protocol.name}", dtype=rec.dtype)
        return
    arrays = store.row_writer(group, names)

    def write(batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
        store_rows(arrays, labels, start, stop, buffers)
        state.batches_done = batch + 1
        store.write_run_state(group, state)

    stream_batches(exp.subject.model, exp.plan, shapes, rec.reduce, exp.variability, exp.device, exp.protocol.seed,
                   rec.batch_size, state.batches_done, write, behaviour=exp.n_outputs, quiet=quiet,
                   desc=f"recording {exp.protocol.name}", dtype=rec.dtype)


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

    tree = store.open_recording(out, allow_incomplete=True)
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
