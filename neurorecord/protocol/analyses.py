"""The protocol's ``analyses:`` entries: one model per ``kind``, and the table of kinds.

Split from :mod:`neurorecord.protocol.schema` (which re-exports every name here) so that each
file holds one part of the format; the cross-entry checks stay in ``Protocol``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, Field, NonNegativeInt, PositiveInt, WithJsonSchema, model_validator

from ._base import Strict as _Strict

def _numbers_are_names(value: Any) -> Any:
    """``regions: [0, 2]`` names modules of an nn.Sequential ('0', '2'), which YAML reads as numbers."""
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


#: Module names; bare integers (YAML's reading of ``[0, 2]``) are taken as names.
RegionNames = Annotated[
    list[str],
    BeforeValidator(_numbers_are_names),
    WithJsonSchema({"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "minItems": 1}),
]


class _AnalysisBase(_Strict):
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Name of the result in the store.")
    regions: RegionNames | Literal["all"] = Field("all", description="Recorded regions to analyse ('all' or a list).")
    by: str = Field(..., description="Presentation coordinate defining the conditions (e.g. label, orientation).")
    window: Literal["all", "stimulus"] | tuple[float, float] = Field(
        "all",
        description="Time-resolved recordings: time bins averaged into the response: 'all', 'stimulus' (the stimulus "
        "epoch), or [start_ms, end_ms] (bins lying inside, times after stimulus onset).",
    )


class TuningCurveAnalysis(_AnalysisBase):
    """Mean, SEM and bootstrap confidence interval per condition and unit (per pair of conditions
    for a 2-D map: ``by: [x, y]``)."""

    kind: Literal["tuning_curve"]
    by: str | list[str] = Field(
        ..., description="Presentation coordinate defining the conditions, or a list of two for a 2-D map (e.g. [x, y])."
    )
    ci: float = Field(0.95, gt=0, lt=1, description="Confidence level of the bootstrap interval.")
    n_boot: PositiveInt = Field(1000, description="Bootstrap resamples (the same resamples for every unit).")

    @model_validator(mode="after")
    def _one_or_two(self) -> "TuningCurveAnalysis":
        if isinstance(self.by, list) and not 1 <= len(self.by) <= 2:
            raise ValueError(f"by: give one coordinate or a list of two (a 2-D map), found {len(self.by)}: {self.by}")
        return self


class UnitTestAnalysis(_AnalysisBase):
    """A per-unit test across the conditions of ``by``, with FDR (or Bonferroni) over each region's units."""

    kind: Literal["anova", "kruskal", "ttest_ovr", "mannwhitney_ovr"]
    correction: Literal["fdr_bh", "bonferroni"] = Field("fdr_bh", description="Multiple-comparison correction over each region's units: Benjamini-Hochberg FDR or Bonferroni.")


class RayleighAnalysis(_AnalysisBase):
    """Test of circular tuning over angles ``by`` (degrees) of the given period: the resultant of each unit's
    tuning curve against a permutation null of the trial labels (valid for any number of trials per angle)."""

    kind: Literal["rayleigh"]
    period: float = Field(..., gt=0, description="Period of the angles in degrees: 180 for orientation, 360 for direction.")
    correction: Literal["fdr_bh", "bonferroni"] = Field("fdr_bh", description="Multiple-comparison correction over each region's units: Benjamini-Hochberg FDR or Bonferroni.")


#: Index names of ``kind: selectivity``: the names of
#: :data:`neurorecord.analysis.selectivity.INDICES` (the protocol does not import the analyses;
#: ``tests/protocol/test_analysis_names.py`` keeps the two equal).
SELECTIVITY_INDICES = ("csi", "dprime", "osi", "osi_vector", "osi_ratio", "dsi", "dsi_vector", "dsi_ratio",
                       "lifetime_sparseness", "population_sparseness", "magnitude")
#: Index names a population rule can threshold: those with one value per unit.
RULE_INDICES = tuple(name for name in SELECTIVITY_INDICES if name != "population_sparseness")


class SelectivityAnalysis(_AnalysisBase):
    """A selectivity index per unit (and per condition for one-vs-rest indices)."""

    kind: Literal["selectivity"]
    index: Literal[SELECTIVITY_INDICES] = Field(  # type: ignore[valid-type]
        ..., description="Which index (see docs/analysis.md for each definition); osi and dsi give the vector and ratio "
        "forms, osi_vector, osi_ratio, dsi_vector and dsi_ratio one form alone."
    )
    negative: Literal["raise", "shift", "nan"] = Field(
        "raise", description="Units with negative condition means (csi, osi*, dsi*, sparseness): error, shift to >= 0, or NaN."
    )


class VonMisesAnalysis(_AnalysisBase):
    """Von Mises fit of each unit's tuning over angles ``by`` (degrees) of the given period."""

    kind: Literal["von_mises"]
    period: float = Field(..., gt=0, description="Period of the angles in degrees: 180 for orientation, 360 for direction.")
    two_peaks: bool = Field(False, description="Fit a second peak 180 degrees from the first (direction tuning with an opposite-direction response).")


#: ``condition`` of a population entry that defines one population per level of ``by``.
EACH = "each"


class PopulationAnalysis(_AnalysisBase):
    """A population: units passing ``test`` at ``q < q_below`` (and ``index > index_above``)."""

    kind: Literal["population"]
    test: Literal["anova", "kruskal", "ttest_ovr", "mannwhitney_ovr", "rayleigh"] = Field(..., description="The per-unit test the rule is based on.")
    q_below: float = Field(0.05, gt=0, le=1, description="Members have a corrected p-value (q) below this.")
    condition: str | int | float | None = Field(
        None, description="The level of `by` a one-vs-rest test or d' is about (e.g. 3 for digit 3); `each`: one population per "
        "level of `by`, named `<name>-<level>` (likes-0 ... likes-9)."
    )
    index: Literal[RULE_INDICES] | None = Field(  # type: ignore[valid-type]
        None, description="An index members must also exceed (with `index_above`); osi and dsi stand for their vector form."
    )
    index_above: float | None = Field(None, description="Threshold of `index`: members have index > index_above.")
    period: float | None = Field(None, gt=0, description="Period in degrees, for the rayleigh test and the osi/dsi indices.")
    correction: Literal["fdr_bh", "bonferroni"] = Field("fdr_bh", description="Multiple-comparison correction over each region's units: Benjamini-Hochberg FDR or Bonferroni.")

    @model_validator(mode="after")
    def _complete_rule(self) -> "PopulationAnalysis":
        if (self.index is None) != (self.index_above is None):
            raise ValueError("'index' and 'index_above' go together: give both or neither")
        if (self.test.endswith("_ovr") or self.index == "dprime") and self.condition is None:
            raise ValueError(f"a one-vs-rest rule ({self.test}) needs 'condition': the level of {self.by!r} it is about")
        if self.test == "rayleigh" and self.period is None:
            raise ValueError("the rayleigh test needs 'period' (degrees: 180 for orientation, 360 for direction)")
        return self


#: Measures of ``kind: compare``: the RDM similarity, CKA and linear predictivity of :mod:`neurorecord.compare`.
COMPARE_MEASURES = ("rdm", "cka", "predictivity")


class ComparisonReference(_Strict):
    """The second recording of a ``kind: compare`` entry: a neurorecord store (``store`` and
    ``region``) or an NWB file (``nwb``, read with ``neurorecord.interop.from_nwb``: the spike
    count of each unit in ``window`` of every trial, or its binned activity as stored). Paths are
    relative to the protocol file's folder. ``neurorecord validate`` opens it before recording."""

    store: str | None = Field(None, min_length=1, description="Folder of a complete neurorecord store (the `--out` of `neurorecord run`).")
    nwb: str | None = Field(None, min_length=1, description="An NWB file with a trials table and a units table.")
    region: str | None = Field(
        None, description="The reference's region: a region of the store (required with `store`), or with `nwb` the value "
        "of the units' `region` (default: every unit of the file)."
    )
    window: tuple[float, float] | None = Field(
        None, description="[start_ms, end_ms] after stimulus onset: with `nwb`, the spike-count window (default: the "
        "trials' own span); with `store`, the time bins of a time-resolved region lying inside (default: all)."
    )
    align_to: str | None = Field(None, description="With `nwb`: the trials column (s) that is time 0 of each trial (default: stimulus_onset if present, else start_time).")
    stimulus_key: str = Field("stimulus_id", min_length=1, description="With `nwb`: the trials column naming each trial's stimulus (read as `stimulus_id`).")

    @model_validator(mode="after")
    def _one_source(self) -> "ComparisonReference":
        given = [k for k in ("store", "nwb") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'store', 'nwb' (found {', '.join(given) if given else 'none of them'})")
        if self.store is not None and self.region is None:
            raise ValueError("'store' needs 'region': the region of the reference store to compare with")
        if self.store is not None and (self.align_to is not None or self.stimulus_key != "stimulus_id"):
            raise ValueError("'align_to' and 'stimulus_key' are only used with 'nwb'")
        if self.window is not None and not self.window[0] < self.window[1]:
            raise ValueError(f"window: expected [start_ms, end_ms] with start < end, found {list(self.window)}")
        return self


class ComparisonAnalysis(_AnalysisBase):
    """Each region compared with a second recording (a biological one, another model's) over the
    conditions of ``by`` the two share: the similarity of their RDMs (with a bootstrap interval
    over conditions and the reference's noise ceiling), linear CKA, and the cross-validated ridge
    predictivity of every reference unit from the region's units (with its split-half
    reliability ceiling); see docs/compare.md."""

    kind: Literal["compare"]
    by: str = Field("stimulus_id", description="Presentation coordinate of both recordings whose shared values are the conditions.")
    reference: ComparisonReference = Field(..., description="The second recording.")
    measures: list[Literal[COMPARE_MEASURES]] = Field(  # type: ignore[valid-type]
        list(COMPARE_MEASURES), min_length=1, description="What to compute: rdm (RDM similarity), cka (linear CKA), predictivity (ridge predictivity per reference unit)."
    )
    rdm_method: Literal["correlation", "euclidean"] = Field("correlation", description="Dissimilarity of the RDMs: 1 - Pearson r, or squared Euclidean distance / units.")
    compare_method: Literal["spearman", "tau_a", "cosine", "pearson"] = Field("spearman", description="Comparison of the two RDMs (and of the noise ceiling).")
    n_boot: NonNegativeInt = Field(1000, description="Bootstrap resamples of the conditions for the interval of the RDM similarity (0: none).")
    ci: float = Field(0.95, gt=0, lt=1, description="Confidence level of the bootstrap interval.")
    ceiling: bool = Field(
        True, description="Noise ceilings from the reference's repetitions: of the RDM similarity (one RDM per value of "
        "`split`) and of each unit's predictivity (split-half reliability); needs 2 presentations of every condition."
    )
    split: str = Field("repetition", description="Presentation coordinate of the reference whose values are its independent parts (the RDM noise ceiling).")
    cka_debiased: bool = Field(False, description="Debiased CKA (unbiased HSIC; at least 4 conditions) instead of the plain estimate.")
    n_folds: int = Field(10, ge=2, description="Folds over conditions of the cross-validated predictivity (3 conditions or more per fold).")

    @model_validator(mode="after")
    def _measures_once(self) -> "ComparisonAnalysis":
        twice = [m for i, m in enumerate(self.measures) if m in self.measures[:i]]
        if twice:
            raise ValueError(f"measures: {twice[0]!r} is listed twice; list each measure once")
        return self


AnalysisSpec = Annotated[
    Union[TuningCurveAnalysis, UnitTestAnalysis, RayleighAnalysis, SelectivityAnalysis, VonMisesAnalysis, PopulationAnalysis,
          ComparisonAnalysis],
    Field(discriminator="kind"),
]
ANALYSIS_KINDS: dict[str, type[BaseModel]] = {
    "tuning_curve": TuningCurveAnalysis,
    "anova": UnitTestAnalysis,
    "kruskal": UnitTestAnalysis,
    "ttest_ovr": UnitTestAnalysis,
    "mannwhitney_ovr": UnitTestAnalysis,
    "rayleigh": RayleighAnalysis,
    "selectivity": SelectivityAnalysis,
    "von_mises": VonMisesAnalysis,
    "population": PopulationAnalysis,
    "compare": ComparisonAnalysis,
}
