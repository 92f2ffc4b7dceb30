"""The protocol's ``study:`` entries: studies that combine a recording with a lesion sweep.

A ``kind: functional_populations`` entry asks whether the units that respond together form the
same populations as the units whose lesions hurt the network in the same way (see
``docs/functional-populations.md``). Its cross-entry checks (a ``units: all`` lesion entry of
the same, recorded, region) are run by :class:`~neurorecord.protocol.schema.Protocol`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt, model_validator

from ._base import SET_NAME_PATTERN
from ._base import Strict as _Strict

__all__ = ["ClusteringChoice", "FunctionalPopulationsStudy", "PopulationLesions", "StudySpec", "DEFAULT_METHODS",
           "TOP_SETS", "check_study_entries"]

#: The indicator-defined sets a study lesions: name -> (indicator, what the set is).
TOP_SETS = {
    "top-selective": ("csi", "the most class-selective units (class selectivity index)"),
    "top-magnitude": ("magnitude", "the units with the highest mean activation magnitude"),
    "top-impact": ("lesion_impact", "the units whose single-unit lesion hurts overall accuracy most"),
}


class ClusteringChoice(_Strict):
    """One way of defining populations: a clustering method and the criterion that chooses their number."""

    method: Literal["average", "ward", "kmeans", "gmm"] = Field(
        ..., description="average (linkage, correlation distance), ward, kmeans or gmm (Gaussian mixture); see "
        "functional-populations.md."
    )
    criterion: Literal["silhouette", "gap", "bic"] = Field(
        ..., description="How the number of populations is chosen: silhouette, gap statistic, or bic (gmm only)."
    )

    @model_validator(mode="after")
    def _bic_needs_gmm(self) -> "ClusteringChoice":
        if self.criterion == "bic" and self.method != "gmm":
            raise ValueError(f"criterion: 'bic' needs the likelihood of method 'gmm', found method {self.method!r}; "
                             "use 'silhouette' or 'gap'")
        return self


def _default_methods() -> list[ClusteringChoice]:
    return [ClusteringChoice(method="kmeans", criterion="gap"), ClusteringChoice(method="average", criterion="silhouette")]


class PopulationLesions(_Strict):
    """Population lesions of a study: each population lesioned whole, against matched random controls."""

    controls: PositiveInt = Field(
        99, description="Random lesions of as many units of the region, per population size; the empirical p value "
        "of a population is (1 + #controls at least as harmful) / (1 + controls).",
    )
    top_fraction: float = Field(
        0.1, gt=0, lt=1, description="Size of the top-k sets (most selective, highest magnitude, highest single-unit "
        "lesion impact), as a fraction of the region's units (at least one unit).",
    )
    sets: list[Literal["clusters", "top-selective", "top-magnitude", "top-impact"]] = Field(
        default_factory=lambda: ["clusters", "top-selective", "top-magnitude", "top-impact"], min_length=1,
        description="Which populations are lesioned: every cluster of every clustering, and the top-k sets.",
    )


#: The clusterings a study runs when ``methods`` is not given.
DEFAULT_METHODS = tuple((c.method, c.criterion) for c in _default_methods())


class FunctionalPopulationsStudy(_Strict):
    """Populations of a region defined twice, by co-activation and by lesion impact, and compared.

    Needs a ``lesions:`` entry with ``units: all`` on the same region. For each ``methods``
    entry, the response profiles and the lesion profiles are clustered, and the two partitions'
    agreement (ARI, AMI) is tested against a permutation null; the unit-by-unit match of
    preferred and most-hurt condition, the per-unit indicators, their correlations and how
    each predicts lesion impact are computed once. Results go under
    ``analyses/<region>/<name>/...``. Then, unless ``population_lesions: null``, every
    population (each cluster, and the top-k most selective, highest-magnitude and most
    damaging units) is lesioned whole with the sweep entry's method, against matched random
    lesions of as many units of the region; results under ``lesions/<name>``.
    """

    kind: Literal["functional_populations"] = Field(..., description="The kind of study (one so far).")
    name: str = Field(..., min_length=1, pattern=SET_NAME_PATTERN, description="Name of the study: its results go under analyses/<region>/<name>.")
    region: str = Field(..., description="Recorded region whose units are studied.")
    by: str = Field("label", description="Presentation coordinate whose levels are the conditions of the response profiles.")
    lesions: str = Field(..., description="Name of a `lesions:` entry with `units: all` on the same region (the lesion profiles).")
    normalise: Literal["zscore", "max"] = Field("zscore", description="Response profiles: z-scored over conditions, or divided by the largest mean.")
    methods: list[ClusteringChoice] = Field(
        default_factory=_default_methods, min_length=1,
        description="Clusterings run on both kinds of profile, each a {method, criterion} pair.",
    )
    n_boot: int = Field(100, ge=0, description="Bootstrap resamples: of the conditions (cluster stability) and of the units (indicator correlations).")
    n_perm: PositiveInt = Field(999, description="Permutations of each null (partition agreement, preferred vs most hurt, prediction of lesion impact).")
    population_lesions: PopulationLesions | None = Field(
        default_factory=PopulationLesions,
        description="Lesion each population (clusters, top-k sets) against matched random controls; results under "
        "lesions/<name>; `population_lesions: null` runs none.",
    )

    @model_validator(mode="after")
    def _methods_once(self) -> "FunctionalPopulationsStudy":
        pairs = [(m.method, m.criterion) for m in self.methods]
        twice = [p for i, p in enumerate(pairs) if p in pairs[:i]]
        if twice:
            raise ValueError(f"methods: {{method: {twice[0][0]}, criterion: {twice[0][1]}}} is listed twice; list each pair once")
        return self


#: An entry of ``study:`` (one kind so far).
StudySpec = FunctionalPopulationsStudy


def check_study_entries(protocol: Any) -> None:
    """Cross-entry checks of ``study:``: names unique, region recorded, a ``units: all`` lesion entry of that region.

    Raises ValueError with the house message form (``study[0].lesions: ...``), which the loader
    turns into ``file:line:col``.
    """
    names = [entry.name for entry in protocol.study]
    recorded = list(protocol.record.regions)
    for i, entry in enumerate(protocol.study):
        if entry.name in names[:i]:
            raise ValueError(f"study[{i}].name: {entry.name!r} is already the name of study[{names.index(entry.name)}]; "
                             "names must be unique")
        taken = [a.name for a in protocol.analyses if entry.region in protocol.analysis_regions(a)]
        if entry.name in taken:
            raise ValueError(f"study[{i}].name: {entry.name!r} is already an analysis of region {entry.region!r} "
                             f"(analyses/{entry.region}/{entry.name}); choose another name")
        lesion_names = [lesion.name for lesion in protocol.lesions]
        if entry.population_lesions is not None and entry.name in lesion_names:
            raise ValueError(f"study[{i}].name: {entry.name!r} is also a lesions: entry; the study's population lesions "
                             f"are written to lesions/{entry.name}, so choose another name")
        if entry.region not in recorded:
            raise ValueError(f"study[{i}].region: {entry.region!r} is not a recorded region; recorded: {', '.join(recorded)}")
        sweeps = [lesion for lesion in protocol.lesions if lesion.units == "all" and lesion.region == entry.region]
        valid = ", ".join(lesion.name for lesion in sweeps) or "none"
        found = next((lesion for lesion in protocol.lesions if lesion.name == entry.lesions), None)
        if found is None:
            raise ValueError(f"study[{i}].lesions: {entry.lesions!r} is not a lesions: entry of this protocol; "
                             f"single-unit sweeps (units: all) of {entry.region!r}: {valid}")
        if found.units != "all":
            raise ValueError(f"study[{i}].lesions: {entry.lesions!r} does not lesion each unit alone (units: all); "
                             f"single-unit sweeps (units: all) of {entry.region!r}: {valid}")
        if found.region != entry.region:
            raise ValueError(f"study[{i}].lesions: {entry.lesions!r} lesions region {found.region!r}, not the study's region "
                             f"{entry.region!r}; single-unit sweeps (units: all) of {entry.region!r}: {valid}")
