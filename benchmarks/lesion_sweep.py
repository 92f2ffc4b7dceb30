"""What a lesion sweep costs: the fast sweep against the obvious loop, the arithmetic limit and Captum.

Measured in one run, on the same models and the same data, for every single-unit zero lesion of
a middle and of a late region of two networks:

* **VGG-style CNN** (``benchmarks/vgg.py``: random weights, ~1.08 M parameters) on seeded random
  float32 inputs of 3x32x32 (512 by default, ``--n-stimuli``). Middle region ``block2`` (64
  channels of 8x8; ``block3`` and the classifier lie downstream, ~38 % of the forward FLOPs) and
  late region ``block3`` (128 channels of 4x4; only the classifier lies downstream, ~2 %). A
  lesion zeroes one channel at every position.
* **digits MLP** (the zoo's ``digits-mlp``, 64-100-100-100-10) on the 454 test digits. Middle
  region ``fc2``, late region ``fc3`` (100 units each). Its forward pass takes microseconds per
  stimulus, so its times measure the fixed and per-pass costs of each approach more than
  arithmetic; each of its samples is the mean of 20 calls (the calls take milliseconds).

Compared, per region:

* **obvious**: ``obvious_predictions``, the whole network over every stimulus once per lesion (a
  forward hook applies the lesion). On the VGG it is timed on an evenly spaced subset of
  ``--obvious-lesions`` lesions (default 8) and scaled linearly to all lesions (its cost is the
  same for every lesion); on the MLP on all lesions.
* **fast**: ``lesion_predictions`` with its defaults, the whole call (cutting the network, the
  probe pass, the upstream part over every stimulus, packing the lesions, the packed downstream
  passes, argmax, copying back). By default the first linear layer after the region is not
  recomputed where that applies (here every region: the region's output goes into an
  ``nn.Conv2d``, VGG ``block2``; through ``nn.Flatten`` into an ``nn.Linear``, VGG ``block3``;
  into an ``nn.Linear``, MLP ``fc2`` and ``fc3``) but updated by each lesioned unit's own
  contribution (a rank-1 update; a conv channel's block of flattened features; the convolution
  of the lesioned channel alone), so it does less arithmetic than the limit below; equal to the
  recomputation up to float rounding.
* **exact**: the same call with ``shortcut=False``: every layer after the region recomputed
  on the packed lesioned outputs, with the unsplit network's kernels. Its pack size (lesions
  per pass) x stimulus chunk is printed.
* **+down**: the fast sweep also measuring the activity change of downstream regions
  (``downstream=[...]``, listed under the table), in the same passes.
* **limit**: the arithmetic limit, downstream FLOPs only. The network is cut with
  ``split_at(model, region)``; every lesioned region output is built beforehand (not timed), as a
  zeroed copy of the cached region output, in the exact sweep's own passes (``pack x chunk`` rows
  each); the time is that of the downstream forward alone over all those passes: the same
  ``n_lesion x N`` lesioned evaluations, with no upstream, no lesion bookkeeping and no argmax.
* **captum**: ``captum.attr.LayerFeatureAblation(forward, layer)`` with one feature per channel
  (a ``layer_mask`` of channel indices) and zero baselines, so that it ablates exactly the same
  single channels, under ``torch.inference_mode``. Captum returns attributions (the change of the
  target's output), not per-stimulus predictions, so what is compared is the cost of the same
  number of ablated forward passes. The target is the intact network's predicted class (captum
  does not repeat a per-stimulus target tensor when ``perturbations_per_eval > 1``, so
  ``forward`` returns the logit of each stimulus's predicted class itself and no ``target`` is
  given). ``perturbations_per_eval`` is tuned once, before the rounds, over a few values (VGG:
  1, 4, 16 on batches of ``--captum-batch`` stimuli, default 64; MLP: 1, 10, 100 on all 454
  digits), and the fastest is used. On the VGG captum is timed on ``--captum-stimuli`` stimuli
  (default 128, in batches of ``--captum-batch``) and scaled linearly to all stimuli; on the MLP
  on all of them.

Also printed: ``upstream s``, the time of the part of the network before the region over every
stimulus, in the sweep's upstream batches (included in the sweeps, excluded from the limit;
``exact/(limit+up)`` is the exact sweep's time over the limit plus that: how far it is from the
cost of the arithmetic any sweep that recomputes the downstream part must do),
whether the fast and the exact sweep's predictions equal the obvious loop's on the lesions the
obvious loop ran (they must), and whether the limit's prebuilt inputs reproduce the exact
sweep's predictions (so that the limit evaluates the same lesioned networks).

Timings on a small shared CPU vary by 30-50 % between runs, so after the untimed preparation
(which also warms up every path) each round runs, for each region, the obvious loop, the fast
sweep, the exact sweep, the fast sweep with downstream activity, the limit, the upstream part and
captum one after the other, for ``--repeats`` rounds; medians are quoted.

Targets (2-core CPU): the fast sweep within 1.3x of the limit for every region; at least 5x faster
than the obvious loop for a late region (``block3``, ``fc3``: little of the network lies
downstream). Both are reported for the fast sweep (the default) and, for comparison, for the
exact path.

On a CPU shared with other processes, two torch threads wait for each other whenever one of them
is descheduled, and small operations then take tens of times longer; ``--threads 1`` gives
steadier figures there (the same for every column). The thread count is printed.

Run from the repository root (needs ``captum``, which is not a neurorecord dependency)::

    python benchmarks/lesion_sweep.py              # 512 VGG stimuli, 3 rounds (about 4 minutes)
    python benchmarks/lesion_sweep.py --quick      # smoke run (no captum tuning), about 15 seconds
    python benchmarks/lesion_sweep.py --n-stimuli 1024 --repeats 5
    python benchmarks/lesion_sweep.py --threads 1    # on a busy shared machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import neurorecord
from neurorecord.lesion import lesion_predictions, obvious_predictions, single_unit_lesions, split_at
from neurorecord.lesion.split import memory_format
from neurorecord.stimuli import DigitsSet
from neurorecord.subjects import load_zoo_subject
from vgg import vgg_small  # benchmarks/ is on sys.path when this file runs as a script

TARGET_LIMIT = 1.3  # fast / limit, every region
TARGET_SPEEDUP = 5.0  # obvious / fast, late regions
VGG_PPE = (1, 4, 16)
MLP_PPE = (1, 10, 100)
MLP_INNER = 20  # calls per MLP sample


@dataclass
class Case:
    """One lesioned region: its model, data, prepared inputs and the samples taken."""

    label: str
    model: nn.Module
    x: torch.Tensor
    region: str
    late: bool
    obvious_subset: list[int]
    captum_stimuli: int
    captum_batch: int
    ppe_candidates: tuple[int, ...]
    downstream: list[str] = field(default_factory=list)  # regions measured in the "+down" column
    inner: int = 1  # calls per sample (the sample is their mean): the MLP's calls take milliseconds
    n_lesion: int = 0
    region_shape: tuple[int, ...] = ()
    pack: int = 0
    chunk: int = 0
    upstream_batch: int = 0
    split_kind: str = ""
    ppe: int = 1
    ppe_times: dict[int, float] = field(default_factory=dict)
    limit_inputs: list[dict[str, torch.Tensor]] = field(default_factory=list)
    split: Any = None
    targets: torch.Tensor | None = None
    agree: bool | None = None
    shortcut: bool = False  # whether the fast sweep (the default) used the shortcut
    exact_agrees: bool | None = None
    limit_agrees: bool = False
    samples: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in ("obvious", "fast", "exact", "down", "limit", "captum", "upstream")})

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- preparation


def prepare(case: Case) -> None:
    """Untimed: a first fast sweep (pack sizes, intact predictions, warm-up), the limit's lesioned
    inputs in the sweep's passes, and the tuning of captum's ``perturbations_per_eval``."""
    model, x, region = case.model, case.x, case.region
    with torch.inference_mode():
        case.region_shape = _region_shape(model, x[:1], region)
    n_channel = case.n_lesion = case.region_shape[0]
    lesions = single_unit_lesions(n_channel)
    result = lesion_predictions(model, x, region, lesions, shortcut=False)
    case.pack, case.chunk, case.split_kind = result.pack_size, result.stimulus_chunk, result.split_kind
    case.upstream_batch = result.upstream_batch
    case.targets = result.intact_predictions
    case.shortcut = lesion_predictions(model, x, region, lesions).shortcut
    lesion_predictions(model, x, region, lesions, downstream=case.downstream)  # warm-up

    # the limit: every lesioned region output, built beforehand in the sweep's passes
    with torch.inference_mode():
        split = split_at(model, region, x[: min(case.n, 3)])
        frontier = _upstream(split, x, case.upstream_batch)
        inputs = []
        for start in range(0, case.n, case.chunk):
            stop = min(case.n, start + case.chunk)
            for first in range(0, n_channel, case.pack):
                m = min(case.pack, n_channel - first)
                values = {}
                for key, v in frontier.items():
                    v = v[start:stop]
                    packed = torch.empty((m * v.shape[0], *v.shape[1:]), dtype=v.dtype, memory_format=memory_format(v))
                    packed.view(m, *v.shape).copy_(v.unsqueeze(0).expand(m, *v.shape))
                    if key == split.region_key:
                        view = packed.view(m, *v.shape)
                        view[torch.arange(m), :, torch.arange(first, first + m)] = 0  # lesion i zeroes unit first + i
                    values[key] = packed
                inputs.append(values)
        case.split, case.limit_inputs = split, inputs
        # warm-up, and a check that the limit evaluates the same lesioned networks as the sweep
        limit_predictions = torch.empty(n_channel, case.n, dtype=torch.int64)
        passes = iter(inputs)
        for start in range(0, case.n, case.chunk):
            stop = min(case.n, start + case.chunk)
            for first in range(0, n_channel, case.pack):
                m = min(case.pack, n_channel - first)
                limit_predictions[first : first + m, start:stop] = split.downstream(next(passes)).argmax(1).reshape(m, stop - start)
        case.limit_agrees = torch.equal(limit_predictions, result.predictions)

    # the obvious loop: warm-up on one lesion
    obvious_predictions(model, x, region, lesions[:1])

    # captum: tune perturbations_per_eval on one batch
    for ppe in case.ppe_candidates:
        case.ppe_times[ppe] = timed(lambda: run_captum(case, case.captum_batch, ppe))
    case.ppe = min(case.ppe_times, key=case.ppe_times.__getitem__)


def _region_shape(model: nn.Module, x: torch.Tensor, region: str) -> tuple[int, ...]:
    out: list[torch.Tensor] = []
    handle = model.get_submodule(region).register_forward_hook(lambda m, i, o: out.append(o))
    try:
        model(x)
    finally:
        handle.remove()
    return tuple(out[0].shape[1:])


def _upstream(split: Any, x: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """The frontier of every stimulus, in the fast sweep's batches."""
    parts = [split.upstream(x[start : start + batch_size]) for start in range(0, x.shape[0], batch_size)]
    return {k: torch.cat([p[k] for p in parts]).contiguous(memory_format=memory_format(parts[0][k])) for k in parts[0]}


# ---------------------------------------------------------------- the four ways


def run_obvious(case: Case) -> torch.Tensor:
    lesions = single_unit_lesions(case.n_lesion)
    return obvious_predictions(case.model, case.x, case.region, [lesions[i] for i in case.obvious_subset])


def run_fast(case: Case, **options: Any) -> torch.Tensor:
    return lesion_predictions(case.model, case.x, case.region, single_unit_lesions(case.n_lesion), **options).predictions


def run_limit(case: Case) -> None:
    with torch.inference_mode():
        for values in case.limit_inputs:
            case.split.downstream(values)


def run_upstream(case: Case) -> None:
    with torch.inference_mode():
        _upstream(case.split, case.x, case.upstream_batch)


def run_captum(case: Case, n_stimuli: int, ppe: int) -> None:
    from captum.attr import LayerFeatureAblation

    model, layer = case.model, case.model.get_submodule(case.region)
    assert case.targets is not None
    # one feature per channel: (1, channel) for a linear region, (1, channel, 1, 1) for a conv one
    mask = torch.arange(case.n_lesion).reshape(1, case.n_lesion, *([1] * (len(case.region_shape) - 1)))
    for start in range(0, n_stimuli, case.captum_batch):
        stop = min(n_stimuli, start + case.captum_batch)
        targets = case.targets[start:stop]

        def forward(inputs: torch.Tensor) -> torch.Tensor:
            logits = model(inputs)
            copies = logits.shape[0] // targets.shape[0]  # captum repeats the batch (copy-major)
            return logits.gather(1, targets.repeat(copies)[:, None])[:, 0]

        with torch.inference_mode():
            LayerFeatureAblation(forward, layer).attribute(case.x[start:stop], layer_mask=mask, perturbations_per_eval=ppe)


# ---------------------------------------------------------------- rounds and report


def measure_round(cases: list[Case]) -> None:
    for case in cases:
        k = case.inner

        def per_call(fn: Callable[[], Any]) -> float:
            return timed(lambda: [fn() for _ in range(k)]) / k

        obvious_s = per_call(lambda: setattr(case, "_obvious", run_obvious(case)))
        fast_s = per_call(lambda: setattr(case, "_fast", run_fast(case)))
        agree = torch.equal(case._fast[case.obvious_subset], case._obvious)  # type: ignore[attr-defined]
        case.agree = agree if case.agree is None else (case.agree and agree)
        case.samples["obvious"].append(obvious_s * case.n_lesion / len(case.obvious_subset))
        case.samples["fast"].append(fast_s)
        case.samples["exact"].append(per_call(lambda: setattr(case, "_exact", run_fast(case, shortcut=False))))
        agree = torch.equal(case._exact[case.obvious_subset], case._obvious)  # type: ignore[attr-defined]
        case.exact_agrees = agree if case.exact_agrees is None else (case.exact_agrees and agree)
        case.samples["down"].append(per_call(lambda: run_fast(case, downstream=case.downstream)))
        case.samples["limit"].append(per_call(lambda: run_limit(case)))
        case.samples["upstream"].append(per_call(lambda: run_upstream(case)))
        case.samples["captum"].append(per_call(lambda: run_captum(case, case.captum_stimuli, case.ppe)) * case.n / case.captum_stimuli)


def target(value: float, bound: float, above: bool, applies: bool = True) -> str:
    """``<=1.3 PASS``, ``>=5 MISS``, or ``-`` where the target does not apply."""
    if not applies:
        return "-"
    ok = value >= bound if above else value <= bound
    return f"{'>=' if above else '<='}{bound:g} {'PASS' if ok else 'MISS'}"


def report(cases: list[Case]) -> None:
    header = (f"{'region':<22}{'lesions':>8}{'pack x chunk':>14}{'obvious s':>11}{'fast s':>9}{'exact s':>9}{'+down s':>9}"
              f"{'limit s':>9}{'upstream s':>11}{'captum s':>10}{'ppe':>5}  {'fast/limit':>10} {'target':<11}{'exact/limit':>12}"
              f"{'exact/(limit+up)':>17}{'obvious/fast':>14} {'target':<11}{'obvious/exact':>14}{'captum/fast':>12}  {'shortcut':<9}{'same preds':<12}")
    print(header)
    print("-" * len(header))
    for c in cases:
        med = {k: statistics.median(v) if v else float("nan") for k, v in c.samples.items()}
        ratio, speedup = med["fast"] / med["limit"], med["obvious"] / med["fast"]
        same = f"{'yes' if c.agree else 'NO'}/{'yes' if c.exact_agrees else 'NO'} ({len(c.obvious_subset)})"
        print(f"{c.label:<22}{c.n_lesion:>8}{f'{c.pack} x {c.chunk}':>14}{med['obvious']:>11.4f}{med['fast']:>9.4f}{med['exact']:>9.4f}"
              f"{med['down']:>9.4f}{med['limit']:>9.4f}{med['upstream']:>11.4f}{med['captum']:>10.4f}{c.ppe:>5}  {ratio:>10.2f} "
              f"{target(ratio, TARGET_LIMIT, False):<11}{med['exact'] / med['limit']:>12.2f}"
              f"{med['exact'] / (med['limit'] + med['upstream']):>17.2f}{speedup:>14.1f} {target(speedup, TARGET_SPEEDUP, True, c.late):<11}"
              f"{med['obvious'] / med['exact']:>14.1f}{med['captum'] / med['fast']:>12.1f}  {'yes' if c.shortcut else 'no':<9}{same:<12}")
    verdicts = [statistics.median(c.samples["fast"]) <= TARGET_LIMIT * statistics.median(c.samples["limit"]) for c in cases]
    verdicts += [statistics.median(c.samples["obvious"]) >= TARGET_SPEEDUP * statistics.median(c.samples["fast"]) for c in cases if c.late]
    print(f"\n{sum(verdicts)} of {len(verdicts)} speed targets met (fast sweep within {TARGET_LIMIT:g}x of the limit, every region; "
          f">= {TARGET_SPEEDUP:g}x faster than the obvious loop, late regions)")
    print("shortcut: whether the fast sweep (the default) updated the first linear layer instead of recomputing it")
    print("same preds: fast / exact against the obvious loop, on the lesions it ran; pack x chunk: the exact sweep's passes")
    print("the limit's lesioned inputs give the exact sweep's predictions: "
          + ", ".join(f"{c.label.split(' (')[0]} {'yes' if c.limit_agrees else 'NO'} ({c.split_kind} split)" for c in cases))
    print("+down measures the activity change of: " + "; ".join(f"{c.label.split(' (')[0]} -> {', '.join(c.downstream)}" for c in cases))
    print("captum perturbations_per_eval tuning (s per batch):")
    for c in cases:
        print(f"  {c.label:<22} batch {min(c.captum_batch, c.n):>4}: " + ", ".join(f"ppe {p}: {t:.3f}" for p, t in c.ppe_times.items()))
    print("\nsamples (s), in round order (obvious and captum scaled):")
    for c in cases:
        for i, (k, v) in enumerate((k, v) for k, v in c.samples.items() if v):
            print(f"  {c.label if i == 0 else '':<22} {k:<9} {' '.join(f'{t:.4f}' for t in v)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stimuli", type=int, default=None, help="random VGG inputs (default 512; 64 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="measured rounds (default 3; 1 with --quick)")
    parser.add_argument("--obvious-lesions", type=int, default=None,
                        help="VGG lesions the obvious loop runs, scaled (default 8; 2 with --quick)")
    parser.add_argument("--captum-stimuli", type=int, default=None, help="VGG stimuli captum runs, scaled (default 128; 16 with --quick)")
    parser.add_argument("--captum-batch", type=int, default=None, help="VGG stimuli per captum call (default 64; 16 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: few stimuli, few lesions, one round, no captum tuning")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    n_stimuli = args.n_stimuli or (64 if args.quick else 512)
    repeats = args.repeats or (1 if args.quick else 3)
    obvious_lesions = args.obvious_lesions or (2 if args.quick else 8)
    captum_batch = min(n_stimuli, args.captum_batch or (16 if args.quick else 64))
    captum_stimuli = min(n_stimuli, args.captum_stimuli or (16 if args.quick else 128))
    mlp_inner = 2 if args.quick else MLP_INNER

    import captum

    torch.manual_seed(args.seed)
    vgg = vgg_small(args.seed).eval()
    noise = torch.from_numpy(np.random.default_rng(args.seed).standard_normal((n_stimuli, 3, 32, 32), dtype=np.float32))
    mlp = load_zoo_subject("digits-mlp").model.eval()
    digits = torch.from_numpy(np.ascontiguousarray(DigitsSet("digits", "test").images(np.arange(454))))

    def spaced(n_lesion: int, k: int) -> list[int]:
        return sorted({int(i) for i in np.linspace(0, n_lesion - 1, min(k, n_lesion)).round()})

    cases = [
        Case("VGG block2 (middle)", vgg, noise, "block2", False, spaced(64, obvious_lesions), captum_stimuli, captum_batch, VGG_PPE,
             ["block3", "classifier.fc"]),
        Case("VGG block3 (late)", vgg, noise, "block3", True, spaced(128, obvious_lesions), captum_stimuli, captum_batch, VGG_PPE,
             ["classifier.fc", "classifier"]),
        Case("MLP fc2 (middle)", mlp, digits, "fc2", False, list(range(100)), 454, 454, MLP_PPE, ["fc3", "out"], mlp_inner),
        Case("MLP fc3 (late)", mlp, digits, "fc3", True, list(range(100)), 454, 454, MLP_PPE, ["out"], mlp_inner),
    ]
    if args.quick:  # no tuning: the largest value of each
        for c in cases:
            c.ppe_candidates = c.ppe_candidates[-1:]

    n_params = sum(p.numel() for p in vgg.parameters())
    print(f"neurorecord {neurorecord.__version__}, torch {torch.__version__}, captum {captum.__version__}: "
          f"{torch.get_num_threads()} threads on {os.cpu_count()} CPUs; {repeats} measured rounds, medians")
    print(f"VGG-style CNN: {n_params:,} parameters, random weights; {n_stimuli:,} random 3x32x32 inputs (seed {args.seed}); "
          f"obvious loop on {len(cases[0].obvious_subset)} of 64 / {len(cases[1].obvious_subset)} of 128 lesions, "
          f"captum on {captum_stimuli} stimuli in batches of {captum_batch}, both scaled")
    print(f"digits MLP: {len(digits)} test digits, every lesion and every stimulus in every approach; "
          f"each sample is the mean of {mlp_inner} calls")
    print("single-unit zero lesions of every channel; times are for all lesions over all stimuli\n")

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    for case in cases:
        prepare(case)
    print(f"preparation (first sweeps, limit inputs, captum tuning): {time.perf_counter() - t0:.1f} s")
    for _ in range(repeats):
        measure_round(cases)
    print()
    report(cases)
    print(f"\nload average (1 min): {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end "
          f"(this benchmark keeps about {torch.get_num_threads()} busy; more means other processes shared the CPUs)")


if __name__ == "__main__":
    main()
