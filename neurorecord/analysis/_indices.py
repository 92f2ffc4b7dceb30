"""The table of selectivity indices (:data:`INDICES`), apart from their computation.

:mod:`.selectivity` computes them; the protocol checks (:mod:`.checks`) read what each needs of
``by`` here, without importing the numerical stack (``neurorecord validate`` stays light).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INDICES", "IndexSpec"]


@dataclass(frozen=True)
class IndexSpec:
    """One selectivity index: what :func:`selectivity` returns for it, what it needs of ``by``,
    and what a population rule thresholds.

    Attributes
    ----------
    name : str
        The index name (``index=`` of :func:`selectivity` and of a population rule).
    variables : tuple of str
        The variables :func:`selectivity` returns (besides ``n``).
    threshold : str or None
        The per-unit index a population rule with ``index=name`` thresholds (itself an index
        name: ``osi`` thresholds ``osi_vector``, the form defined for any set of angles); None
        for an index with no value per unit (``population_sparseness``).
    family : str or None
        ``"osi"`` or ``"dsi"`` for the orientation and direction indices: ``by`` holds angles in
        degrees, with period :attr:`period`.
    period : float or None
        Period of the angles in degrees (180 for OSI, 360 for DSI).
    vector, ratio : bool
        Whether the vector form and the ratio form are computed; the ratio form needs each
        angle's orthogonal (OSI) or opposite (DSI) partner among the levels.
    nonnegative : bool
        Defined for non-negative responses only (takes ``negative=``).
    per_condition : bool
        One value per condition (``dprime``): a rule takes it at ``condition``.
    """

    name: str
    variables: tuple[str, ...]
    threshold: str | None
    family: str | None = None
    period: float | None = None
    vector: bool = False
    ratio: bool = False
    nonnegative: bool = False
    per_condition: bool = False


def _angular(family: str, period: float) -> dict[str, IndexSpec]:
    both = (f"{family}_vector", f"{family}_ratio", "preferred", "preferred_vector")
    return {
        family: IndexSpec(family, both, f"{family}_vector", family, period, True, True, True),
        f"{family}_vector": IndexSpec(f"{family}_vector", (f"{family}_vector", "preferred_vector"), f"{family}_vector",
                                      family, period, vector=True, nonnegative=True),
        f"{family}_ratio": IndexSpec(f"{family}_ratio", (f"{family}_ratio", "preferred"), f"{family}_ratio", family,
                                     period, ratio=True, nonnegative=True),
    }


#: The one table of index names: :func:`selectivity` computes each, a population rule
#: (:func:`~neurorecord.analysis.populations.define_population`, a protocol's ``index:``)
#: thresholds each one's :attr:`IndexSpec.threshold`, and the protocol checks read what each
#: needs of ``by``.
INDICES: dict[str, IndexSpec] = {
    "csi": IndexSpec("csi", ("csi", "preferred"), "csi", nonnegative=True),
    "dprime": IndexSpec("dprime", ("dprime",), "dprime", per_condition=True),
    **_angular("osi", 180.0),
    **_angular("dsi", 360.0),
    "lifetime_sparseness": IndexSpec("lifetime_sparseness", ("lifetime_sparseness",), "lifetime_sparseness",
                                     nonnegative=True),
    "population_sparseness": IndexSpec("population_sparseness", ("population_sparseness",), None, nonnegative=True),
    "magnitude": IndexSpec("magnitude", ("magnitude",), "magnitude"),
}
