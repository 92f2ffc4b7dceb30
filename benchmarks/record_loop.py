"""The recording loop alone, in one process: ``stream_batches`` against the plain forward pass.

``record_overhead.py`` times whole runs (store creation, manifest, opening the result, fresh
processes); this script isolates the batch loop that scales with the stimuli. The VGG-style CNN
(``vgg.py``, random weights) sees the 1,797 digits as 3x32x32 from a ``.npy`` file, in batches of
256, recording ``block1``..``block3`` with ``reduce: mean`` (and the behaviour) or ``reduce:
none`` (full maps). Cases, interleaved over ``--rounds`` rounds (medians and ratios printed):

* **plain forward**: the model over the memory-mapped images, batch by batch (the baseline);
* **stream_batches -> nothing**: neurorecord's loop (hooks, reductions, reused buffers, writer
  thread), the writer doing nothing: what the loop costs before any writing;
* **stream_batches -> numpy**: the same, the writer copying each batch into numpy arrays;
* **stream_batches -> zarr**: the same writing into zarr arrays laid out as the store lays them
  out (chunks of ``record.batches_per_chunk: auto`` batches: 4 with channel means, 1 with maps;
  for maps, shards of 512-unit inner chunks), lz4, through the store's ``RowWriter`` (a chunk's
  arrays in one trip to zarr), and the run state written after each chunk;
* **stream_batches -> zarr, a chunk per batch** (channel means): the layout before
  ``batches_per_chunk``, one write per array per batch.

Run from the repository root::

    python benchmarks/record_loop.py              # 5 rounds, about 2 minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interleaved import time_interleaved  # noqa: E402
from vgg import vgg_small  # noqa: E402  benchmarks/ holds the model

BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import zarr

    from neurorecord import store
    from neurorecord.record import PresentationPlan, RegionTap, TrialVariability, stream_batches
    from neurorecord.record.stream import batches_per_chunk
    from neurorecord.stimuli import NpySet, load_digits_array

    folder = Path(tempfile.mkdtemp(prefix="neurorecord-loop-", dir="/tmp"))
    images, _ = load_digits_array()
    big = np.kron(images[:, 0], np.ones((4, 4), dtype=np.float32))[:, None].repeat(3, axis=1)
    np.save(folder / "digits.npy", np.ascontiguousarray(big))
    n = len(big)
    torch.manual_seed(0)
    model = vgg_small().eval()
    plan = PresentationPlan([NpySet("digits", folder / "digits.npy")])
    regions = ["block1", "block2", "block3"]
    with torch.inference_mode(), RegionTap(model, regions) as tap:
        probe = tap(torch.from_numpy(plan.images(0, 2)))
    shapes = {"mean": {r: (o.shape[1],) for r, o in probe.items()},
              "none": {r: (int(np.prod(o.shape[1:])),) for r, o in probe.items()}}

    def plain() -> None:
        mapped = np.load(folder / "digits.npy", mmap_mode="r")
        with torch.inference_mode():
            for s in range(0, n, BATCH):
                model(torch.from_numpy(np.array(mapped[s:s + BATCH], dtype=np.float32)))

    def to_nothing(reduce: str) -> None:
        stream_batches(model, plan, shapes[reduce], reduce, TrialVariability(None, 0, n), torch.device("cpu"), 0, BATCH, 0,
                       lambda *args: None, behaviour=10, quiet=True)

    def to_numpy(reduce: str) -> None:
        out = {r: np.empty((n, *sh), np.float32) for r, sh in shapes[reduce].items()}

        def write(batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
            for r in out:
                out[r][start:stop] = buffers[r][: stop - start]

        stream_batches(model, plan, shapes[reduce], reduce, TrialVariability(None, 0, n), torch.device("cpu"), 0, BATCH, 0,
                       write, behaviour=10, quiet=True)

    def to_zarr(reduce: str, per_chunk: int | None = None) -> None:
        widest = max(4 * width for (width,) in shapes[reduce].values())
        k = per_chunk or batches_per_chunk("auto", BATCH, widest, -(-n // BATCH))  # as the store chooses
        rows = k * BATCH
        shutil.rmtree(folder / "z", ignore_errors=True)
        group = zarr.open_group(folder / "z", mode="w")
        arrays = {}
        for r, (width,) in shapes[reduce].items():
            wide = width > store.UNIT_CHUNK
            arrays[r] = group.create_array(
                r, shape=(n, width), dtype="f4", compressors=store.float_codecs("lz4"),
                chunks=(rows, store.UNIT_CHUNK) if wide else (rows, width),
                shards=(rows, -(-width // store.UNIT_CHUNK) * store.UNIT_CHUNK) if wide else None,
            ).with_config({"write_empty_chunks": True})
        arrays["output"] = group.create_array("output", shape=(n, 10), chunks=(rows, 10), dtype="f4").with_config(
            {"write_empty_chunks": True})

        writer = store.RowWriter(arrays)

        def write(batch: int, start: int, stop: int, buffers: dict[str, np.ndarray]) -> None:
            writer.write(start, stop, {**{r: buffers[r][: stop - start] for r in shapes[reduce]},
                                       "output": buffers["behaviour/output"][: stop - start]})
            group.attrs.update({"batches_done": batch + 1})  # as the run state is written after each chunk

        stream_batches(model, plan, shapes[reduce], reduce, TrialVariability(None, 0, n), torch.device("cpu"), 0, BATCH, 0,
                       write, behaviour=10, quiet=True, batches_per_chunk=k)

    cases = {"plain forward": plain}
    for reduce in ("mean", "none"):
        cases[f"reduce {reduce}: stream_batches -> nothing"] = lambda reduce=reduce: to_nothing(reduce)
        cases[f"reduce {reduce}: stream_batches -> numpy"] = lambda reduce=reduce: to_numpy(reduce)
        cases[f"reduce {reduce}: stream_batches -> zarr"] = lambda reduce=reduce: to_zarr(reduce)
    cases["reduce mean: -> zarr, a chunk per batch"] = lambda: to_zarr("mean", 1)
    for fn in cases.values():
        fn()  # warm-up
    print(f"machine: {os.cpu_count()} CPUs, load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); {n} stimuli, batch {BATCH}; {args.rounds} interleaved rounds")
    times = time_interleaved(cases, args.rounds)
    base = statistics.median(times["plain forward"])
    print(f"\n{'case':<40} {'median s':>8} {'ratio':>6}  samples")
    for name, values in times.items():
        print(f"{name:<40} {statistics.median(values):8.3f} {statistics.median(values) / base:6.2f}  "
              f"{' '.join(f'{v:.2f}' for v in values)}")
    print(f"load average at the end {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
