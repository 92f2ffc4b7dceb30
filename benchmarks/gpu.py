"""Recording and a lesion sweep on a GPU: ratios to plain PyTorch on the same card, in one run.

Model: a ResNet-18 (BasicBlocks [2, 2, 2, 2], 64-512 channels, 1,000 outputs) built here in plain
torch with random weights (no torchvision, no download), eval mode, on 224 x 224 random images
(``--small``: 64 x 64 images, channels 16-128, for a CPU check of this script).

Measured, each in ``--rounds`` interleaved rounds (medians), after a warm-up:

1. **plain forward**: ``model(x)`` over ``--images`` host images in batches of ``--batch``, each
   pinned and uploaded asynchronously, under ``torch.inference_mode`` (the baseline: what a
   user's own loop does at its best; images per second);
2. **channel means of 4 regions** (``layer1`` .. ``layer4``): neurorecord's own recording loop,
   ``neurorecord.record.stream_batches`` (hooks, reduction on the device, pinned reused host
   buffers, asynchronous copies, a writer thread that copies each batch out as a store write
   does): ratio to 1 (issue target <= 1.05x);
3. **full layer2 maps** (``reduce: none``) through the same loop: ratio to 1 (target <= 1.10x);
4. **layer2 single-unit sweep**: ``--sweep-units`` layer2 channels (default 128) silenced one at a
   time on ``--sweep-images`` images (default 1,024) with ``neurorecord.lesion.prepared_sweep``,
   against (a) the downstream-only limit: layer2's output computed once, then layer3, layer4 and
   the head run on each lesioned copy in plain torch (the least work any sweep must do), and
   (b) the whole-network loop (a full forward per lesion). Ratio sweep / limit (target <= 1.1x);
   the predictions of the sweep and of the limit are checked equal.

``--dtype bfloat16`` runs 1-3 under ``torch.autocast`` (as ``record.dtype: bfloat16`` does; the
recorded values are bfloat16 values widened to float32: about 3 significant digits) and 4 with a
bfloat16 copy of the model and images.

Run (the GPU machine; nothing is downloaded)::

    python benchmarks/gpu.py --device cuda
    python benchmarks/gpu.py --device cuda --dtype bfloat16
    python benchmarks/gpu.py --device cpu --small          # seconds: checks the script itself
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.down(x))


class ResNet18(nn.Module):
    """ResNet-18 layout (He et al. 2016) at ``width`` channels in the first stage."""

    def __init__(self, width: int = 64, n_classes: int = 1000) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 7, 2, 3, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(Block(w[0], w[0], 1), Block(w[0], w[0], 1))
        self.layer2 = nn.Sequential(Block(w[0], w[1], 2), Block(w[1], w[1], 1))
        self.layer3 = nn.Sequential(Block(w[1], w[2], 2), Block(w[2], w[2], 1))
        self.layer4 = nn.Sequential(Block(w[2], w[3], 2), Block(w[3], w[3], 1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w[3], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x))))))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = 4 * mid
        self.body = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                                  nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                                  nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.down(x))


def resnet50_blocks() -> list[tuple[str, nn.Module]]:
    """ResNet-50 (torchvision's layout, v1.5 strides) as its stem and 16 bottleneck blocks, in order."""
    blocks: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1)))]
    cin = 64
    for stage, (mid, n, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1):
        for i in range(n):
            blocks.append((f"layer{stage}.{i}", Bottleneck(cin, mid, stride if i == 0 else 1)))
            cin = 4 * mid
    blocks.append(("head", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000))))
    return blocks


def estimate_resnet50(device: torch.device, batch: int, rounds: int, workers: list[int], n_images: int = 10_000) -> None:
    """A full single-unit (channel) sweep of every block output of ResNet-50 on ``n_images``:
    FLOPs of the downstream part per region (counted), throughput of a plain forward (measured
    here), and the wall time this implies on N such devices (lesions are independent)."""
    from torch.utils.flop_counter import FlopCounterMode

    blocks = resnet50_blocks()
    model = nn.Sequential(*[m for _, m in blocks]).to(device).eval()
    x = torch.rand(batch, 3, 224, 224, device=device)
    flops, h = [], x[:1]
    with torch.inference_mode():
        for name, module in blocks:
            with FlopCounterMode(display=False) as counter:
                h = module.to(device)(h)
            flops.append((name, counter.get_total_flops(), h.shape[1]))
        model(x)  # warm-up
        times = [timed(lambda: model(x), device) for _ in range(rounds)]
    per_image = statistics.median(times) / batch
    total_flops = sum(f for _, f, _ in flops)
    print(f"\nResNet-50 estimate: plain forward {1 / per_image:,.1f} img/s measured here (batch {batch}, median of {rounds}); "
          f"{total_flops / 1e9:.2f} GFLOP/image counted")
    lesion_seconds, n_lesions = 0.0, 0
    for i, (name, _, channels) in enumerate(flops[:-1]):
        downstream = sum(f for _, f, _ in flops[i + 1 :])
        seconds = channels * n_images * per_image * downstream / total_flops  # downstream-only limit, FLOP-proportional
        lesion_seconds += seconds
        n_lesions += channels
    print(f"  {n_lesions:,} single-channel lesions (every channel of the stem and the 16 block outputs) x {n_images:,} images: "
          f"{lesion_seconds / 3600:,.1f} device-hours at this throughput (downstream part only, FLOP-proportional)")
    for n in workers:
        print(f"  on {n} such device(s): {lesion_seconds / n / 3600:,.2f} h")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def batches(x: torch.Tensor, batch: int):
    for start in range(0, x.shape[0], batch):
        yield x[start : start + batch]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--small", action="store_true", help="64 x 64 images, narrow model: a quick CPU check")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--sweep-units", type=int, default=None)
    parser.add_argument("--sweep-images", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--estimate-resnet50", action="store_true",
                        help="only the ResNet-50 full-sweep estimate (docs/scale.md): FLOPs counted, throughput measured")
    args = parser.parse_args()
    if args.estimate_resnet50:
        estimate_resnet50(torch.device(args.device), args.batch or (4 if args.small else 64), args.rounds, [1, 8, 64])
        return
    from neurorecord.lesion import prepared_sweep
    from neurorecord.record import RegionTap

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    side, width = (64, 16) if args.small else (224, 64)
    n_images = args.images or (64 if args.small else 16384)
    batch = args.batch or (32 if args.small else 256)
    n_units = args.sweep_units or (8 if args.small else 128)
    n_sweep = args.sweep_images or (32 if args.small else 1024)
    torch.manual_seed(0)
    model = ResNet18(width).to(device=device).eval()  # float32 weights; bfloat16 runs under autocast, as record.dtype does
    x = torch.rand(n_images, 3, side, side)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    print(f"device: {name}; torch {torch.__version__}; {args.dtype}; ResNet-18 width {width}, {side}x{side} images, "
          f"{n_images} images in batches of {batch}; load average {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")
    regions = ["layer1", "layer2", "layer3", "layer4"]

    def plain() -> None:
        with torch.inference_mode():
            for b in batches(x, batch):
                model(b)

    from neurorecord.record import PresentationPlan, TrialVariability, stream_batches
    from neurorecord.stimuli.base import StimulusSet

    class HostImages(StimulusSet):
        """The benchmark's images as a stimulus set: host float32, what a real set's images are."""

        def __init__(self, images: np.ndarray) -> None:
            self.name, self.data, self.image_shape = "random", images, images.shape[1:]

        def __len__(self) -> int:
            return len(self.data)

        def parameters(self) -> dict[str, np.ndarray]:
            return {"stimulus_id": np.arange(len(self.data)).astype(str)}

        def images(self, index: np.ndarray) -> np.ndarray:
            return self.data[index]

    host_x = x.float().cpu().numpy()
    plan = PresentationPlan([HostImages(host_x)])
    with torch.inference_mode(), RegionTap(model, regions) as tap:
        shapes = {r: tuple(o.shape[1:]) for r, o in tap(x[:1].to(device)).items()}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16")
    kept: dict[str, np.ndarray] = {}

    def keep(batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
        for r, b in buffers.items():  # the writer thread: a copy out of the reused buffer, as a store write does
            kept[r] = b[: stop - start].copy()

    pinned = torch.from_numpy(host_x).pin_memory() if device.type == "cuda" else torch.from_numpy(host_x)

    def plain() -> None:  # the user's own loop at its best: images pinned once, uploaded asynchronously
        with torch.inference_mode(), autocast:
            for b in batches(pinned, batch):
                model(b.to(device, non_blocking=True))
        sync(device)

    def record_means() -> None:
        stream_batches(model, plan, {r: (shapes[r][0],) for r in regions}, "mean", TrialVariability(None, 0, n_images),
                       device, 0, batch, 0, keep, quiet=True, dtype=args.dtype)

    def record_maps() -> None:
        flat = int(np.prod(shapes["layer2"]))
        stream_batches(model, plan, {"layer2": (flat,)}, "none", TrialVariability(None, 0, n_images), device, 0, batch, 0,
                       keep, quiet=True, dtype=args.dtype)

    sweep_model = copy.deepcopy(model).to(dtype)  # the sweep runs in the model's own dtype
    xs = x[:n_sweep].to(device=device, dtype=dtype)
    units = list(range(n_units))

    def limit() -> torch.Tensor:
        preds = []
        with torch.inference_mode():
            h = torch.cat([sweep_model.layer2(sweep_model.layer1(sweep_model.stem(b))) for b in batches(xs, batch)])
            rest = nn.Sequential(sweep_model.layer3, sweep_model.layer4, sweep_model.head)
            for u in units:
                for b in batches(h, batch):
                    lesioned = b.clone()
                    lesioned[:, u] = 0
                    preds.append(rest(lesioned).argmax(1))
        return torch.cat(preds).view(n_units, -1)

    def whole() -> None:
        with torch.inference_mode():
            for u in units:
                handle = sweep_model.layer2.register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u], device=o.device), 0))
                try:
                    for b in batches(xs, batch):
                        sweep_model(b)
                finally:
                    handle.remove()

    swept: list[torch.Tensor] = []

    def sweep() -> None:
        swept.clear()
        with prepared_sweep(sweep_model, xs, "layer2", device=device) as s:
            swept.append(s.run(units).predictions)

    cases = {"plain forward": plain, "channel means, 4 regions": record_means, "full layer2 maps": record_maps,
             "sweep limit (downstream only)": limit, "layer2 sweep (neurorecord)": sweep, "whole-network loop": whole}
    for fn in cases.values():  # warm-up (cuDNN autotuning, allocator, first hooks)
        fn()
    results: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for key, fn in cases.items():
            results[key].append(timed(fn, device))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{'case':<32} {'median s':>9} {'ratio':>7}  target")
    print(f"{'plain forward':<32} {med['plain forward']:9.3f} {1.0:7.2f}  ({n_images / med['plain forward']:,.0f} img/s)")
    for key, target in (("channel means, 4 regions", 1.05), ("full layer2 maps", 1.10)):
        ratio = med[key] / med["plain forward"]
        print(f"{key:<32} {med[key]:9.3f} {ratio:7.2f}  <= {target} {'PASS' if ratio <= target else 'MISS'}")
    print(f"\nlayer2 sweep: {n_units} channels x {n_sweep} images")
    print(f"{'sweep limit (downstream only)':<32} {med['sweep limit (downstream only)']:9.3f} {1.0:7.2f}")
    ratio = med["layer2 sweep (neurorecord)"] / med["sweep limit (downstream only)"]
    print(f"{'layer2 sweep (neurorecord)':<32} {med['layer2 sweep (neurorecord)']:9.3f} {ratio:7.2f}  <= 1.1 {'PASS' if ratio <= 1.1 else 'MISS'}")
    print(f"{'whole-network loop':<32} {med['whole-network loop']:9.3f} {med['whole-network loop'] / med['sweep limit (downstream only)']:7.2f}")
    same = torch.equal(swept[0].cpu(), limit().cpu())
    print(f"sweep predictions equal to the limit's: {same}")
    print(f"load average at the end {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
