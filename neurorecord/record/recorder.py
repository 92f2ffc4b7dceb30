"""Running a protocol: build the subject and stimuli, record every region to a zarr store.

The store is created up front with its full shape and coordinates; batches are then
recorded in order, each written by a background thread (so writing overlaps the next
forward pass) into whole zarr chunks, and the run state is advanced after every batch. A run
killed at any moment is resumed from the first batch not marked done; re-recording a batch
rewrites exactly the same chunks with exactly the same values.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import platform
import shutil
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import torch
import xarray as xr
import zarr
from tqdm.auto import tqdm
from zarr.codecs import BloscCodec

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from ..errors import NeurorecordError, RegionError, StoreError, SubjectError, did_you_mean
from ..protocol import Protocol, load_protocol
from ..stimuli import build_stimulus_sets
from ..subjects import Subject, build_subject
from .plan import PresentationPlan
from .regions import RegionLayout, RegionTap, reduce_output, reduce_time_output, region_layout
from .store import RUN_ATTR, RunState, open_recording, package_versions, read_run_state, write_run_state
from .trials import TrialVariability

__all__ = ["Experiment", "prepare", "run", "ACTIVITY_CODEC"]

#: Codec for ``activity`` chunks: LZ4 through Blosc with bit shuffle at level 1, chosen for
#: write speed (about 2-3 GB/s on one core here, against 0.6 GB/s for zstd); rectified activity is
#: full of zeros and still compresses.
ACTIVITY_CODEC = BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle")

_PACKAGES = ("neurorecord", "torch", "numpy", "xarray", "zarr", "dask", "scipy", "scikit-learn", "pydantic", "pyyaml")


@dataclass
class Experiment:
    """A protocol made concrete: subject, presentation plan, device and region layouts."""

    protocol: Protocol
    subject: Subject
    plan: PresentationPlan
    device: torch.device
    tap: RegionTap
    layouts: dict[str, RegionLayout]
    variability: TrialVariability

    @property
    def time_steps(self) -> int | None:
        """Time steps per presentation (None: not time-resolved)."""
        return None if self.plan.time is None else self.plan.time.steps

    def reduce(self, output: torch.Tensor) -> torch.Tensor:
        """One region's batch output as stored: (batch, neuroid), or (batch, neuroid, time_bin)."""
        reduce = self.protocol.record.reduce
        return reduce_output(output, reduce) if self.time_steps is None else reduce_time_output(output, reduce, self.time_steps)

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

    Builds the subject and the stimulus sets, checks the regions exist, and runs one probe batch
    of two stimuli to learn each region's output shape.

    >>> import neurorecord
    >>> exp = prepare(neurorecord.default_protocol_path())
    >>> len(exp.plan), {r: l.n_neuroid for r, l in exp.layouts.items()}
    (454, {'fc1': 100, 'fc2': 100, 'fc3': 100})
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
    if protocol.analyses:
        names = plan.coord_names()
        for i, analysis in enumerate(protocol.analyses):
            for j, by in enumerate([analysis.by] if isinstance(analysis.by, str) else analysis.by):
                if by not in names:
                    raise NeurorecordError(
                        f"analyses[{i}].by: {by!r} is not a presentation coordinate of these stimuli"
                        f"{did_you_mean(by, names)}; coordinates: {', '.join(sorted(names))}",
                        loc=("analyses", i, "by") if isinstance(analysis.by, str) else ("analyses", i, "by", j),
                    )
    tap = RegionTap(subject.model, rec.regions)
    modules = dict(subject.model.named_modules())
    probe = torch.from_numpy(plan.images(0, min(2, len(plan)))).to(dev)
    for i, lesion in enumerate(protocol.lesions):
        _check_lesion(i, lesion, subject, plan, probe)
    with torch.inference_mode():
        try:
            outputs = tap(probe)
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
    for i, r in enumerate(rec.regions):
        try:
            if rec.time is None:
                reduce_output(outputs[r], rec.reduce)
            else:
                reduce_time_output(outputs[r], rec.reduce, rec.time.steps)
        except RegionError as exc:
            exc.loc = ("record", "regions", i)
            raise
    # a time-resolved region's units are laid out like one time step's output
    layouts = {
        r: region_layout(r, modules[r], outputs[r] if rec.time is None else outputs[r][:, 0], rec.reduce, tap.output_element.get(r))
        for r in rec.regions
    }
    return Experiment(protocol, subject, plan, dev, tap, layouts, variability)


def _check_lesion(i: int, lesion: Any, subject: Subject, plan: PresentationPlan, probe: torch.Tensor) -> None:
    """Check a ``lesions:`` entry against the subject and stimuli before any work starts."""
    try:
        tap = RegionTap(subject.model, [lesion.region])
    except RegionError as exc:
        raise RegionError(str(exc).replace("record.regions:", f"lesions[{i}].region:"), loc=("lesions", i, "region")) from None
    try:
        with torch.inference_mode():
            n_units = int(tap(probe)[lesion.region].shape[1])
    finally:
        tap.close()
    listed = lesion.units if isinstance(lesion.units, list) else getattr(lesion.units, "each", [])
    bad = [u for u in listed if not 0 <= u < n_units]
    if bad:
        raise NeurorecordError(
            f"lesions[{i}].units: unit {bad[0]} does not exist in {lesion.region}, whose units are 0..{n_units - 1}",
            loc=("lesions", i, "units"),
        )
    if lesion.downstream:
        from ..lesion.experiment import check_lesion_downstream

        check_lesion_downstream(lesion, i, subject.model, probe)
    evaluated = next(s for s in plan.sets if s.name == lesion.evaluate)
    if "label" not in evaluated.parameters():
        raise NeurorecordError(
            f"lesions[{i}].evaluate: stimulus set {lesion.evaluate!r} has no 'label' coordinate to score predictions against",
            loc=("lesions", i, "evaluate"),
        )


def run(
    protocol: Protocol | str | os.PathLike[str],
    out: str | os.PathLike[str],
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    quiet: bool = False,
) -> xr.DataTree:
    """Run a protocol: record every region into a zarr store at ``out``.

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

    Returns
    -------
    xarray.DataTree
        The finished recording, opened lazily (see :func:`open_recording`).

    Examples
    --------
    >>> import neurorecord, tempfile
    >>> tree = neurorecord.run(neurorecord.default_protocol_path(), tempfile.mkdtemp() + "/run", quiet=True)
    >>> tree.attrs["regions"], tree["fc2"]["activity"].attrs["units"]
    (['fc1', 'fc2', 'fc3'], 'a.u.')
    """
    if not isinstance(protocol, Protocol):
        protocol = load_protocol(protocol)
    out = Path(out)
    _check_output(out, protocol, resume, overwrite)
    state = read_run_state(out)
    if resume and state is not None and state.complete:
        return open_recording(out)
    exp = prepare(protocol, device)  # everything is checked before anything is deleted or written
    rec = protocol.record
    n_batches = -(-len(exp.plan) // rec.batch_size)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        state = read_run_state(out)  # another process may have moved it on meanwhile
        if state is None or state.stage == "creating" or overwrite:
            _clear(out)  # empty, ours to replace (--overwrite), or a skeleton that was never finished
            state = RunState(protocol.name, protocol.sha256, "creating", len(exp.plan), rec.batch_size, n_batches, 0)
            group = zarr.open_group(out, mode="w", zarr_format=3, attributes={**_provenance(exp), RUN_ATTR: asdict(state)})
            _create_regions(out, exp)
            state.stage = "recording"
            write_run_state(group, state)
        elif state.presentations != len(exp.plan) or state.batch_size != rec.batch_size:
            raise StoreError(
                f"{out}: cannot resume: the store was planned for {state.presentations} presentations in batches of "
                f"{state.batch_size}, the protocol now gives {len(exp.plan)} in batches of {rec.batch_size} "
                "(did a stimulus file change?); use --overwrite"
            )
        else:
            group = zarr.open_group(out, mode="r+")
        if state.stage == "recording":
            _record_batches(group, exp, state, quiet)
            state.stage = "analysing"
            write_run_state(group, state)
        if state.stage == "analysing":
            _run_analyses(out, exp, quiet)
            state.stage = "lesioning"
            write_run_state(group, state)
        if state.stage == "lesioning":
            if protocol.lesions:
                from ..lesion.experiment import run_lesion_sweeps

                run_lesion_sweeps(protocol, exp.subject.model, exp.plan.sets, exp.device, out,
                                  state.lesions_done, lambda: write_run_state(group, state), quiet)
            state.stage = "complete"
            group.attrs.update({"complete": True, "finished": _now(), RUN_ATTR: asdict(state)})
    return open_recording(out)


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold an advisory lock on the store folder, so two processes never write one store."""
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{out}: another neurorecord process is writing this store; wait for it to end or stop it") from None
        yield
    finally:
        os.close(fd)


def _clear(out: Path) -> None:
    for entry in out.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _run_analyses(out: Path, exp: Experiment, quiet: bool) -> None:
    """Run the protocol's ``analyses:`` on the recorded store (re-run whole after an interruption)."""
    if not exp.protocol.analyses:
        return
    from ..analysis.runner import run_analyses

    tree = open_recording(out, allow_incomplete=True)
    for path in run_analyses(exp.protocol, tree, out):
        if not quiet:
            print(f"analysis written: {path}", file=sys.stderr)


def _check_output(out: Path, protocol: Protocol, resume: bool, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: --out must be a folder, found a file")
    if not out.exists() or not any(out.iterdir()):
        return
    state = read_run_state(out)
    if state is None:
        raise StoreError(
            f"{out}: output folder is not empty and holds no neurorecord recording (no zarr.json with a '{RUN_ATTR}' attribute); "
            "neurorecord will not write into or delete it: choose another --out"
        )
    if overwrite:
        return
    same = state.protocol_sha256 == protocol.sha256
    if not same:
        raise StoreError(
            f"{out}: output folder already holds a different run (protocol {state.protocol_name!r}, sha256 "
            f"{state.protocol_sha256[:12]}; this protocol {protocol.name!r} has sha256 {protocol.sha256[:12]}); "
            "use --overwrite to replace it, or another --out"
        )
    if resume:
        return
    if state.complete:
        raise StoreError(f"{out}: already holds a complete recording of this protocol; use --overwrite to record it again")
    raise StoreError(f"{out}: holds an unfinished recording of this protocol ({state.describe()}); use --resume or --overwrite")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _provenance(exp: Experiment) -> dict[str, Any]:
    p = exp.protocol
    return {
        "neurorecord_format": 1,
        "protocol_name": p.name,
        "protocol_text": p.text,
        "protocol_sha256": p.sha256,
        "protocol_path": str(p.path) if p.path else "",
        "seed": p.seed,
        "subject": exp.subject.identity(),
        "subject_weight_sha256": exp.subject.weight_sha256,
        "device": str(exp.device),
        "torch_threads": torch.get_num_threads(),
        "packages": package_versions(_PACKAGES),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created": _now(),
        "complete": False,
        "regions": list(exp.layouts),
        "presentations": len(exp.plan),
        "stimulus_sets": [s.describe() for s in exp.plan.sets],
    }


def _create_regions(out: Path, exp: Experiment) -> None:
    """Write one node per region: every coordinate and attribute, and an empty (NaN) ``activity``."""
    rec = exp.protocol.record
    n = len(exp.plan)
    pres = {k: ("presentation", v) for k, v in {**exp.plan.coords(), **exp.variability.coords()}.items()}
    times = {k: ("time_bin", v) for k, v in exp.plan.time_coords().items()}
    if times:
        times["time_bin_start"] += ({"units": "ms", "long_name": "bin start after stimulus onset"},)
        times["time_bin_end"] += ({"units": "ms", "long_name": "bin end after stimulus onset"},)
    for region, layout in exp.layouts.items():
        dims: tuple[str, ...] = ("presentation", "neuroid") + (("time_bin",) if times else ())
        chunks = (min(rec.batch_size, n), layout.n_neuroid) + ((exp.time_steps,) if times else ())
        activity = xr.Variable(
            dims,
            da.zeros((n, *chunks[1:]), chunks=chunks, dtype=np.float32),
            attrs={
                "units": "a.u.",
                "long_name": f"activity of {region}",
                "description": "output of the region's module for each presentation"
                + ("" if layout.reduce == "none" or len(layout.output_shape) == 1 else f", {layout.reduce} over space"),
            },
        )
        neur = {k: ("neuroid", v) for k, v in layout.coords.items()}
        node = xr.Dataset(
            {"activity": activity},
            coords={**pres, **neur, **times},
            attrs={
                "region": region,
                "module_type": layout.module_type,
                "output_shape": list(layout.output_shape),
                "reduce": layout.reduce,
                "output_element": -1 if layout.output_element is None else layout.output_element,
            },
        )
        encoding = {"activity": {"chunks": chunks, "compressors": [ACTIVITY_CODEC]}}
        node.to_zarr(out, group=region, mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding)


def _record_batches(group: zarr.Group, exp: Experiment, state: RunState, quiet: bool) -> None:
    """Record the batches not yet done, writing each (in a background thread) into whole chunks."""
    rec = exp.protocol.record
    n, size = len(exp.plan), rec.batch_size
    # every chunk gets real data, so skip zarr's scan of each chunk for "all fill value"
    arrays = {r: group[f"{r}/activity"].with_config({"write_empty_chunks": True}) for r in exp.layouts}
    # two reusable host buffers per region: one being filled, one being written
    steps = (exp.time_steps,) if exp.time_steps else ()
    slots = [{r: np.zeros((size, lay.n_neuroid, *steps), dtype=np.float32) for r, lay in exp.layouts.items()} for _ in range(2)]

    def write(batch: int, start: int, stop: int, slot: dict[str, np.ndarray]) -> None:
        for region, array in arrays.items():
            array[start:stop] = slot[region][: stop - start]
        state.batches_done = batch + 1
        write_run_state(group, state)

    pending: deque[Future[None]] = deque()
    bar = tqdm(total=n, initial=min(state.batches_done * size, n), unit="stim", desc=f"recording {exp.protocol.name}",
               disable=quiet, file=sys.stderr, dynamic_ncols=True)
    cuda = [exp.device.index or 0] if exp.device.type == "cuda" else []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neurorecord-writer") as pool, torch.random.fork_rng(devices=cuda), \
            exp.variability.neural_noise(exp.subject.model):
        model_was_training = exp.subject.model.training
        exp.subject.model.eval()
        try:
            for batch in range(state.batches_done, state.batches_total):
                start, stop = batch * size, min(n, (batch + 1) * size)
                # each batch its own seed: a resumed run draws exactly what an uninterrupted one would
                torch.manual_seed(int(np.random.SeedSequence([exp.protocol.seed, batch]).generate_state(1)[0]))
                x = exp.variability.apply(torch.from_numpy(exp.plan.images(start, stop)).to(exp.device), start)
                with torch.inference_mode():
                    outputs = exp.tap(x)
                    if len(pending) == 2:
                        pending.popleft().result()
                    slot = slots[batch % 2]
                    for region, output in outputs.items():
                        torch.from_numpy(slot[region][: stop - start]).copy_(exp.reduce(output))
                del outputs
                pending.append(pool.submit(write, batch, start, stop, slot))
                bar.update(stop - start)
            while pending:
                pending.popleft().result()
        finally:
            exp.subject.model.train(model_was_training)
            bar.close()
