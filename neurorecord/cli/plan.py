"""What a run will cost, estimated from a prepared experiment: store size, peak memory, lesion work.

``neurorecord validate`` prints these lines after the plan. Every number comes from the
:class:`~neurorecord.experiment.Experiment` (plan length, image shape, each region's output
shape and unit count, batch size), so nothing is recorded to compute it.

>>> import neurorecord
>>> est = estimate(neurorecord.prepare(neurorecord.default_protocol_path()))
>>> est.activity_bytes, est.batch, est.image_batch_bytes
(544800, 256, 65536)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np
import torch

from ..protocol.schema import EachUnits
from ..experiment import Experiment
from ..record.regions import RegionTap
from ..subjects.base import eval_mode

__all__ = ["LesionWork", "PlanEstimate", "estimate", "format_bytes"]

#: Bytes of one stored or computed value (activity and images are float32).
FLOAT32 = 4


@dataclass(frozen=True)
class LesionWork:
    """One ``lesions:`` entry: how many lesions, each evaluated on how many stimuli of which set."""

    name: str
    region: str
    lesions: int
    stimuli: int
    stimulus_set: str

    @property
    def evaluations(self) -> int:
        """Lesioned presentations: every lesion shown every evaluation stimulus."""
        return self.lesions * self.stimuli


@dataclass(frozen=True)
class PlanEstimate:
    """Sizes in bytes of what recording a protocol writes and holds in memory.

    Peak memory counts the recording's own buffers: for one batch, the images and every region's
    raw output; two host buffers per region for a stored chunk of (reduced) activity (one being
    filled, one being written); and the subject's weights. The forward pass's other intermediate tensors come
    on top (one layer's output at a time, in inference mode).
    """

    activity_bytes: int
    coordinate_bytes: int
    batch: int
    image_batch_bytes: int
    output_batch_bytes: int
    buffer_bytes: int
    weight_bytes: int
    lesions: list[LesionWork] = field(default_factory=list)
    compression: str = "lz4"

    @property
    def disk_bytes(self) -> int:
        """Uncompressed size of the store: activity plus coordinates."""
        return self.activity_bytes + self.coordinate_bytes

    @property
    def peak_bytes(self) -> int:
        """Images + region outputs (one batch) + two write buffers (one chunk each) + weights."""
        return self.image_batch_bytes + self.output_batch_bytes + self.buffer_bytes + self.weight_bytes

    def lines(self) -> list[str]:
        """The estimate as ``neurorecord validate`` prints it."""
        out = [
            f"disk     about {format_bytes(self.disk_bytes)} uncompressed: activity {format_bytes(self.activity_bytes)} + "
            f"coordinates {format_bytes(self.coordinate_bytes)}; " + _COMPRESSION_NOTE[self.compression],
            f"memory   about {format_bytes(self.peak_bytes)} at peak while recording: images {format_bytes(self.image_batch_bytes)} "
            f"(batch of {self.batch}) + region outputs {format_bytes(self.output_batch_bytes)} + 2 write buffers "
            f"{format_bytes(self.buffer_bytes)} + weights {format_bytes(self.weight_bytes)}",
        ]
        for work in self.lesions:
            out.append(
                f"lesions  {work.name}: {work.lesions:,} lesions of {work.region} x {work.stimuli:,} stimuli "
                f"({work.stimulus_set}) = {work.evaluations:,} lesioned evaluations"
            )
        if len(self.lesions) > 1:
            out.append(f"lesions  total {sum(w.evaluations for w in self.lesions):,} lesioned evaluations")
        return out


#: What ``validate`` says about the store's size under each ``record.compression``.
_COMPRESSION_NOTE = {
    "none": "record.compression: none stores activity at this size",
    "lz4": "compression (record.compression: lz4, Blosc) usually makes the store smaller, by an amount that depends on "
           "the activity (zeros compress well)",
    "zstd": "compression (record.compression: zstd, Blosc) usually makes the store smaller, by an amount that depends on "
            "the activity (zeros compress well)",
}


def format_bytes(n: int) -> str:
    """Bytes in decimal units with one decimal (``544.8 kB``).

    >>> format_bytes(544800), format_bytes(999), format_bytes(2_500_000_000)
    ('544.8 kB', '999 B', '2.5 GB')
    """
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def _coordinate_bytes(columns: dict[str, np.ndarray]) -> int:
    """Size of coordinate arrays: numbers at their width, text at its UTF-8 length."""
    total = 0
    for values in columns.values():
        values = np.asarray(values)
        if values.dtype == object or values.dtype.kind in "US":
            total += sum(len(str(v).encode("utf-8")) for v in values)
        else:
            total += values.nbytes
    return total


def _units_of(exp: Experiment, region: str) -> int:
    """Units (channels) of a region's output: from its layout if recorded, else from one probe image."""
    if region in exp.layouts:
        return int(exp.layouts[region].output_shape[0])
    with eval_mode(exp.subject.model), RegionTap(exp.subject.model, [region]) as tap, torch.inference_mode():
        return int(tap(torch.from_numpy(exp.plan.images(0, 1)).to(exp.device))[region].shape[1])


def estimate(exp: Experiment) -> PlanEstimate:
    """Store size, peak recording memory and lesion work of a prepared experiment."""
    rec = exp.protocol.record
    n, steps = len(exp.plan), exp.time_steps or 1
    batch = min(rec.batch_size, n)
    chunk = min(rec.batch_size * exp.batches_per_chunk, n)  # the write buffers hold a stored chunk
    layouts = exp.layouts.values()
    presentation_coords = _coordinate_bytes(exp.plan.coords())
    sets = {s.name: len(s) for s in exp.plan.sets}
    lesions = []
    for spec in exp.protocol.lesions:
        units = spec.units
        count = (
            _units_of(exp, spec.region) if units == "all"
            else len(units.each) if isinstance(units, EachUnits)
            else 1 + spec.controls  # one group lesion and its matched controls
        )
        lesions.append(LesionWork(spec.name, spec.region, count, sets[spec.evaluate], spec.evaluate))
    model = exp.subject.model
    return PlanEstimate(
        activity_bytes=sum(FLOAT32 * n * lay.n_neuroid * steps for lay in layouts),
        coordinate_bytes=sum(presentation_coords + _coordinate_bytes(lay.coords) for lay in layouts),
        batch=batch,
        image_batch_bytes=FLOAT32 * batch * steps * prod(exp.plan.image_shape),
        output_batch_bytes=sum(FLOAT32 * batch * steps * prod(lay.output_shape) for lay in layouts),
        buffer_bytes=sum(2 * FLOAT32 * chunk * steps * lay.n_neuroid for lay in layouts),
        weight_bytes=sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]),
        lesions=lesions,
        compression=rec.compression,
    )
