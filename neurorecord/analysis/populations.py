"""Populations: named sets of units defined by a rule with a statistical test behind it.

A population keeps its rule, its test, its thresholds and the p and q values of every unit it
was chosen from, so it can be audited and re-used (by lesion experiments, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

from .._validation import check_choice, check_scalar
from ..errors import AnalysisError
from ._levels import match_level
from ._units import check_activity
from .selectivity import INDICES

__all__ = ["Population", "define_population", "TESTS", "INDICES"]

#: Tests a population rule can use, and the name of each one's statistic (for ``rayleigh`` the
#: resultant length of the tuning curve, whose permutation p the rule thresholds).
TESTS = {"anova": "F", "kruskal": "H", "ttest_ovr": "t", "mannwhitney_ovr": "U", "rayleigh": "R"}


@dataclass(frozen=True)
class Population:
    """A set of units chosen by a rule, with the evidence for every candidate unit.

    Attributes
    ----------
    name : str
        The population's name.
    table : xarray.Dataset
        Indexed by ``neuroid`` (every candidate unit, with its coordinates): ``member`` (bool),
        ``statistic``, ``p``, ``q`` and the thresholded index if any; ``attrs`` hold the rule,
        test, thresholds and the multiple-comparison family.
    """

    name: str
    table: xr.Dataset

    @property
    def rule(self) -> str:
        """The rule in words, e.g. ``"anova(by=label) q < 0.05"``."""
        return str(self.table.attrs["rule"])

    @property
    def neuroid_ids(self) -> list[str]:
        """``neuroid_id`` of the member units, in recording order."""
        member = self.table["member"].values.astype(bool)
        return [str(v) for v in np.asarray(self.table["neuroid_id"].values)[member]]

    def __len__(self) -> int:
        return int(self.table["member"].values.sum())

    def select(self, activity: xr.DataArray) -> xr.DataArray:
        """The member units of ``activity`` (matched by ``neuroid_id``)."""
        ids = np.asarray(activity["neuroid_id"].values, dtype=object).astype(str)
        return activity.isel(neuroid=np.flatnonzero(np.isin(ids, self.neuroid_ids)))

    def to_dataset(self) -> xr.Dataset:
        """The table, ready to be written into a store (``analyses/<region>/<name>``)."""
        return self.table

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "Population":
        """Rebuild a population read back from a store."""
        if "member" not in ds or "rule" not in ds.attrs:
            raise AnalysisError("ds: expected a population table (a 'member' variable and a 'rule' attribute), "
                                f"found variables {sorted(ds.data_vars)} and attributes {sorted(ds.attrs)}")
        return cls(str(ds.attrs.get("population", ds.attrs.get("name", ""))), ds)


def define_population(
    name: str,
    activity: xr.DataArray,
    *,
    test: Literal["anova", "kruskal", "ttest_ovr", "mannwhitney_ovr", "rayleigh"],
    by: str,
    q_below: float = 0.05,
    condition: Any = None,
    index: str | None = None,
    index_above: float | None = None,
    period: float | None = None,
    correction: Literal["fdr_bh", "bonferroni"] = "fdr_bh",
    n_permutations: int = 1000,
    seed: int | None = 0,
) -> Population:
    """Define a population: units whose test passes ``q < q_below`` (and ``index > index_above``).

    Parameters
    ----------
    name
        Name of the population (how protocols and lesion experiments refer to it).
    activity
        presentation x neuroid responses of the candidate units.
    test
        ``anova`` / ``kruskal`` (responsive to ``by``), ``ttest_ovr`` / ``mannwhitney_ovr``
        (selective for ``condition``: one-vs-rest, and responding *more* to it than to the rest),
        ``rayleigh`` (circularly tuned over angle ``by`` with ``period``: the resultant of the
        tuning curve against a permutation null, see :func:`~neurorecord.analysis.stats.rayleigh`).
    by
        The presentation coordinate defining conditions.
    q_below
        Threshold on the corrected p value (``correction`` over the units of each region).
    condition
        The level of ``by`` a one-vs-rest rule is about (required for ``*_ovr`` and ``dprime``).
    index, index_above
        Optional second criterion: an index that must exceed ``index_above``. Any name of
        :data:`~neurorecord.analysis.selectivity.INDICES` with one value per unit (every one
        but ``population_sparseness``); the rule thresholds its
        :attr:`~neurorecord.analysis.selectivity.IndexSpec.threshold` (``osi`` and ``dsi``: the
        vector form, defined for any set of angles; ``osi_ratio``/``dsi_ratio`` for the ratio
        form), computed alone: the vector forms need no orthogonal/opposite angles.
    period
        Period in degrees of ``by`` for ``rayleigh`` (the ``osi*`` indices use 180 and the
        ``dsi*`` indices 360, whatever ``period`` says).
    correction
        Multiple-comparison correction of the test's p values over the units of each region.
    n_permutations, seed
        Of the permutation null of ``rayleigh`` (unused by the other tests).

    Returns
    -------
    Population
        Its ``table`` holds, for every candidate unit, ``member``, ``statistic``, ``p``, ``q``
        and the thresholded index (named after the index it thresholds, e.g. ``osi_vector``).

    Raises
    ------
    AnalysisError
        An unknown test or index, an index without one value per unit, a missing ``condition``
        (one-vs-rest rules), ``period`` (rayleigh) or half of the ``index``/``index_above``
        pair; anything the test or the index raises.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> label = np.repeat(np.arange(3), 20)
    >>> x = rng.normal(size=(60, 4)); x[label == 2, 0] += 3    # unit 0 prefers label 2
    >>> act = xr.DataArray(x, dims=("presentation", "neuroid"),
    ...     coords={"label": ("presentation", label), "neuroid_id": ("neuroid", ["a.0", "a.1", "a.2", "a.3"]),
    ...             "region": ("neuroid", ["a"] * 4)})
    >>> pop = define_population("label2", act, test="ttest_ovr", by="label", condition=2, q_below=0.01,
    ...                         index="dprime", index_above=1.0)
    >>> pop.neuroid_ids, pop.rule
    (['a.0'], 'ttest_ovr(by=label, condition=2) q < 0.01 and dprime > 1.0 (fdr_bh)')
    """
    from . import stats
    from .selectivity import selectivity

    check_choice("test", test, tuple(TESTS), error=AnalysisError)
    spec = INDICES[check_choice("index", index, tuple(INDICES), error=AnalysisError)] if index is not None else None
    if spec is not None and spec.threshold is None:
        per_unit = ", ".join(repr(k) for k, v in INDICES.items() if v.threshold is not None)
        raise AnalysisError(f"index: expected an index with one value per unit ({per_unit}), found {index!r} "
                            "(one value per condition)")
    q_below = check_scalar("q_below", q_below, float, low=0, high=1, closed="right", error=AnalysisError)
    if (index is None) != (index_above is None):
        given, missing = ("index", "index_above") if index is not None else ("index_above", "index")
        raise AnalysisError(f"{missing}: expected a value together with {given} (give both or neither), found None")
    if index_above is not None:
        index_above = check_scalar("index_above", index_above, float, error=AnalysisError)
    activity = check_activity(activity, by)
    one_vs_rest = test.endswith("_ovr") or (spec is not None and spec.per_condition)
    if one_vs_rest and condition is None:
        raise AnalysisError(f"condition: expected the level of {by!r} a one-vs-rest rule ({test}, {index}) is about, "
                            "found None")
    if test == "rayleigh" and period is None:
        raise AnalysisError("period: expected the period of the angles in degrees (180 or 360) for the rayleigh test, "
                            "found None")

    if test == "rayleigh":
        result = stats.rayleigh(activity, by, period=period, correction=correction, n_permutations=n_permutations,
                                seed=seed)
    else:
        result = getattr(stats, test)(activity, by, correction=correction)
    statistic = result[TESTS[test]]
    p, q = result["p"], result["q"]
    passed = q < q_below
    if test.endswith("_ovr"):
        level = _level(result[by].values, by, condition)
        statistic, p, q = statistic.sel({by: level}), p.sel({by: level}), q.sel({by: level})
        passed = q < q_below
        if test == "ttest_ovr":
            passed = passed & (statistic > 0)
        else:
            grouped = activity[by].values == level
            n1, n2 = int(grouped.sum()), int((~grouped).sum())
            passed = passed & (statistic > n1 * n2 / 2)
    variables: dict[str, xr.DataArray] = {"statistic": statistic, "p": p, "q": q}
    rule = (f"{test}(by={by}" + (f", condition={condition}" if condition is not None else "")
            + (f", period={period:g}" if period is not None else "") + f") q < {q_below}")
    if spec is not None:
        thresholded = str(spec.threshold)  # the per-unit index, computed alone
        values = selectivity(activity, by, thresholded)[thresholded]
        if by in values.dims:
            values = values.sel({by: _level(values[by].values, by, condition)})
        variables[thresholded] = values
        passed = passed & (values > index_above)
        rule += f" and {thresholded} > {index_above}"
    rule += f" ({correction})"
    variables["member"] = passed.fillna(False).astype(bool) if passed.dtype != bool else passed
    table = xr.Dataset({k: v.drop_vars(by, errors="ignore") for k, v in variables.items()})
    table["member"].attrs.update(long_name=f"member of population {name}")
    table.attrs = {
        "population": name,
        "rule": rule,
        "test": test,
        "statistic": TESTS[test],
        "by": by,
        "q_below": float(q_below),
        "correction": correction,
        "family": str(result.attrs.get("family", "")),
        "n_members": int(table["member"].sum()),
        "n_candidates": int(table.sizes["neuroid"]),
    }
    if "null" in result.attrs:
        table.attrs["null"] = str(result.attrs["null"])
    optional = {"condition": condition, "index": index, "index_above": index_above, "period": period}
    table.attrs.update({k: (str(v) if k == "condition" else v) for k, v in optional.items() if v is not None})
    return Population(name, table)


def _level(levels: Any, by: str, condition: Any) -> Any:
    level = match_level(levels, condition)
    if level is None:
        raise AnalysisError(
            f"condition: expected a level of {by!r}, found {condition!r}; levels: {', '.join(str(v) for v in levels)}"
        )
    return level
