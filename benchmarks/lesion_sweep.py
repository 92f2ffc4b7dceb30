"""What a lesion sweep costs: the default call and the protocol path against the true limit.

Measured in one run, on the same models and the same data, for every single-unit zero lesion of
regions of two networks:

* **VGG-style CNN** (``benchmarks/vgg.py``: random weights) on seeded random float32 inputs:
  ``block2`` (middle: 64 channels of 8x8; ``block3`` and the classifier lie downstream) and
  ``block3`` (late: 128 channels of 4x4; only the classifier lies downstream) on 3x32x32 inputs
  (512 by default, ``--n-stimuli``), and the case a new user tried: the VGG on **3x16x16**
  inputs, the **middle ReLU** ``block2.relu1`` (64 channels of 8x8, between the two convs of
  ``block2``), **454 stimuli**. A lesion zeroes one channel at every position.
* **digits MLP** (the zoo's ``digits-mlp``) on the 454 test digits: ``fc2`` (middle) and
  ``fc3`` (late, feeds the readout). Its calls take milliseconds; each of its samples is the mean
  of 20 calls.

Columns, per region:

* **limit**: the true limit, what any sweep that recomputes the network after the region must
  pay: for each lesion, the downstream part (``split_at(model, region)``) run once over every
  stimulus on a lesioned copy of the cached region output (the lesioned channel written into a
  copy made beforehand, put back after), in batches of all stimuli, 256 or 64 (``limit all``,
  ``limit 256``, ``limit 64``); the limit is the fastest of the three medians. No upstream, no
  bookkeeping.
* **fast**: ``lesion_predictions`` with its defaults, the whole call (cutting and checking the
  network, the upstream part with its measured batches, the measured pass sizes, the packed
  passes, argmax). By default the first linear layer after the region is not recomputed where
  that applies (every region here) but updated by each lesioned unit's own contribution (the
  shortcut), so it can go below the limit.
* **protocol**: the same sweep through a protocol with a ``lesions:`` entry (``n_boot: 0``) run
  with ``neurorecord.run``: the time of its sweep (the ``prepared_sweep`` block of
  ``run_lesion_sweeps``: the upstream part once per entry, the resumable blocks of 64 lesions,
  each block's progress written to the store and the run state). **stage**: the whole lesion
  stage (also resolving the targets, the statistics and writing the result node). VGG regions
  only.
* **exact**: ``shortcut=False``: every layer after the region recomputed.
* **+down**: the fast sweep also measuring the activity change of downstream regions (listed
  under the table).
* **+logits**: the fast sweep returning the logits too (what the protocol path asks for).
* **obvious**: ``obvious_predictions``, the whole network per lesion (on the VGG, timed on
  ``--obvious-lesions`` evenly spaced lesions and scaled).
* **upstream**: the part before the region over every stimulus (in the fast sweep's batches).
* **captum**: ``captum.attr.LayerFeatureAblation`` ablating the same single channels (where
  captum is installed; ``perturbations_per_eval`` tuned once), timed on a subset and scaled.

Timings on a small shared CPU vary by 30-50 % between runs, so after an untimed preparation
(which also warms every path up) each round runs every column of every region one after the
other, for ``--repeats`` rounds; medians are quoted, and the load average is printed.

Target (2-core CPU): fast and protocol within 1.3x of the limit on every VGG region, and the
protocol's sweep no slower than the API's (``protocol/fast`` about 1).

Run from the repository root::

    python benchmarks/lesion_sweep.py              # 3 rounds, about 6 minutes
    python benchmarks/lesion_sweep.py --quick      # smoke run, under a minute
    python benchmarks/lesion_sweep.py --threads 1  # on a busy shared machine
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import neurorecord
from neurorecord.lesion import experiment, lesion_predictions, obvious_predictions, single_unit_lesions, split_at
from neurorecord.stimuli import DigitsSet
from neurorecord.subjects import load_zoo_subject
from vgg import vgg_small  # benchmarks/ is on sys.path when this file runs as a script

TARGET = 1.3  # fast / limit and protocol / limit, every VGG region
LIMIT_BATCHES = ("all", 256, 64)
MLP_INNER = 20  # calls per MLP sample
COLUMNS = ("obvious", "fast", "protocol", "stage", "exact", "down", "logits", "limit all", "limit 256", "limit 64", "upstream", "captum")


@dataclass
class Case:
    """One lesioned region: its model, data, prepared inputs and the samples taken."""

    label: str
    model: nn.Module
    x: torch.Tensor
    region: str
    downstream: list[str]
    obvious_subset: list[int]
    vgg_size: int | None = None  # the VGG's input size (a protocol is run), None for the MLP
    inner: int = 1  # calls per sample (the sample is their mean)
    n_lesion: int = 0
    plan: str = ""
    shortcut: bool = False
    agree: bool = True
    protocol: Path | None = None
    split: Any = None
    frontier: dict[str, torch.Tensor] = field(default_factory=dict)
    lesioned: dict[str, torch.Tensor] = field(default_factory=dict)
    targets: torch.Tensor | None = None
    ppe: int = 1
    samples: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in COLUMNS})

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- the true limit


def run_limit(case: Case, batch: int | str) -> None:
    """Per lesion: the lesioned channel written into the copy of the cached frontier, the
    downstream part over every stimulus in batches of ``batch``, the channel put back."""
    size = case.n if batch == "all" else int(batch)
    key = case.split.region_key
    h, buf = case.frontier[key], case.lesioned[key]
    with torch.inference_mode():
        for unit in range(case.n_lesion):
            buf[:, unit] = 0
            for start in range(0, case.n, size):
                case.split.downstream({k: v[start : start + size] for k, v in case.lesioned.items()})
            buf[:, unit] = h[:, unit]


# ---------------------------------------------------------------- the protocol path


def write_protocol(case: Case, folder: Path) -> Path:
    """A protocol whose only lesion entry is the sweep of ``case`` (its inputs as .npy files)."""
    shutil.copy(Path(__file__).with_name("vgg.py"), folder / "vgg.py")
    np.save(folder / "inputs.npy", case.x.numpy())
    np.save(folder / "labels.npy", case.targets.numpy().astype(np.int64))
    path = folder / "protocol.yaml"
    path.write_text(f"""neurorecord: 1
name: bench
seed: 0
subject:
  entry_point: vgg:vgg_small
  kwargs: {{seed: 0, size: {case.vgg_size}}}
stimuli:
  - {{name: noise, kind: npy, path: inputs.npy, labels: labels.npy}}
record:
  regions: [classifier.out]
  batch_size: 512
  device: cpu
lesions:
  - {{name: sweep, region: {case.region}, evaluate: noise, n_boot: 0}}
""")
    return path


def run_protocol(case: Case, scratch: Path) -> tuple[float, float]:
    """``neurorecord.run`` of the case's protocol; returns the time of its lesion sweep (the
    ``with prepared_sweep(...)`` block of ``run_lesion_sweeps``: the upstream part, every block
    of lesions, the per-block progress writes) and of its whole lesion stage (also the targets'
    planning, the statistics and the result node's write)."""
    sweep: list[float] = []
    stage: list[float] = []
    real_stage, real_sweep = experiment.run_lesion_sweeps, experiment.prepared_sweep

    def timed_stage(*args: Any, **kwargs: Any) -> None:
        stage.append(timed(lambda: real_stage(*args, **kwargs)))

    @contextlib.contextmanager
    def timed_sweep(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        with real_sweep(*args, **kwargs) as prepared:
            yield prepared
        sweep.append(time.perf_counter() - start)

    out = scratch / "out"
    experiment.run_lesion_sweeps, experiment.prepared_sweep = timed_stage, timed_sweep
    try:
        tree = neurorecord.run(case.protocol, out, quiet=True)
        attrs = tree["lesions/sweep"].attrs
        case.protocol_how = f"{attrs['pack_size']} x {attrs['stimulus_chunk']}, up {attrs['upstream_batch']}"  # type: ignore[attr-defined]
        case.protocol_shortcut = bool(attrs["shortcut"])  # type: ignore[attr-defined]
        correct = tree["lesions/sweep"]["correct"].values
    finally:
        experiment.run_lesion_sweeps, experiment.prepared_sweep = real_stage, real_sweep
        shutil.rmtree(out, ignore_errors=True)
    case.agree &= bool(np.array_equal(correct, case._fast.numpy() == case.targets.numpy()[None]))  # type: ignore[attr-defined]
    return sweep[0], stage[0]


# ---------------------------------------------------------------- captum (optional)


def run_captum(case: Case, n_stimuli: int, batch: int, ppe: int) -> None:
    from captum.attr import LayerFeatureAblation

    model, layer = case.model, case.model.get_submodule(case.region)
    shape = case.frontier[case.split.region_key].shape[1:]
    mask = torch.arange(case.n_lesion).reshape(1, case.n_lesion, *([1] * (len(shape) - 1)))
    for start in range(0, n_stimuli, batch):
        stop = min(n_stimuli, start + batch)
        targets = case.targets[start:stop]

        def forward(inputs: torch.Tensor) -> torch.Tensor:
            logits = model(inputs)
            copies = logits.shape[0] // targets.shape[0]  # captum repeats the batch (copy-major)
            return logits.gather(1, targets.repeat(copies)[:, None])[:, 0]

        with torch.inference_mode():
            LayerFeatureAblation(forward, layer).attribute(case.x[start:stop], layer_mask=mask, perturbations_per_eval=ppe)


# ---------------------------------------------------------------- preparation, rounds, report


def prepare(case: Case, scratch: Path, captum: bool, captum_stimuli: int) -> None:
    """Untimed: the frontier and its lesioned copy for the limit, the intact predictions, a first
    call of every path (warm-up), the protocol files, captum's perturbations_per_eval."""
    model, x, region = case.model, case.x, case.region
    with torch.inference_mode():
        case.split = split_at(model, region, x[:3])
        case.frontier = case.split.upstream(x)
        case.lesioned = {k: v.clone() for k, v in case.frontier.items()}
        case.targets = model(x).argmax(1)
    case.n_lesion = int(case.frontier[case.split.region_key].shape[1])
    lesions = single_unit_lesions(case.n_lesion)
    result = lesion_predictions(model, x, region, lesions)
    case.shortcut = result.shortcut
    obvious_predictions(model, x, region, lesions[:1])
    lesion_predictions(model, x, region, lesions, shortcut=False)
    for batch in LIMIT_BATCHES:
        run_limit(case, batch)
    if case.vgg_size is not None:
        folder = scratch / case.label.split()[0] / region
        folder.mkdir(parents=True)
        case.protocol = write_protocol(case, folder)
        case._fast = result.predictions  # type: ignore[attr-defined]
        run_protocol(case, folder)
    if captum:
        times = {ppe: timed(lambda: run_captum(case, min(case.n, captum_stimuli), min(case.n, 64), ppe)) for ppe in (1, 4, 16)}
        case.ppe = min(times, key=times.__getitem__)


def measure_round(cases: list[Case], captum: bool, captum_stimuli: int) -> None:
    for case in cases:
        k = case.inner
        lesions = single_unit_lesions(case.n_lesion)

        def per_call(fn: Callable[[], Any]) -> float:
            return timed(lambda: [fn() for _ in range(k)]) / k

        def fast() -> None:
            case._result = lesion_predictions(case.model, case.x, case.region, lesions)  # type: ignore[attr-defined]

        s = case.samples
        s["obvious"].append(per_call(lambda: setattr(case, "_obvious", obvious_predictions(
            case.model, case.x, case.region, [lesions[i] for i in case.obvious_subset]))) * case.n_lesion / len(case.obvious_subset))
        s["fast"].append(per_call(fast))
        result = case._result  # type: ignore[attr-defined]
        case._fast = result.predictions  # type: ignore[attr-defined]
        case.plan = f"{result.pack_size} x {result.stimulus_chunk}, up {result.upstream_batch}"
        case.agree &= bool(torch.equal(result.predictions[case.obvious_subset], case._obvious))  # type: ignore[attr-defined]
        if case.protocol is not None:
            sweep_s, stage_s = run_protocol(case, case.protocol.parent)
            s["protocol"].append(sweep_s)
            s["stage"].append(stage_s)
        s["exact"].append(per_call(lambda: setattr(case, "_exact", lesion_predictions(case.model, case.x, case.region, lesions, shortcut=False))))
        case.agree &= bool(torch.equal(case._exact.predictions[case.obvious_subset], case._obvious))  # type: ignore[attr-defined]
        s["down"].append(per_call(lambda: lesion_predictions(case.model, case.x, case.region, lesions, downstream=case.downstream)))
        s["logits"].append(per_call(lambda: lesion_predictions(case.model, case.x, case.region, lesions, return_logits=True)))
        for batch in LIMIT_BATCHES:
            s[f"limit {batch}"].append(per_call(lambda: run_limit(case, batch)))
        with torch.inference_mode():
            s["upstream"].append(per_call(lambda: case.split.upstream(case.x)))
        if captum:
            n = min(case.n, captum_stimuli)
            s["captum"].append(per_call(lambda: run_captum(case, n, min(n, 64), case.ppe)) * case.n / n)


def verdict(value: float, applies: bool) -> str:
    return f"<={TARGET:g} {'PASS' if value <= TARGET else 'MISS'}" if applies else "-"


def report(cases: list[Case]) -> bool:
    med = {c.label: {k: statistics.median(v) if v else float("nan") for k, v in c.samples.items()} for c in cases}
    header = (f"{'region':<30}{'lesions':>8}{'limit s':>9}{'fast s':>9}{'protocol s':>11}{'stage s':>9}{'exact s':>9}{'+down s':>9}{'+logits s':>10}"
              f"{'obvious s':>11}{'upstream s':>11}{'captum s':>10}  {'fast/limit':>10} {'target':<11}{'protocol/limit':>15} {'target':<11}"
              f"{'protocol/fast':>14}{'exact/limit':>12}{'obvious/fast':>13}  {'shortcut':<9}{'same preds':<10}")
    print(header)
    print("-" * len(header))
    ok = True
    for c in cases:
        m = med[c.label]
        limit = min(m[f"limit {b}"] for b in LIMIT_BATCHES)
        vgg = c.vgg_size is not None
        fast_r, proto_r = m["fast"] / limit, m["protocol"] / limit
        if vgg:
            ok &= fast_r <= TARGET and proto_r <= TARGET
        print(f"{c.label:<30}{c.n_lesion:>8}{limit:>9.4f}{m['fast']:>9.4f}{m['protocol']:>11.4f}{m['stage']:>9.4f}{m['exact']:>9.4f}{m['down']:>9.4f}"
              f"{m['logits']:>10.4f}{m['obvious']:>11.4f}{m['upstream']:>11.4f}{m['captum']:>10.4f}  {fast_r:>10.2f} {verdict(fast_r, vgg):<11}"
              f"{proto_r:>15.2f} {verdict(proto_r, vgg):<11}{m['protocol'] / m['fast']:>14.2f}{m['exact'] / limit:>12.2f}"
              f"{m['obvious'] / m['fast']:>13.1f}  {'yes' if c.shortcut else 'no':<9}{'yes' if c.agree else 'NO':<10}")
    print("\nthe limit, per batch of the downstream part (s, medians):")
    for c in cases:
        m = med[c.label]
        print(f"  {c.label:<30}" + ", ".join(f"{b}: {m[f'limit {b}']:.4f}" for b in LIMIT_BATCHES))
    print("plans of the fast sweep (pack x chunk, upstream batch; last round) and of the protocol path:")
    for c in cases:
        proto = f"; protocol {getattr(c, 'protocol_how', '')}{', shortcut' if getattr(c, 'protocol_shortcut', False) else ''}"
        print(f"  {c.label:<30}{c.plan}{', shortcut' if c.shortcut else ''}" + (proto if c.protocol is not None else ""))
    print("+down measures the activity change of: " + "; ".join(f"{c.label.split(' (')[0]} -> {', '.join(c.downstream)}" for c in cases))
    print("protocol: the sweep of the protocol's lesion entry (upstream once, blocks of 64 lesions, progress writes); stage: its "
          "whole lesion stage (also planning the targets, statistics with n_boot 0, writing the result node)")
    print("same preds: fast, exact and protocol against the obvious loop on the lesions it ran (fast == protocol everywhere)")
    print("\nsamples (s), in round order (obvious and captum scaled):")
    for c in cases:
        for i, (k, v) in enumerate((k, v) for k, v in c.samples.items() if v):
            print(f"  {c.label if i == 0 else '':<30} {k:<10} {' '.join(f'{t:.4f}' for t in v)}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stimuli", type=int, default=None, help="random 3x32x32 VGG inputs (default 512; 64 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="measured rounds (default 3; 1 with --quick)")
    parser.add_argument("--obvious-lesions", type=int, default=None, help="VGG lesions the obvious loop runs, scaled (default 8)")
    parser.add_argument("--captum-stimuli", type=int, default=128, help="VGG stimuli captum runs, scaled")
    parser.add_argument("--no-captum", action="store_true", help="leave captum out (also when it is not installed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: few stimuli, one round")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    n_stimuli = args.n_stimuli or (64 if args.quick else 512)
    n_small = 64 if args.quick else 454
    repeats = args.repeats or (1 if args.quick else 3)
    obvious_lesions = args.obvious_lesions or (2 if args.quick else 8)
    try:
        import captum  # noqa: F401

        use_captum = not args.no_captum
    except ImportError:
        use_captum = False

    rng = np.random.default_rng(args.seed)
    vgg32, vgg16 = vgg_small(args.seed), vgg_small(args.seed, size=16)
    x32 = torch.from_numpy(rng.standard_normal((n_stimuli, 3, 32, 32), dtype=np.float32))
    x16 = torch.from_numpy(rng.standard_normal((n_small, 3, 16, 16), dtype=np.float32))
    mlp = load_zoo_subject("digits-mlp").model.eval()
    digits = torch.from_numpy(np.ascontiguousarray(DigitsSet("digits", "test").images(np.arange(454))))

    def spaced(n_lesion: int, k: int) -> list[int]:
        return sorted({int(i) for i in np.linspace(0, n_lesion - 1, min(k, n_lesion)).round()})

    inner = 2 if args.quick else MLP_INNER
    cases = [
        Case("VGG32 block2 (middle)", vgg32, x32, "block2", ["block3", "classifier.fc"], spaced(64, obvious_lesions), 32),
        Case("VGG32 block3 (late)", vgg32, x32, "block3", ["classifier.fc", "classifier"], spaced(128, obvious_lesions), 32),
        Case("VGG16 block2.relu1 (user)", vgg16, x16, "block2.relu1", ["block2.conv2", "block3"], spaced(64, obvious_lesions), 16),
        Case("MLP fc2 (middle)", mlp, digits, "fc2", ["fc3", "out"], list(range(100)), None, inner),
        Case("MLP fc3 (late)", mlp, digits, "fc3", ["out"], list(range(100)), None, inner),
    ]
    print(f"neurorecord {neurorecord.__version__}, torch {torch.__version__}: {torch.get_num_threads()} threads on {os.cpu_count()} CPUs; "
          f"{repeats} measured rounds, medians; captum {'on' if use_captum else 'off (not installed or --no-captum)'}")
    print(f"VGG-style CNN, random weights: {n_stimuli} random 3x32x32 inputs; the user's case: {n_small} random 3x16x16 inputs "
          f"(seed {args.seed}); obvious loop on {obvious_lesions} evenly spaced lesions, scaled")
    print(f"digits MLP: the 454 test digits; each sample is the mean of {inner} calls")
    print("single-unit zero lesions of every channel; times are for all lesions over all stimuli")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="nr-lesion-bench-") as tmp:
        t0 = time.perf_counter()
        for case in cases:
            prepare(case, Path(tmp), use_captum, args.captum_stimuli)
        print(f"preparation (warm-up of every path, limit inputs, protocol files): {time.perf_counter() - t0:.1f} s\n")
        loads = []
        for _ in range(repeats):
            measure_round(cases, use_captum, args.captum_stimuli)
            loads.append(os.getloadavg()[0])
    ok = report(cases)
    print(f"\n{'every' if ok else 'NOT every'} VGG region within {TARGET:g}x of the limit, through the API and through the protocol")
    print(f"load average (1 min): {load_before[0]:.2f} at start, after each round {', '.join(f'{v:.2f}' for v in loads)} "
          f"(this benchmark keeps about {torch.get_num_threads()} busy; more means other processes shared the CPUs)")


if __name__ == "__main__":
    main()
