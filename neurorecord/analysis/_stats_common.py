"""What the per-unit tests of :mod:`neurorecord.analysis.stats` share: argument checks, the
attributes of a result, and the detection of groups of identical values."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_choice, check_scalar
from ..errors import AnalysisError
from ._units import Grouping, check_activity, grouping

__all__ = ["CORRECTIONS", "CONSTANT_RTOL", "prepare", "reaching", "result_attrs", "seed_of", "constant_groups", "first_of_groups"]

#: Multiple-comparison corrections the tests accept (statsmodels ``multipletests`` method names).
CORRECTIONS = ("fdr_bh", "bonferroni")

#: Relative tolerance below which a within-group sum of squares is checked for exact constancy.
CONSTANT_RTOL = 1e-9


def prepare(activity: xr.DataArray, by: str, correction: str, min_groups: int = 2) -> tuple[xr.DataArray, Grouping]:
    """Validate the arguments every test shares, before any work; the activity and its grouping."""
    if not isinstance(by, str):
        raise AnalysisError(f"by: expected the name of one presentation coordinate (str), found {type(by).__name__}")
    check_choice("correction", correction, CORRECTIONS, error=AnalysisError)
    act = check_activity(activity, by)
    return act, grouping(act, by, min_groups=min_groups)


def seed_of(seed: int | None) -> int:
    """A seed as given (a non-negative integer), or a fresh one drawn from the OS for None."""
    seed = check_scalar("seed", seed, int, low=0, none_ok=True, error=AnalysisError)
    return int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed


def reaching(observed: np.ndarray) -> np.ndarray:
    """The least null value that counts as reaching ``observed``: within 100 float64 epsilons
    (relative), scipy's rule in ``permutation_test``, so that rounding never decides a tie."""
    return observed - np.abs(observed) * (100 * np.finfo(np.float64).eps)


def result_attrs(test: str, reference: str, act: xr.DataArray, groups: Grouping, correction: str, family: str,
                 **extra: Any) -> dict:
    """The attributes every test result carries (JSON-serialisable, so they travel into a store)."""
    attrs = {
        "test": test,
        "reference": reference,
        "by": groups.by,
        "levels": groups.levels.tolist(),
        "n_per_level": groups.counts.tolist(),
        "n_presentations": int(len(groups.codes)),
        "correction": correction,
        "family": family,
    }
    attrs.update(extra)
    units = act.attrs.get("units")
    if units is not None:
        attrs["activity_units"] = str(units)
    return attrs


def constant_groups(block: np.ndarray, cols: np.ndarray, codes: np.ndarray, first: np.ndarray,
                    one_hot: np.ndarray) -> np.ndarray:
    """(groups, len(cols)) bool: whether all of a group's values are identical, for columns ``cols``."""
    sub = block[:, cols]
    differs = (sub != sub[first[codes]]).astype(np.float64)
    return (one_hot @ differs) == 0


def first_of_groups(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first presentation of each group."""
    first = np.full(n_groups, -1)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order
    return first
