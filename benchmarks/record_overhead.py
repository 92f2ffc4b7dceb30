"""What recording costs: ``neurorecord.run`` and ``neurorecord run`` against a plain forward pass.

Measured in one run, on the same inputs and in the same batches:

* **VGG-style CNN** (``benchmarks/vgg.py``: random weights, ~1.08 M parameters) shown the 1,797
  scikit-learn digits, each upsampled to 32x32 and copied to 3 channels, cycled to
  ``--n-stimuli`` presentations (default 1,797) and read from a ``.npy`` file. Recorded: the three
  conv blocks ``block1``, ``block2``, ``block3``, once with ``reduce: mean`` (one value per
  channel) and once with ``reduce: none`` (full conv maps: 14,336 neuroids per stimulus, 57 kB per
  presentation) under each ``record.compression`` (``none``, ``lz4``, ``zstd``), so a user can
  trade space for time: MB/s written (activity bytes over the time the writer thread spent
  writing batches, beside the forward pass) and the store's size on disk are printed for each. The subject's behaviour (its
  output per presentation) is recorded too, as by default, so the whole network runs, as in the
  baseline.
* **digits MLP** (the zoo's ``digits-mlp``) on the 454 test digits presented 20 times, recording
  ``fc1``, ``fc2``, ``fc3``. Its forward pass takes milliseconds, so its ratio measures
  neurorecord's fixed costs rather than any throughput.
* **Peers**, where installed: torchlens's ``extract_dataset`` recording the same three blocks of
  the VGG from the same ``.npy`` in the same batches into its shard folder, channel means (its
  ``spatial_mean`` pool) and full maps. Context, not targets. thingsvision is not measured: its
  requirements replace torch with torch 2.0.
* **The command line**: ``neurorecord run PROTOCOL --out DIR --quiet --no-report`` (the recording,
  as ``run()`` makes it; the HTML report is a stage of its own) in a fresh process, against
  a plain script doing the baseline's forward pass in a fresh process (interpreter start, the
  import of torch and the model's construction included on both sides).

The baseline is what one would write by hand without recording: the same model, under
``torch.inference_mode``, over the same images in the same batches, read the same way (from the
memory-mapped ``.npy`` and converted to float32 per batch). The recorded time is the wall time of
``neurorecord.run(protocol, fresh_folder, quiet=True)``, everything a user pays included. Its
parts are printed too: ``prepare`` (protocol, subject, stimulus set, probe batch), ``store``
(creating the store: provenance, coordinates, unwritten arrays), ``loop`` (the batches: forward
pass, reduction, writing), ``finish`` (manifest, consolidated metadata, opening the result);
``fixed`` is everything but the loop.

Timings on a small shared CPU vary by 30-50 % between runs, so after one untimed warm-up round
every recorded run is preceded by its own baseline run, for ``--repeats`` rounds, and medians are
quoted: ``ratio = median(recorded) / median(baseline)``; ``paired`` is the range of the
per-round ratios. ``--busy N`` keeps N extra processes spinning during the measured rounds (a
loaded machine); the load average is printed either way.

Targets: ratio <= 1.10 with ``reduce: mean``, <= 1.3 with ``reduce: none`` (default codec), fixed
costs under 0.3 s, and the same ratios through the command line.

Run from the repository root::

    python benchmarks/record_overhead.py              # 1,797 stimuli, 3 rounds (several minutes)
    python benchmarks/record_overhead.py --quick      # smoke run, seconds
    python benchmarks/record_overhead.py --n-stimuli 5000 --repeats 5 --busy 2
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

import neurorecord
from neurorecord import session, store
from neurorecord.protocol.schema import RecordSpec
from neurorecord.stimuli.digits import digits_split, load_digits_array
from neurorecord.subjects import load_zoo_subject
from vgg import vgg_small  # benchmarks/ is on sys.path when this file runs as a script

BATCH_SIZE = 256
VGG_REGIONS = ["block1", "block2", "block3"]
MLP_REGIONS = ["fc1", "fc2", "fc3"]
MLP_REPETITIONS = 20
CODECS = ("none", "lz4", "zstd")
DEFAULT_CODEC = RecordSpec.model_fields["compression"].default
TARGETS = {"mean": 1.10, "none": 1.3}
FIXED_TARGET_S = 0.3
PHASES = ("prepare", "store", "loop", "write", "finish")
MB = 1e6

#: The plain forward pass of the VGG in a fresh process: what the command line is compared with.
PLAIN_SCRIPT = """import sys
import numpy as np, torch
from vgg import vgg_small
model = vgg_small()
images = np.load(sys.argv[1], mmap_mode="r")
with torch.inference_mode():
    for start in range(0, len(images), {batch}):
        model(torch.from_numpy(np.array(images[start : start + {batch}], dtype=np.float32)))
"""


@dataclass
class Config:
    """One recorded configuration, its baseline, and the samples taken of both."""

    label: str
    protocol: Path | None  # None for a peer's rows
    baseline: Callable[[], None]
    target: float | None
    cli: bool = False
    peer: Callable[[Path], None] | None = None  # another tool's recording into a folder, instead of neurorecord's
    baseline_s: list[float] = field(default_factory=list)
    recorded_s: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    activity_bytes: int = 0
    disk_bytes: int = 0


def write_protocol(folder: Path, name: str, subject: dict[str, str], stimuli: list[dict[str, str]],
                   regions: list[str], reduce: str, repetitions: int = 1, compression: str | None = None) -> Path:
    """Write a protocol file into ``folder`` and return its path."""
    record = {"regions": regions, "batch_size": BATCH_SIZE, "reduce": reduce, "repetitions": repetitions, "device": "cpu"}
    if compression is not None:
        record["compression"] = compression
    protocol = {"neurorecord": 1, "name": name, "seed": 0, "subject": subject, "stimuli": stimuli, "record": record}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False))
    return path


def digit_inputs(n: int) -> np.ndarray:
    """The digits upsampled to 3x32x32 (each pixel a 4x4 block, the same in every channel), cycled to ``n``."""
    images, _ = load_digits_array()
    big = np.kron(images[:, 0], np.ones((4, 4), dtype=np.float32))[:, None].repeat(3, axis=1)
    return np.ascontiguousarray(big[np.arange(n) % len(big)])


def npy_forward(model: nn.Module, inputs: Path) -> Callable[[], None]:
    """Baseline: forward every image of a ``.npy`` file, read memory-mapped, batch by batch."""

    def forward_all() -> None:
        images = np.load(inputs, mmap_mode="r")
        with torch.inference_mode():
            for start in range(0, len(images), BATCH_SIZE):
                model(torch.from_numpy(np.array(images[start : start + BATCH_SIZE], dtype=np.float32)))

    return forward_all


def repeated_forward(model: nn.Module, images: np.ndarray, repetitions: int) -> Callable[[], None]:
    """Baseline: forward ``images`` ``repetitions`` times over, in batches across repetitions."""
    n = len(images) * repetitions

    def forward_all() -> None:
        with torch.inference_mode():
            for start in range(0, n, BATCH_SIZE):
                model(torch.from_numpy(images[np.arange(start, min(n, start + BATCH_SIZE)) % len(images)]))

    return forward_all


def fresh_process(args: list[str], cwd: Path) -> Callable[[], None]:
    """Baseline or recording in a fresh interpreter (its start and imports included)."""

    def call() -> None:
        subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)

    return call


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def record(protocol: Path, out: Path) -> tuple[float, dict[str, float], int, int]:
    """Time ``neurorecord.run`` into a fresh folder (deleted afterwards) and its phases, by wrapping
    for the duration of the call the functions the session calls for each. ``write`` is the time
    the writer thread spent writing batches (beside the forward pass, inside ``loop``)."""
    spent = {p: 0.0 for p in PHASES}
    stream = session.stream_batches

    def timed_stream(*args: Any, **kwargs: Any) -> None:
        write = args[9]

        def timed_write(*write_args: Any) -> None:
            start = time.perf_counter()
            write(*write_args)
            spent["write"] += time.perf_counter() - start  # one writer thread: no race

        stream(*args[:9], timed_write, *args[10:], **kwargs)

    wrapped = [(session, "prepare", "prepare"), (store, "create_store", "store"), (session, "_create_nodes", "store"),
               (session, "_record", "loop"), (store, "manifest", "finish"), (store, "consolidate", "finish"),
               (store, "open_recording", "finish")]
    originals = [(module, name, getattr(module, name)) for module, name, _ in wrapped]

    def timing(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - start
        return call

    for (module, name, phase), (_, _, fn) in zip(wrapped, originals):
        setattr(module, name, timing(fn, phase))
    session.stream_batches = timed_stream
    try:
        start = time.perf_counter()
        tree = neurorecord.run(protocol, out, quiet=True)
        total_s = time.perf_counter() - start
    finally:
        for module, name, fn in originals:
            setattr(module, name, fn)
        session.stream_batches = stream
    activity = sum(int(tree[region]["activity"].nbytes) for region in tree.attrs["regions"])
    disk = folder_bytes(out)
    shutil.rmtree(out)
    return total_s, spent, activity, disk


def measure_round(configs: list[Config], scratch: Path, keep: bool) -> None:
    """One round: each configuration's baseline, then its recording; samples kept if ``keep``."""
    for config in configs:
        baseline_s = timed(config.baseline)
        out = scratch / "out"
        if config.peer is not None:
            total_s = timed(lambda: config.peer(out))
            spent, activity, disk = {}, 0, folder_bytes(out)
            shutil.rmtree(out)
        elif config.cli:
            command = [str(Path(sys.executable).with_name("neurorecord")), "run", str(config.protocol), "--out", str(out),
                       "--quiet", "--no-report"]
            total_s = timed(lambda: subprocess.run(command, check=True))
            spent, activity, disk = {}, 0, folder_bytes(out)
            shutil.rmtree(out)
        else:
            total_s, spent, activity, disk = record(config.protocol, out)
        if keep:
            config.baseline_s.append(baseline_s)
            config.recorded_s.append(total_s)
            for phase, s in spent.items():
                config.phases[phase].append(s)
            config.activity_bytes, config.disk_bytes = activity or config.activity_bytes, disk


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(configs: list[Config]) -> None:
    header = (f"{'configuration':<22}{'baseline s':>11}{'recorded s':>11}{'ratio':>7}{'paired':>12}  {'target':<12}"
              + "".join(f"{p:>8}" for p in PHASES) + f"{'fixed':>7}{'act MB':>8}{'write MB/s':>11}{'disk MB':>8}")
    print(header)
    print("-" * len(header))
    misses = 0
    for c in configs:
        base, rec = _median(c.baseline_s), _median(c.recorded_s)
        ratio = rec / base
        paired = [r / b for r, b in zip(c.recorded_s, c.baseline_s)]
        target = "-" if c.target is None else f"<={c.target:.2f} {'PASS' if ratio <= c.target else 'MISS'}"
        misses += c.target is not None and ratio > c.target
        phases = {p: _median(v) for p, v in c.phases.items()}
        fixed = _median([t - loop for t, loop in zip(c.recorded_s, c.phases["loop"])])
        rate = c.activity_bytes / MB / phases["write"] if c.activity_bytes and c.phases["write"] else float("nan")
        print(f"{c.label:<22}{base:>11.3f}{rec:>11.3f}{ratio:>7.2f}{f'{min(paired):.2f}-{max(paired):.2f}':>12}  {target:<12}"
              + "".join(f"{phases[p]:>8.3f}" for p in PHASES)
              + f"{fixed:>7.3f}{c.activity_bytes / MB:>8.1f}{rate:>11.0f}{c.disk_bytes / MB:>8.1f}")
    fixed_all = [_median([t - loop for t, loop in zip(c.recorded_s, c.phases["loop"])]) for c in configs
                 if not c.cli and c.peer is None]
    worst = max(fixed_all)
    print(f"\nfixed costs per run (everything but the batch loop), largest median: {worst:.3f} s "
          f"(target < {FIXED_TARGET_S} s: {'PASS' if worst < FIXED_TARGET_S else 'MISS'})")
    print(f"{sum(c.target is not None for c in configs) - misses} of {sum(c.target is not None for c in configs)} ratio targets met")
    print("\nsamples (s), in round order:")
    for c in configs:
        print(f"  {c.label:<22} baseline {' '.join(f'{t:.3f}' for t in c.baseline_s)}")
        print(f"  {'':<22} recorded {' '.join(f'{t:.3f}' for t in c.recorded_s)}")


def _xarray_skeleton(out: Path, node: str, variables: dict[str, Any], coords: dict[str, Any], attrs: dict[str, Any],
                     chunk_rows: int, compression: str = "lz4", compression_level: int | None = None) -> None:
    """The obvious skeleton of one node: xarray's ``to_zarr(compute=False)`` of dask zeros.
    ``tests/record/test_skeleton.py`` checks that ``store.create_nodes`` writes the same bytes."""
    import dask.array as da
    import xarray as xr

    codecs = store.float_codecs(compression, compression_level)
    lazy, encoding = {}, {}
    for name, (dims, shape, dtype, var_attrs) in variables.items():
        shard = (min(chunk_rows, shape[0]), *shape[1:])
        lazy[name] = xr.Variable(dims, da.zeros(shape, chunks=shard, dtype=dtype), attrs=var_attrs)
        encoding[name] = {"chunks": shard, **({"compressors": codecs} if np.dtype(dtype).kind == "f" else {})}
        if len(shape) > 1 and shape[1] > store.UNIT_CHUNK:
            encoding[name]["chunks"] = (shard[0], store.UNIT_CHUNK, *shard[2:])
            encoding[name]["shards"] = (shard[0], -(-shape[1] // store.UNIT_CHUNK) * store.UNIT_CHUNK, *shard[2:])
    compressed = {"codec": compression, "level": codecs[0].clevel if codecs else None}
    xr.Dataset(lazy, coords=coords, attrs={**attrs, "compression": compressed}).to_zarr(
        out, group=node, mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding)


def _open_obvious(path: Path) -> Any:
    """The obvious opening: ``xarray.open_datatree`` with dask, each node's coordinates loaded one by one."""
    import xarray as xr

    tree = xr.open_datatree(path, engine="zarr", chunks={}, consolidated=True)
    return xr.DataTree.from_dict({node.path: store.index_labels(node.to_dataset(inherit=False).assign_coords(
        {name: store._plain_strings(node[name].variable.load()) for name in node.coords})) for node in tree.subtree})


def skeleton_costs(protocol: Path, scratch: Path, rounds: int) -> None:
    """Two fixed costs against their obvious versions, interleaved: the store skeleton (every region
    node and ``behaviour``) and opening the finished store."""
    exp = session.prepare(protocol)
    rec = exp.protocol.record
    out = scratch / "skeleton"
    tree_out = scratch / "opened"
    neurorecord.run(protocol, tree_out, quiet=True)

    def obvious_skeleton() -> None:
        for node, (variables, coords, attrs) in session._node_specs(exp).items():
            _xarray_skeleton(out, node, variables, coords, attrs, rec.batch_size, rec.compression, rec.compression_level)

    cases = {"xarray": obvious_skeleton, "ours": lambda: session._create_nodes(out, exp, exp.batches_per_chunk),
             "open obvious": lambda: _open_obvious(tree_out), "open ours": lambda: store.open_recording(tree_out, verify="none")}
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for label, fn in cases.items():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            samples[label].append(timed(fn))
    shutil.rmtree(out, ignore_errors=True)
    print(f"fixed costs against their obvious versions ({exp.protocol.name}, {len(exp.layouts)} regions + behaviour; "
          f"median of {rounds} interleaved rounds):")
    print(f"  store skeleton: xarray to_zarr(compute=False) of dask zeros, node by node {_median(samples['xarray']):.3f} s, "
          f"neurorecord (zarr alone, shared coordinates encoded once, into a MemoryStore, then plain files) "
          f"{_median(samples['ours']):.3f} s")
    print(f"  opening: open_datatree with dask, coordinates loaded one by one {_median(samples['open obvious']):.3f} s, "
          f"open_recording (every coordinate in one load_async) {_median(samples['open ours']):.3f} s")


def torchlens_peer(model: nn.Module, inputs: Path, pool: str | None) -> Callable[[Path], None] | None:
    """torchlens's ``extract_dataset`` recording the VGG's three blocks from the same ``.npy`` in the
    same batches into ``out`` (its shards on disk, as neurorecord's store), channel means through
    its ``spatial_mean`` pool, or the full maps with ``pool=None``; None where torchlens is not
    installed."""
    if importlib.util.find_spec("torchlens") is None:
        return None
    import torchlens

    def extract(out: Path) -> None:
        images = torch.from_numpy(np.load(inputs))
        torchlens.extract_dataset(model, images, layers=VGG_REGIONS, batch_size=BATCH_SIZE, output_dir=out, pool=pool,
                                  progress=False)

    return extract


def _spin() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stimuli", type=int, default=None, help="VGG presentations (default 1797; 512 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="measured rounds (default 3; 1 with --quick)")
    parser.add_argument("--busy", type=int, default=0, help="extra processes spinning during the measured rounds")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line configurations")
    parser.add_argument("--quick", action="store_true", help="smoke run: few stimuli, one round, 2 digit repetitions")
    args = parser.parse_args()
    n_stimuli = args.n_stimuli or (512 if args.quick else 1797)
    repeats = args.repeats or (1 if args.quick else 3)
    mlp_repetitions = 2 if args.quick else MLP_REPETITIONS

    with tempfile.TemporaryDirectory(prefix="nr-bench-") as tmp:
        scratch = Path(tmp)
        shutil.copy(Path(__file__).with_name("vgg.py"), scratch / "vgg.py")
        inputs = scratch / "inputs.npy"
        np.save(inputs, digit_inputs(n_stimuli))
        (scratch / "plain.py").write_text(PLAIN_SCRIPT.format(batch=BATCH_SIZE))

        vgg = vgg_small()
        vgg_subject = {"entry_point": "vgg:vgg_small"}
        stimuli = [{"name": "digits32", "kind": "npy", "path": inputs.name}]
        vgg_forward = npy_forward(vgg, inputs)
        mlp = load_zoo_subject("digits-mlp").model
        images, _ = load_digits_array()
        digits = np.ascontiguousarray(images[digits_split("test")])
        configs = [Config("VGG mean", write_protocol(scratch, "vgg-mean", vgg_subject, stimuli, VGG_REGIONS, "mean"),
                          vgg_forward, TARGETS["mean"])]
        for codec in CODECS:
            configs.append(Config(f"VGG none, {codec}" + (" *" if codec == DEFAULT_CODEC else ""),
                                  write_protocol(scratch, f"vgg-none-{codec}", vgg_subject, stimuli, VGG_REGIONS, "none",
                                                 compression=codec),
                                  vgg_forward, TARGETS["none"] if codec == DEFAULT_CODEC else None))
        configs.append(Config(
            "digits MLP",
            write_protocol(scratch, "mlp", {"zoo": "digits-mlp"}, [{"name": "digits", "kind": "digits", "split": "test"}],
                           MLP_REGIONS, "mean", mlp_repetitions),
            repeated_forward(mlp, digits, mlp_repetitions), None))
        for reduce, pool in (("mean", "spatial_mean"), ("none", None)):
            peer = torchlens_peer(vgg, inputs, pool)
            if peer is not None:
                configs.append(Config(f"torchlens VGG {reduce}", None, vgg_forward, None, peer=peer))
        if not args.no_cli:
            plain = fresh_process([sys.executable, "plain.py", inputs.name], scratch)
            for reduce in ("mean", "none"):
                configs.append(Config(f"CLI VGG {reduce}", scratch / f"vgg-{reduce}{'' if reduce == 'mean' else '-' + DEFAULT_CODEC}.yaml",
                                      plain, TARGETS[reduce], cli=True))

        n_params = sum(p.numel() for p in vgg.parameters())
        print(f"neurorecord {neurorecord.__version__}, torch {torch.__version__}: {torch.get_num_threads()} threads "
              f"on {os.cpu_count()} CPUs; batch {BATCH_SIZE}; 1 warm-up round + {repeats} measured rounds, medians")
        tuned = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
        print(f"allocator: {' '.join(f'{k}={v}' for k, v in tuned.items()) or 'glibc defaults'}; "
              f"extra spinning processes: {args.busy}; default record.compression: {DEFAULT_CODEC} (marked *)")
        print(f"VGG-style CNN: {n_params:,} parameters, random weights; {n_stimuli:,} digits as 3x32x32 "
              f"({inputs.stat().st_size / MB:.1f} MB .npy); regions {', '.join(VGG_REGIONS)}")
        print(f"digits MLP: {len(digits)} test digits x {mlp_repetitions} repetitions = "
              f"{len(digits) * mlp_repetitions:,} presentations; regions {', '.join(MLP_REGIONS)}")
        print("CLI rows: `neurorecord run --no-report` in a fresh process against the plain forward pass in a fresh process")
        print("peer rows: torchlens extract_dataset, the same batches into its shard folder"
              if any(c.peer is not None for c in configs) else
              "peer rows: torchlens not installed, skipped (pip install -e \".[bench]\" to print them)")
        print("thingsvision is not measured: its requirements replace this torch with torch 2.0 (pip install --dry-run)")
        print()

        load_before = os.getloadavg()
        measure_round(configs, scratch, keep=False)
        spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
        for p in spinners:
            p.start()
        try:
            for _ in range(repeats):
                measure_round(configs, scratch, keep=True)
        finally:
            for p in spinners:
                p.terminate()
        report(configs)
        print()
        skeleton_costs(configs[0].protocol, scratch, max(3, repeats))
        load_after = os.getloadavg()
        print(f"\nload average (1/5/15 min): {'/'.join(f'{x:.2f}' for x in load_before)} at start, "
              f"{'/'.join(f'{x:.2f}' for x in load_after)} at end (this benchmark keeps about "
              f"{torch.get_num_threads() + args.busy} busy; more means other processes shared the CPUs)")


if __name__ == "__main__":
    main()
