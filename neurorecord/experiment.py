"""Prepare a protocol: build the subject and the stimuli, and check everything the protocol asks
for before any work (``neurorecord validate``; the first step of :func:`neurorecord.session.run`).

:func:`prepare` builds the subject and the stimulus sets and checks everything a protocol asks
for against them (regions, analyses' coordinates and indices, lesion targets, behaviour) with
one probe pass, so a protocol that ``neurorecord validate`` accepts does not fail later for a
reason knowable before the run. It imports torch and the protocol's own needs, not the store's
or the analyses' numerical stack (``tests/test_dependencies.py``). The subject is left with no
hook and its own train/eval flags.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import NeurorecordError, RegionError, SubjectError
from .protocol import Protocol, load_protocol
from .protocol.schema import EACH
from .record.plan import PresentationPlan
from .record.regions import RegionLayout, RegionTap, check_regions, reduce_output, reduce_time_output, region_layout
from .record.trials import TrialVariability
from .stimuli import build_stimulus_sets
from .subjects import Subject, build_subject
from .subjects.base import eval_mode

__all__ = ["Experiment", "RESERVED_NODES", "prepare"]

#: Store nodes a region may not be named after.
RESERVED_NODES = ("behaviour", "analyses", "lesions", "progress")  # store.BEHAVIOUR_NODE, ... (tests/test_dependencies.py)

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

    @property
    def batches_per_chunk(self) -> int:
        """Batches per stored chunk: ``record.batches_per_chunk``, ``auto`` resolved from the widest
        array's rows (:func:`~neurorecord.record.stream.batches_per_chunk`)."""
        from .record.stream import batches_per_chunk

        rec = self.protocol.record
        rows = [4 * lay.n_neuroid * (self.time_steps or 1) for lay in self.layouts.values()] + [4 * (self.n_outputs or 0), 8]
        return batches_per_chunk(rec.batches_per_chunk, rec.batch_size, max(rows), -(-len(self.plan) // rec.batch_size))

    def summary(self) -> str:
        """Human-readable plan: presentations, trials and time, regions with unit counts and activity size."""
        rec = self.protocol.record
        lines = [
            f"protocol {self.protocol.name} (sha256 {self.protocol.sha256[:12]})",
            f"subject  {self.subject.name}  weights {self.subject.weight_sha256[:12]}",
            f"stimuli  {', '.join(f'{s.name} ({len(s)})' for s in self.plan.sets)}; image {self.plan.image_shape}",
            f"presentations {len(self.plan)} = {self.plan.n_stimuli} stimuli x {self.plan.repetitions} repetitions; "
            f"batch {rec.batch_size}, {self.batches_per_chunk} per stored chunk; device {self.device}",
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
