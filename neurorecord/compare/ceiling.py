"""Noise ceilings: how well the best possible model could do, given the data's own noise.

Two ceilings, one per kind of comparison:

- :func:`rdm_noise_ceiling` for RDM comparisons, rsatoolbox's ``boot_noise_ceiling``
  (Nili et al. 2014): the data are split into independent parts (the values of the
  ``repetition`` coordinate of one recording, by :func:`split_rdms`, or several subjects), one
  RDM per part. The **upper bound** is the mean similarity of each part's RDM to the pooled RDM
  of all parts (the part itself included); the **lower bound** the mean similarity of each
  part's RDM to the pooled RDM of the other parts (leave one out). Pooling is rsatoolbox's
  ``pool_rdm`` for the comparison: mean of the rank vectors (``spearman``, ``tau_a``), of the
  vectors scaled to unit root mean square (``cosine``), or of the z-scored vectors minus their
  minimum (``pearson``). The tests check both bounds equal to rsatoolbox's.
- :func:`split_half_reliability` for per-unit predictivity, as Brain-Score's internal
  consistency: the presentations of every condition are split at random into two halves, each
  unit's half means are correlated across conditions (Pearson r), r is averaged over
  ``n_splits`` random splits and corrected to the full number of presentations with the
  Spearman-Brown formula ``2 r / (1 + r)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.stats
import xarray as xr

from .._validation import check_choice, check_scalar, check_seed
from ..analysis._units import check_activity, grouping, map_unit_blocks, unit_dataset
from ..errors import AnalysisError
from .rdm import rdm as _rdm
from .rdm import upper_triangle
from .rdm_compare import RSATOOLBOX_NAMES, align_rdms, check_rdm, similarity

__all__ = ["split_rdms", "rdm_noise_ceiling", "split_half_reliability", "split_halves", "pool_rdm_vectors",
           "pearson_columns"]


def pearson_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of ``x`` and ``y`` (rows: observations); NaN where one is constant.

    >>> pearson_columns(np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]), np.array([[2.0, 0.0], [4.0, 1.0], [7.0, 2.0]])).round(4)
    array([0.9934,    nan])
    """
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    den = np.sqrt(np.einsum("ij,ij->j", xc, xc) * np.einsum("ij,ij->j", yc, yc))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.einsum("ij,ij->j", xc, yc) / den, np.nan)


def split_rdms(activity: xr.DataArray, by: str = "stimulus_id", split: str = "repetition",
               method: str = "correlation") -> xr.DataArray:
    """One RDM per value of ``split`` (a repetition, a session, a subject), stacked along ``split``.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses, with the coordinates ``by`` and ``split`` on ``presentation``.
    by : str, default "stimulus_id"
        The conditions (rows of each RDM).
    split : str, default "repetition"
        The ``presentation`` coordinate whose values are the independent parts; every part
        must hold every condition.
    method : {"correlation", "euclidean"}, default "correlation"
        The dissimilarity (see :func:`~neurorecord.compare.rdm.rdm`).

    Returns
    -------
    xarray.DataArray, dims (split, condition, condition_)
        The RDMs, labelled with the values of ``split`` and the conditions; ``attrs`` as
        :func:`~neurorecord.compare.rdm.rdm` with ``split`` added.

    Raises
    ------
    neurorecord.errors.AnalysisError
        ``by`` or ``split`` not a presentation coordinate, fewer than 2 parts, a part without
        some condition.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> activity = xr.DataArray(rng.normal(size=(8, 5)), dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", list("abcdabcd")), "repetition": ("presentation", [0] * 4 + [1] * 4)})
    >>> split_rdms(activity).dims
    ('split', 'condition', 'condition_')
    """
    method = check_choice("method", method, ("correlation", "euclidean"), error=AnalysisError)
    act = check_activity(activity, [by, split])
    all_levels = grouping(act, by, min_groups=3).levels
    parts = grouping(act, split, min_groups=2)
    rdms = []
    for index, part in enumerate(parts.levels):
        sub = act.isel(presentation=np.flatnonzero(parts.codes == index))
        levels = np.unique(np.asarray(sub.coords[by].values).astype(all_levels.dtype))
        if len(levels) != len(all_levels):
            missing = sorted(set(map(str, all_levels)) - set(map(str, levels)))
            raise AnalysisError(f"split: {split}={part.item() if hasattr(part, 'item') else part!r} has no presentation of {by} {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''}; every part needs every condition")
        rdms.append(_rdm(sub, by, method))
    stacked = xr.concat(rdms, dim="split", coords="minimal", compat="override", combine_attrs="override")
    # per-part counts and the split coordinate itself (constant within a part) are not labels of the stack
    stacked = stacked.drop_vars(["n", split, f"{split}_"], errors="ignore").assign_coords(split=parts.levels)
    stacked.attrs["split"] = split
    return stacked


def pool_rdm_vectors(vectors: np.ndarray, method: str) -> np.ndarray:
    """rsatoolbox's ``pool_rdm``: the RDM vector that best represents several under ``method``.

    >>> pool_rdm_vectors(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), "spearman")
    array([2., 2., 2.])
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if method in ("spearman", "tau_a"):
        return scipy.stats.rankdata(vectors, axis=1).mean(axis=0)
    if method == "cosine":
        return (vectors / np.sqrt((vectors**2).mean(axis=1, keepdims=True))).mean(axis=0)
    centred = vectors - vectors.mean(axis=1, keepdims=True)
    pooled = (centred / centred.std(axis=1, keepdims=True)).mean(axis=0)
    return pooled - pooled.min()


def rdm_noise_ceiling(rdms: xr.DataArray, method: str = "spearman") -> xr.Dataset:
    """Lower and upper bounds of the noise ceiling of an RDM comparison (rsatoolbox's method).

    Parameters
    ----------
    rdms : xarray.DataArray, dims (split, condition, condition_)
        One RDM per independent part of the data (from :func:`split_rdms`, or RDMs of several
        subjects stacked along ``split``); at least 2 parts, 3 conditions, no NaN.
    method : {"spearman", "tau_a", "cosine", "pearson"}, default "spearman"
        The comparison the ceiling is for (that of
        :func:`~neurorecord.compare.rdm_compare.compare_rdms`).

    Returns
    -------
    xarray.Dataset
        ``lower`` and ``upper`` (scalars, the comparison's units); ``lower_per_split`` and
        ``upper_per_split`` (dim ``split``). ``attrs``: ``analysis``, ``method``, ``n_splits``,
        ``definition``.

    Raises
    ------
    neurorecord.errors.AnalysisError
        ``rdms`` without a ``split`` dim of at least 2 or with NaN; an unknown ``method``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=(6, 30))
    >>> noisy = np.concatenate([truth + rng.normal(scale=0.5, size=truth.shape) for _ in range(4)])
    >>> activity = xr.DataArray(noisy, dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", list("abcdef") * 4), "repetition": ("presentation", np.repeat(np.arange(4), 6))})
    >>> ceiling = rdm_noise_ceiling(split_rdms(activity))
    >>> bool(0 < ceiling.lower < ceiling.upper <= 1)
    True
    """
    method = check_choice("method", method, tuple(RSATOOLBOX_NAMES), error=AnalysisError)
    if not isinstance(rdms, xr.DataArray) or rdms.dims != ("split", "condition", "condition_"):
        found = rdms.dims if isinstance(rdms, xr.DataArray) else type(rdms).__name__
        raise AnalysisError(f"rdms: expected a DataArray with dims (split, condition, condition_) (from split_rdms), "
                            f"found {found}")
    if rdms.sizes["split"] < 2:
        raise AnalysisError(f"rdms: expected at least 2 RDMs along 'split', found {rdms.sizes['split']}")
    first = check_rdm(rdms.isel(split=0), "rdms")
    vectors = np.stack([upper_triangle(align_rdms(first, check_rdm(rdms.isel(split=k), "rdms")))
                        for k in range(rdms.sizes["split"])])
    pooled = pool_rdm_vectors(vectors, method)
    n = len(vectors)
    upper = np.array([similarity(pooled, vectors[k], method) for k in range(n)])
    lower = np.array([similarity(pool_rdm_vectors(np.delete(vectors, k, axis=0), method), vectors[k], method)
                      for k in range(n)])
    attrs: dict[str, Any] = {
        "analysis": "rdm_noise_ceiling", "method": method, "n_splits": n,
        "definition": "rsatoolbox boot_noise_ceiling: upper = mean similarity of each split's RDM to the pooled RDM "
                      "of all splits; lower = to the pooled RDM of the other splits (leave one out)",
        "long_name": f"noise ceiling of the RDM similarity ({method})", "units": "1",
    }
    return xr.Dataset({"lower": ((), lower.mean()), "upper": ((), upper.mean()),
                       "lower_per_split": (("split",), lower), "upper_per_split": (("split",), upper)},
                      coords={"split": rdms.split.values}, attrs=attrs)


def split_halves(codes: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Random halves of each condition's presentations: (n_splits, n_presentations) bool, True in
    the first half; a condition with k presentations puts k // 2 of them in the first half.

    >>> split_halves(np.array([0, 0, 1, 1, 1]), 1, 0).sum()
    np.int64(2)
    """
    codes = np.asarray(codes).reshape(-1)
    rng = np.random.default_rng(seed)
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    halves = np.empty((n_splits, len(codes)), dtype=bool)
    for s in range(n_splits):
        order = np.lexsort((rng.random(len(codes)), codes))  # presentations by condition, random within
        rank = np.empty(len(codes), dtype=np.int64)
        rank[order] = np.arange(len(codes)) - np.repeat(starts, counts)
        halves[s] = rank < (counts // 2)[codes]
    return halves


def split_half_reliability(activity: xr.DataArray, by: str = "stimulus_id", n_splits: int = 10,
                           seed: int = 0) -> xr.Dataset:
    """Each unit's split-half reliability over conditions, Spearman-Brown corrected.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses with at least 2 presentations of every condition (unequal numbers are fine:
        a condition with k presentations gives k // 2 to one half and the rest to the other).
        May be dask-backed.
    by : str, default "stimulus_id"
        The conditions.
    n_splits : int, default 10
        Number of random splits into halves.
    seed : int, default 0
        Seed of the splits.

    Returns
    -------
    xarray.Dataset, dims (neuroid,)
        ``reliability``: ``2 r / (1 + r)`` with r the split-half Pearson r averaged over
        splits; ``half_r``: that mean r. NaN for a unit whose half means are constant over the
        conditions (a silent unit). Every ``neuroid`` coordinate is kept; ``attrs``:
        ``analysis``, ``by``, ``n_splits``, ``seed``, ``n_conditions``, ``definition``.

    Raises
    ------
    neurorecord.errors.AnalysisError
        A condition with fewer than 2 presentations; ``n_splits`` or ``seed`` out of range.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(20, 3)) * [1.0, 1.0, 0.0]        # the third unit has no signal
    >>> trials = np.concatenate([signal + rng.normal(scale=0.3, size=signal.shape) for _ in range(4)])
    >>> activity = xr.DataArray(trials, dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", np.tile(np.arange(20).astype(str), 4)),
    ...             "neuroid_id": ("neuroid", ["v1.0", "v1.1", "v1.2"])})
    >>> (split_half_reliability(activity)["reliability"] > 0.8).values
    array([ True,  True, False])
    """
    n_splits = check_scalar("n_splits", n_splits, int, low=1, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    act = check_activity(activity, by)
    groups = grouping(act, by, min_groups=3)
    few = groups.counts < 2
    if few.any():
        labels = [str(v) for v in groups.levels[few][:5]]
        raise AnalysisError(f"activity: a split-half reliability needs at least 2 presentations of every {by}, found "
                            f"{int(groups.counts[few].min())} for {', '.join(labels)} ({int(few.sum())} conditions)")
    n_pres, n_cond = len(groups.codes), groups.n_groups
    halves = split_halves(groups.codes, n_splits, seed)

    def kernel(block: np.ndarray) -> np.ndarray:
        out = np.empty((n_splits, block.shape[1]))
        onehot = np.zeros((n_cond, n_pres))
        for s in range(n_splits):
            means = []
            for half in (halves[s], ~halves[s]):
                onehot[:] = 0.0
                onehot[groups.codes[half], np.flatnonzero(half)] = 1.0
                means.append(onehot @ block / onehot.sum(axis=1, keepdims=True))
            out[s] = pearson_columns(means[0], means[1])
        return out

    half_r = map_unit_blocks(kernel, act, n_splits).mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        reliability = 2.0 * half_r / (1.0 + half_r)
    attrs = {"analysis": "split_half_reliability", "by": by, "n_splits": n_splits, "seed": seed,
             "n_conditions": n_cond,
             "definition": "Pearson r of the two halves' condition means, averaged over random splits of each "
                           "condition's presentations, then Spearman-Brown corrected: 2 r / (1 + r)",
             "long_name": "split-half reliability (Spearman-Brown corrected)", "units": "1"}
    return unit_dataset(act, {"reliability": (("neuroid",), reliability), "half_r": (("neuroid",), half_r)},
                        attrs=attrs)
