"""Populations: named sets of units defined by a rule with a statistical test behind it.

A population keeps its rule, its test, its thresholds and the p and q values of every unit it
was chosen from, so it can be audited and re-used (by lesion experiments, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

from ._units import AnalysisError, check_activity

__all__ = ["Population", "define_population", "TESTS", "INDICES"]

#: Tests a population rule can use, and the name of each one's statistic.
TESTS = {"anova": "F", "kruskal": "H", "ttest_ovr": "t", "mannwhitney_ovr": "U", "rayleigh": "Z"}
#: Indices a rule can threshold: index name -> (``selectivity`` index, variable it returns).
INDICES = {
    "csi": ("csi", "csi"),
    "dprime": ("dprime", "dprime"),
    "osi_vector": ("osi", "osi_vector"),
    "osi_ratio": ("osi", "osi_ratio"),
    "dsi_vector": ("dsi", "dsi_vector"),
    "dsi_ratio": ("dsi", "dsi_ratio"),
    "lifetime_sparseness": ("lifetime_sparseness", "lifetime_sparseness"),
    "magnitude": ("magnitude", "magnitude"),
}


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
        ids = np.asarray(activity["neuroid_id"].values).astype(str)
        return activity.isel(neuroid=np.flatnonzero(np.isin(ids, self.neuroid_ids)))

    def to_dataset(self) -> xr.Dataset:
        """The table, ready to be written into a store (``analyses/<region>/<name>``)."""
        return self.table

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "Population":
        """Rebuild a population read back from a store."""
        if "member" not in ds or "rule" not in ds.attrs:
            raise AnalysisError("dataset is not a population table (needs a 'member' variable and a 'rule' attribute)")
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
        ``rayleigh`` (circularly tuned over angle ``by`` with ``period``).
    by
        The presentation coordinate defining conditions.
    q_below
        Threshold on the corrected p value (``correction`` over the units of each region).
    condition
        The level of ``by`` a one-vs-rest rule is about (required for ``*_ovr`` and ``dprime``).
    index, index_above
        Optional second criterion: an index (see :data:`INDICES`) that must exceed ``index_above``.
    period
        Period in degrees of ``by`` for ``rayleigh`` and orientation/direction indices.

    Returns
    -------
    Population

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

    if test not in TESTS:
        raise AnalysisError(f"test: unknown test {test!r}; valid tests: {', '.join(TESTS)}")
    activity = check_activity(activity, by)
    one_vs_rest = test.endswith("_ovr") or index == "dprime"
    if one_vs_rest and condition is None:
        raise AnalysisError(f"condition: a one-vs-rest rule ({test}, {index}) needs the level of {by!r} it is about")
    if test == "rayleigh" and period is None:
        raise AnalysisError("period: the rayleigh test needs the period of the angles in degrees (180 or 360)")
    if (index is None) != (index_above is None):
        raise AnalysisError("index and index_above go together: give both or neither")
    if index is not None and index not in INDICES:
        raise AnalysisError(f"index: unknown index {index!r}; valid indices: {', '.join(INDICES)}")

    if test == "rayleigh":
        result = stats.rayleigh(activity, by, period=period, correction=correction)
    else:
        result = getattr(stats, test)(activity, by, correction=correction)
    statistic = result[TESTS[test]]
    p, q = result["p"], result["q"]
    passed = q < q_below
    if test.endswith("_ovr"):
        level = _level(result, by, condition)
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
    if index is not None:
        kind, var = INDICES[index]
        values = selectivity(activity, by, kind)[var]
        if by in values.dims:
            values = values.sel({by: _level(values.to_dataset(name=var), by, condition)})
        variables[index] = values
        passed = passed & (values > index_above)
        rule += f" and {index} > {index_above}"
    rule += f" ({correction})"
    variables["member"] = passed.fillna(False).astype(bool) if passed.dtype != bool else passed
    table = xr.Dataset({k: v.drop_vars(by, errors="ignore") for k, v in variables.items()})
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
    optional = {"condition": condition, "index": index, "index_above": index_above, "period": period}
    table.attrs.update({k: (str(v) if k == "condition" else v) for k, v in optional.items() if v is not None})
    return Population(name, table)


def _level(result: xr.Dataset, by: str, condition: Any) -> Any:
    levels = result[by].values
    match = [lv for lv in levels if str(lv) == str(condition) or lv == condition]
    if not match:
        raise AnalysisError(
            f"condition: {condition!r} is not a level of {by!r}; levels: {', '.join(str(v) for v in levels)}"
        )
    return match[0]
