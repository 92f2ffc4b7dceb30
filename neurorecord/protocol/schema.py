"""The protocol format (version 1) as pydantic models.

A protocol is the whole record of an experiment: which subject, which stimuli, which regions,
how they are recorded. :func:`neurorecord.load_protocol` reads a YAML file into a
:class:`Protocol`; these classes are the schema it is checked against.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, NonNegativeInt, PositiveInt, PrivateAttr, model_validator

from ._base import Preprocess, StimulusBase
from ._base import Strict as _Strict
from .loaded import LOADED_SPECS
from .parametric import PARAMETRIC_SPECS
from .analyses import (  # noqa: F401  (re-exported: the protocol format in one namespace)
    RegionNames,
    TuningCurveAnalysis,
    UnitTestAnalysis,
    RayleighAnalysis,
    SELECTIVITY_INDICES,
    RULE_INDICES,
    SelectivityAnalysis,
    VonMisesAnalysis,
    EACH,
    PopulationAnalysis,
    COMPARE_MEASURES,
    ComparisonReference,
    ComparisonAnalysis,
    AnalysisSpec,
    ANALYSIS_KINDS,
)
from .study import ClusteringChoice, FunctionalPopulationsStudy, StudySpec, check_study_entries

FORMAT_VERSION = 1

__all__ = [
    "FORMAT_VERSION",
    "Protocol",
    "SubjectSpec",
    "DigitsStimuli",
    "NpyStimuli",
    "StimulusSpec",
    "StimulusBase",
    "Preprocess",
    "RecordSpec",
    "TimeSpec",
    "Variability",
    "STIMULUS_KINDS",
    "AnalysisSpec",
    "ANALYSIS_KINDS",
    "ComparisonAnalysis",
    "ComparisonReference",
    "COMPARE_MEASURES",
    "SELECTIVITY_INDICES",
    "RULE_INDICES",
    "LesionSpec",
    "StudySpec",
    "FunctionalPopulationsStudy",
    "ClusteringChoice",
]


class SubjectSpec(_Strict):
    """Where the network comes from: exactly one of ``zoo``, ``entry_point``, ``torchscript``.

    ``state_dict`` loads weights (``torch.load(..., weights_only=True)``) into the module that
    ``entry_point`` builds. Paths are relative to the protocol file's folder.
    """

    zoo: str | None = Field(None, description="Name of a zoo subject, e.g. 'digits-mlp'.")
    entry_point: str | None = Field(
        None, description="'module:callable' returning a torch.nn.Module; module looked up in the protocol's folder first."
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the entry point.")
    python_path: str | None = Field(
        None, description="Folder (relative to the protocol's) where the entry point's module is looked up first; default: the protocol's folder."
    )
    state_dict: str | None = Field(None, description="Weights file for the entry point's module (loaded with weights_only=True).")
    torchscript: str | None = Field(None, description="TorchScript file (torch.jit.save).")

    @model_validator(mode="after")
    def _one_source(self) -> "SubjectSpec":
        given = [k for k in ("zoo", "entry_point", "torchscript") if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none of them"
            raise ValueError(f"give exactly one of 'zoo', 'entry_point', 'torchscript' (found {found})")
        if self.state_dict is not None and self.entry_point is None:
            raise ValueError("'state_dict' needs 'entry_point' to build the architecture the weights go into")
        if self.kwargs and self.entry_point is None:
            raise ValueError("'kwargs' is only used with 'entry_point'")
        if self.python_path is not None and self.entry_point is None:
            raise ValueError("'python_path' is only used with 'entry_point'")
        return self


class DigitsStimuli(StimulusBase):
    """scikit-learn's 8x8 handwritten digits (1,797 images, pixel values scaled to [0, 1]).

    The split is fixed and stratified: within each digit class, every fourth image (in the
    dataset's order) is held out as ``test``; the rest is ``train``.
    """

    kind: Literal["digits"]
    split: Literal["test", "train", "all"] = Field("test", description="Which images: the held-out test split (every 4th per class), train, or all 1,797.")


class NpyStimuli(StimulusBase):
    """Images from a ``.npy`` file of shape (n, channels, height, width) or (n, height, width).

    Read memory-mapped, so a set larger than RAM streams. ``labels`` optionally names a ``.npy``
    file of n integers, recorded as the ``label`` coordinate.
    """

    kind: Literal["npy"]
    path: str = Field(..., description=".npy file of shape (n, C, H, W) or (n, H, W), relative to the protocol's folder.")
    labels: str | None = Field(None, description=".npy file of n integers, recorded as the `label` coordinate.")


_STIMULUS_MODELS: tuple[type[BaseModel], ...] = (DigitsStimuli, NpyStimuli, *LOADED_SPECS, *PARAMETRIC_SPECS)
StimulusSpec = Annotated[Union[_STIMULUS_MODELS], Field(discriminator="kind")]  # type: ignore[valid-type]
#: Every stimulus ``kind`` and its spec model.
STIMULUS_KINDS: dict[str, type[BaseModel]] = {
    kind: model for model in _STIMULUS_MODELS for kind in model.model_fields["kind"].annotation.__args__
}


class TimeSpec(_Strict):
    """Time-resolved presentation for recurrent and sequence subjects.

    Every presentation lasts ``steps`` time steps; the stimulus is shown during steps
    ``onset`` to ``offset - 1`` and blank frames (every pixel ``blank``) come before and after. A
    static image is repeated on every stimulus step; a sequence set (a drifting grating) must have
    exactly ``offset - onset`` frames. The subject receives (batch, steps, channels, height,
    width) and every recorded region must output (batch, steps, ...); the store gets a
    ``time_bin`` dim with ``time_bin_start`` / ``time_bin_end`` in ms after stimulus onset.
    """

    steps: PositiveInt = Field(..., description="Time steps per presentation.")
    onset: int = Field(..., ge=0, description="First step showing the stimulus (steps before it are blank).")
    offset: PositiveInt = Field(..., description="First blank step after the stimulus (exclusive end of the stimulus epoch).")
    step_ms: float = Field(10.0, gt=0, description="Duration one step stands for, in ms (sets time_bin_start/end).")
    blank: float = Field(0.0, description="Pixel value of the blank frames.")

    @model_validator(mode="after")
    def _epochs_fit(self) -> "TimeSpec":
        if not self.onset < self.offset <= self.steps:
            raise ValueError(
                f"expected 0 <= onset < offset <= steps, found onset {self.onset}, offset {self.offset}, steps {self.steps}"
            )
        return self


class DropoutNoise(_Strict):
    """Units of ``region`` silenced at random on each presentation, as neural noise."""

    region: str = Field(..., description="Module whose output units are dropped.")
    p: float = Field(..., gt=0, lt=1, description="Probability that a unit is silenced on a presentation.")
    rescale: bool = Field(True, description="Multiply kept units by 1/(1-p), so the mean activity is unchanged.")


class Variability(_Strict):
    """Trial-to-trial variability, drawn independently for every presentation from the protocol's seed.

    Applied in this order: jitter (the image shifted by whole pixels, uncovered pixels set to
    ``fill``), input noise (Gaussian, added to every pixel of every frame), dropout (in a region).
    """

    input_noise: float = Field(0.0, ge=0, description="Standard deviation of Gaussian noise added to every pixel (image units).")
    jitter: int = Field(0, ge=0, description="Largest shift in pixels; x and y shifts are uniform integers in [-jitter, jitter].")
    fill: float = Field(0.0, description="Value of pixels uncovered by a jitter shift.")
    dropout: DropoutNoise | None = Field(None, description="Dropout in a region as neural noise.")


class RecordSpec(_Strict):
    """What is recorded and how."""

    regions: RegionNames = Field(..., min_length=1, description="Module names from model.named_modules().")
    batch_size: PositiveInt = Field(256, description="Presentations per forward pass.")
    batches_per_chunk: Literal["auto"] | PositiveInt = Field(
        "auto",
        description="Batches per stored chunk (along presentation), the unit of progress for --resume; auto: enough "
        "batches for chunks of about 1 MiB in the widest array, at most 8 (narrow regions are written in fewer, larger "
        "pieces), 1 where a batch already fills that.",
    )
    reduce: Literal["mean", "max", "center", "none"] = Field(
        "mean", description="Spatial reduction of conv outputs; 'none' keeps one unit per channel and position."
    )
    repetitions: PositiveInt = Field(1, description="Times each stimulus is presented.")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto (cuda if available), cpu, cuda or cuda:N.")
    variability: Variability | None = Field(None, description="Trial-to-trial variability (noise, jitter, dropout).")
    time: TimeSpec | None = Field(None, description="Time-resolved presentation (recurrent and sequence subjects).")
    behaviour: bool = Field(
        True,
        description="Record the subject's own output per presentation (output vector, predicted class, and whether it is "
        "correct where the stimuli have a label) in the store's 'behaviour' node; needs an output of shape (batch, classes).",
    )
    compression: Literal["none", "lz4", "zstd"] = Field(
        "lz4",
        description="Codec of the stored activity chunks: none (raw float32: no compression work, the largest store), lz4 "
        "(Blosc LZ4: little CPU, smaller where activity has zeros) or zstd (Blosc Zstandard: the smallest store, the most "
        "CPU); lossless, so every codec stores the same values.",
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="Precision of the forward pass: float32, or bfloat16 under torch.autocast (faster on GPUs with bfloat16 "
        "units; the weights are not changed). Activity is stored as float32 either way; bfloat16 keeps about 3 significant "
        "digits (docs/scale.md#bfloat16).",
    )
    compression_level: int | None = Field(
        None, ge=1, le=9,
        description="Blosc compression level of lz4 or zstd, 1 (fastest) to 9 (smallest); default 1. Not allowed with "
        "compression: none.",
    )

    @model_validator(mode="after")
    def _unique_regions(self) -> "RecordSpec":
        seen = [r for i, r in enumerate(self.regions) if r in self.regions[:i]]
        if seen:
            raise ValueError(f"region listed twice: {seen[0]!r}")
        return self

    @model_validator(mode="after")
    def _level_needs_a_codec(self) -> "RecordSpec":
        if self.compression == "none" and self.compression_level is not None:
            raise ValueError(f"compression_level: a level applies to lz4 or zstd, found compression: none with "
                             f"compression_level: {self.compression_level}; drop the level, or choose lz4 or zstd")
        return self


class EachUnits(_Strict):
    """``{each: [3, 17]}``: each listed unit lesioned alone."""

    each: list[int] = Field(..., min_length=1, description="Unit (channel) indices of the region, each lesioned alone.")


class PopulationUnits(_Strict):
    """``{population: NAME}``: the members of a population defined in ``analyses:`` (same region)."""

    population: str = Field(..., description="Name of a `kind: population` analysis of the same region.")


class FractionUnits(_Strict):
    """``{fraction: 0.25}``: a seeded random fraction of the region's units, lesioned together."""

    fraction: float = Field(..., gt=0, le=1, description="Fraction of the region's units, drawn at random from the protocol's seed.")


class LesionSpec(_Strict):
    """A lesion experiment: which units of a region, how they are silenced, what is evaluated."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    region: str = Field(..., description="Module whose output is lesioned (units: its channels).")
    units: Literal["all", "region"] | list[int] | EachUnits | PopulationUnits | FractionUnits = Field(
        "all", description="'all' (each unit alone), {each: [...]}, [..] (one group), {population: NAME}, {fraction: f}, 'region'."
    )
    method: Literal["zero", "mean", "noise", "clamp"] = "zero"
    value: float = Field(0.0, description="Output of clamped units (method: clamp).")
    std: float = Field(1.0, gt=0, description="Standard deviation of the noise (method: noise), in the region's output units.")
    evaluate: str = Field(..., description="Stimulus set evaluated; its `label` coordinate gives the true classes.")
    reference: str | None = Field(None, description="Stimulus set whose mean output replaces units (method: mean); default: evaluate.")
    controls: int = Field(0, ge=0, description="Matched random lesions of as many units of the region, per group target.")
    n_boot: int = Field(1000, ge=0, description="Bootstrap resamples for the confidence interval of the accuracy change.")
    correction: Literal["fdr_bh", "bonferroni"] = "fdr_bh"
    shortcut: bool = Field(
        True,
        description="Update the first linear layer after the region by the lesioned unit's own contribution instead of "
        "recomputing it, where that applies (single-unit zero/mean/clamp lesions, a sequential model; equal to float rounding, "
        "see lesion.md); false recomputes every layer after the region.",
    )
    downstream: list[str] = Field(
        default_factory=list,
        description="Modules downstream of `region` (recorded or not) whose change in activity under each lesion is measured: "
        "`activity_change` (lesion x downstream), `unit_change` and `unit_abs_change` (lesion x neuroid); see lesion.md.",
    )

    @model_validator(mode="after")
    def _downstream_once(self) -> "LesionSpec":
        listed = self.units if isinstance(self.units, list) else self.units.each if isinstance(self.units, EachUnits) else None
        if listed is not None:
            if not listed:
                raise ValueError("units: an empty list lesions nothing; list at least one unit, or use 'all' or 'region'")
            repeated = sorted({u for i, u in enumerate(listed) if u in listed[:i]})
            if repeated:
                raise ValueError(f"units: unit {repeated[0]} is listed twice; list each unit once (a group of "
                                 f"{len(listed)} entries would silence {len(set(listed))} units but draw controls of {len(listed)})")
        twice = [r for i, r in enumerate(self.downstream) if r in self.downstream[:i]]
        if twice:
            raise ValueError(f"downstream: {twice[0]!r} is listed twice; list each region once")
        if self.region in self.downstream:
            raise ValueError(f"downstream: {self.region!r} is the lesioned region itself; list the modules after it")
        return self


class Protocol(_Strict):
    """A validated protocol. Build it with :func:`neurorecord.load_protocol`.

    Besides its fields it knows the file it came from (:attr:`path`), that file's text
    (:attr:`text`) and sha256 (:attr:`sha256`); relative paths in it resolve against
    :attr:`folder`.
    """

    neurorecord: Literal[1] = Field(..., description="Protocol format version.")
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Name of the experiment (letters, digits, '_', '.', '-').")
    seed: NonNegativeInt = Field(0, description="Seed of every random draw (trial variability, noise stimuli, bootstraps, lesion controls).")
    subject: SubjectSpec = Field(..., description="The network recorded.")
    stimuli: list[StimulusSpec] = Field(..., min_length=1, description="Stimulus sets, shown in this order; one `kind` each.")
    record: RecordSpec = Field(..., description="Regions recorded and how.")
    analyses: list[AnalysisSpec] = Field(default_factory=list, description="Analyses run on the recording; results go under analyses/<region>/<name>.")
    lesions: list[LesionSpec] = Field(default_factory=list, description="Lesion experiments; results go under lesions/<name>.")
    study: list[StudySpec] = Field(
        default_factory=list, description="Studies run after the lesions (kind: functional_populations); results go under analyses/<region>/<name>."
    )

    _path: Path | None = PrivateAttr(None)
    _text: str = PrivateAttr("")
    _root: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _unique_set_names(self) -> "Protocol":
        for key, entries in (("stimuli", self.stimuli), ("analyses", self.analyses), ("lesions", self.lesions)):
            names = [entry.name for entry in entries]
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise ValueError(f"{key}[{i}].name: {name!r} is already the name of {key}[{names.index(name)}]; names must be unique")
        sets = [st.name for st in self.stimuli]
        for i, lesion in enumerate(self.lesions):
            for key in ("evaluate", "reference"):
                value = getattr(lesion, key)
                if value is not None and value not in sets:
                    raise ValueError(f"lesions[{i}].{key}: {value!r} is not a stimulus set of this protocol; sets: {', '.join(sets)}")
            if isinstance(lesion.units, PopulationUnits):
                populations = [a for a in self.analyses if a.kind == "population" and lesion.region in self.analysis_regions(a)]
                defined = [a.name + ("-<level>" if a.condition == EACH else "") for a in populations]
                each = [a.name for a in populations if a.condition == EACH]
                named = lesion.units.population
                if named not in defined and not any(named.startswith(f"{name}-") for name in each):
                    raise ValueError(
                        f"lesions[{i}].units: population {lesion.units.population!r} is not defined for region {lesion.region!r} "
                        f"in analyses; populations there: {', '.join(defined) or 'none'}"
                    )
        for i, analysis in enumerate(self.analyses):
            unknown = [r for r in (analysis.regions if analysis.regions != "all" else []) if r not in self.record.regions]
            if unknown:
                raise ValueError(
                    f"analyses[{i}].regions: {unknown[0]!r} is not a recorded region; recorded: {', '.join(self.record.regions)}"
                )
        check_study_entries(self)
        return self

    def analysis_regions(self, analysis: BaseModel) -> list[str]:
        """The recorded regions an analysis entry applies to."""
        regions = getattr(analysis, "regions")
        return list(self.record.regions) if regions == "all" else list(regions)

    @property
    def path(self) -> Path | None:
        """The protocol file, or None for a protocol built from text."""
        return self._path

    @property
    def folder(self) -> Path:
        """Folder that relative paths in the protocol resolve against."""
        return self._path.parent if self._path is not None else Path.cwd()

    @property
    def text(self) -> str:
        """The protocol file's text, as read."""
        return self._text

    @property
    def sha256(self) -> str:
        """sha256 of :attr:`text`: the identity of the experiment."""
        return hashlib.sha256(self._text.encode("utf-8")).hexdigest()

    def where(self, *loc: str | int) -> str:
        """``file:line:col`` of the key path ``loc`` (e.g. ``where("record", "regions", 0)``)."""
        from .positions import position

        name = str(self._path) if self._path is not None else "<protocol>"
        return name + (position(self._root, loc) if self._root is not None else "")

    def resolve(self, relative: str) -> Path:
        """Resolve a path written in the protocol against :attr:`folder`."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.folder / p)
