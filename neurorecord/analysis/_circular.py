"""Rayleigh-type test of circular tuning, valid for any design of trials per angle.

The statistic is the resultant length ``R`` of a unit's tuning curve (its mean response at each
level of ``by``, each level counted once whatever its number of trials), and the p value comes
from a permutation null that shuffles the trial labels among the presentations, keeping the
design (the number of trials per level). Weighting each *trial* by its response instead (the
classic weighted Rayleigh test with Zar's p) makes an over-sampled direction look preferred:
on an unbalanced design untuned units come out "tuned".

The null is vectorised over units and permutations: the tuning curve's resultant under one
shuffle is a weighted sum of the presentations (weights ``cos(theta) / n``, ``sin(theta) / n``
and ``1 / n`` of each presentation's level), so a chunk of shuffles is one matrix product
``(3 x shuffles, presentations) @ (presentations, units)``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._validation import check_scalar
from ..errors import AnalysisError
from ._levels import angle_problem
from ._stats_common import prepare, reaching, result_attrs, seed_of
from ._units import fdr, map_unit_blocks, unit_dataset
from .tuning import describe_variables
from .selectivity import vector_from_means
from .tuning import group_means

__all__ = ["rayleigh"]

#: Resultant length below which a tuning curve is taken as exactly flat (R = 0: rounding of
#: balanced responses): it has no preferred angle and its p is 1.
_ZERO_RESULTANT = 1e-12

#: Bounds of one matrix product of the null (float64): the weights of a chunk of shuffles
#: (3 x shuffles x presentations) and its output (3 x shuffles x units).
_WEIGHT_BYTES = 8 * 2**20
_OUTPUT_BYTES = 32 * 2**20


def _shuffles_per_product(n_presentations: int, n_units: int, n_permutations: int) -> int:
    """Shuffles whose resultants one matrix product computes (within :data:`_WEIGHT_BYTES` and
    :data:`_OUTPUT_BYTES`)."""
    by_weights = _WEIGHT_BYTES // (24 * max(n_presentations, 1))
    by_output = _OUTPUT_BYTES // (24 * max(n_units, 1))
    return int(max(1, min(n_permutations, by_weights, by_output)))


def _resultants(weights: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Resultant lengths (shuffles, units) from stacked weights (3 x shuffles, presentations)."""
    out = (weights @ block).reshape(-1, 3, block.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.hypot(out[:, 0], out[:, 1]) / out[:, 2]


def _null_kernel(block: np.ndarray, codes: np.ndarray, table: np.ndarray, n_permutations: int,
                 seed: int) -> np.ndarray:
    """Condition means (K rows), p, summed response and a negative-value flag of every column.

    ``table`` (K, 3) holds ``cos(theta_k) / n_k, sin(theta_k) / n_k, 1 / n_k`` of each level;
    ``codes`` the level of each presentation. Shuffles are ``rng.permutation(codes)`` in order
    from ``numpy.random.default_rng(seed)``, the same for every block (so the result does not
    depend on the block size), as :func:`~neurorecord.analysis.stats.permutation_test` draws them.
    """
    n, u = block.shape
    means = group_means(block, codes, len(table))
    observed = _resultants(table[codes].T, block)[0]
    # a flat tuning curve (R = 0 up to rounding) is reached by every shuffle: p = 1
    threshold = np.where(observed < _ZERO_RESULTANT, 0.0, reaching(observed))
    exceed = np.zeros(u)
    rng = np.random.default_rng(seed)
    step = _shuffles_per_product(n, u, n_permutations)
    for start in range(0, n_permutations, step):
        shuffled = np.stack([rng.permutation(codes) for _ in range(min(step, n_permutations - start))])
        weights = table[shuffled].transpose(0, 2, 1).reshape(-1, n)  # (3 x shuffles, presentations)
        exceed += (_resultants(weights, block) >= threshold).sum(axis=0)
    p = (1 + exceed) / (1 + n_permutations)
    p[np.isnan(observed)] = np.nan
    with np.errstate(invalid="ignore"):
        negative = (block < 0).any(axis=0)
    return np.concatenate([means, p[None], block.sum(axis=0)[None], negative[None].astype(np.float64)])


def _design(counts: np.ndarray) -> str:
    """The design in words: ``"76 trials; 6 to 13 per level"`` or ``"80 trials; 10 per level"``."""
    spread = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()} to {counts.max()}"
    return f"{int(counts.sum())} trials; {spread} per level"


def rayleigh(activity: xr.DataArray, by: str, period: float, correction: str = "fdr_bh", n_permutations: int = 1000,
             seed: int | None = 0) -> xr.Dataset:
    """Test of circular tuning of every unit over an angle (orientation, direction), any design.

    The statistic is the resultant length of the unit's tuning curve: with ``r_k`` its mean
    response at level ``k`` of ``by`` (each level counted once, whatever its number of trials)
    and ``theta_k = 2 pi * angle_k / period``,
    ``R = |sum_k r_k exp(i theta_k)| / sum_k r_k`` (Rayleigh's mean resultant length of the
    levels weighted by the tuning curve; the vector OSI/DSI of
    :func:`~neurorecord.analysis.selectivity.selectivity`). H0: the responses do not depend on
    the angle (the trials are exchangeable across levels). The p value is from the permutation
    null: the trial labels are shuffled among the presentations ``n_permutations`` times,
    keeping the number of trials per level, and ``R`` recomputed::

        p = (1 + #(R_shuffled >= R)) / (1 + n_permutations)

    (shuffled values within 100 float64 epsilons of ``R`` count as reaching it, as in
    :func:`~neurorecord.analysis.stats.permutation_test`, which gives the same p for the same
    statistic and seed). The test is exact for any design, balanced or not, and does not
    depend on the scale of the responses (spike counts, rates and model activations alike).
    The smallest attainable p is ``1 / (1 + n_permutations)``: with Bonferroni over ``m``
    units, give more than ``m / alpha`` permutations. All units and a chunk of shuffles are
    computed in one matrix product; one shuffle serves every unit.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Non-negative responses (spike counts, rates, rectified activity); a ``time_bin`` dim is
        averaged over. May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate holding the angle of each presentation, in
        degrees; at least two distinct values. Levels equal modulo ``period`` (0 and 180 deg
        with ``period=180``) stay separate levels, at the same point of the circle.
    period : float
        Period of the angle in degrees: 180 for orientation, 360 for direction of motion.
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over the units of each region.
    n_permutations : int, default 1000
        Shuffles of the trial labels in the null.
    seed : int >= 0 or None, default 0
        Seed of ``numpy.random.default_rng`` drawing the shuffles; None draws a fresh one (it is
        recorded in ``attrs["seed"]``).

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid``, with every neuroid coordinate of ``activity``:

        - ``R`` (neuroid): resultant length of the tuning curve, in [0, 1]; 0 for a flat one.
        - ``p`` (neuroid): permutation p value (one-sided: larger ``R`` is more tuned); 1
          where ``R`` is 0 (below 1e-12, rounding).
        - ``q`` (neuroid): ``p`` corrected over the units of each region.
        - ``preferred`` (neuroid): angle of the resultant in degrees of ``by``, in
          ``[0, period)``; NaN where ``R`` is 0.
        - ``Z`` (neuroid): ``n * R**2``, descriptive only (``p`` does not use it). On a balanced
          design it is the classic Rayleigh Z of the trials weighted by their responses
          (``pingouin.circ_rayleigh(angles, w=responses)``): for spike counts, the Z of the
          spikes as observed angles of an equally sampled circle. Its size depends on the scale
          of the responses.
        - ``n`` (neuroid): the unit's summed response over all presentations (spikes, for counts).

        ``R``, ``p``, ``q``, ``preferred`` and ``Z`` are NaN for a unit that never responds
        (``n = 0``) or has NaN responses. attrs: as
        :func:`~neurorecord.analysis.stats.anova`, plus ``statistic``, ``null`` (the
        permutation scheme and the design), ``n_permutations``, ``seed``, ``alternative``
        ("greater") and ``period``.

    Raises
    ------
    AnalysisError
        As :func:`~neurorecord.analysis.stats.anova`; ``by`` is not numeric; ``period`` is not
        a number > 0; ``n_permutations`` is not an integer >= 1; ``seed`` is not an integer >= 0
        or None; some units have negative responses (the message says how many).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> orientation = np.repeat([0.0, 45.0, 90.0, 135.0], [3, 6, 4, 5])    # unbalanced: 3 to 6 trials
    >>> counts = np.stack([np.where(orientation == 90, 6.0, 1.0), np.full(18, 3.0)], axis=1)
    >>> act = xr.DataArray(counts, dims=("presentation", "neuroid"),
    ...                    coords={"orientation": ("presentation", orientation)})
    >>> result = rayleigh(act, "orientation", period=180, n_permutations=999, seed=0)
    >>> result["preferred"].values, result["R"].values.round(3), result["p"].values
    (array([90., nan]), array([0.556, 0.   ]), array([0.001, 1.   ]))
    >>> result.attrs["null"]
    'permutation of the trial labels within the design (18 trials; 3 to 6 per level), n=999'
    """
    act, groups = prepare(activity, by, correction)
    problem = angle_problem(groups.levels, by, "the rayleigh test")
    if problem:
        raise AnalysisError(f"by: {problem}")
    period = check_scalar("period", period, float, low=0, closed="neither", error=AnalysisError)
    n_permutations = check_scalar("n_permutations", n_permutations, int, low=1, error=AnalysisError)
    seed = seed_of(seed)
    angles = groups.levels.astype(np.float64)
    theta = 2 * np.pi * angles / period
    counts = groups.counts.astype(np.float64)
    table = np.stack([np.cos(theta) / counts, np.sin(theta) / counts, 1.0 / counts], axis=1)
    codes, k = groups.codes, groups.n_groups

    def kernel(block: np.ndarray) -> np.ndarray:
        return _null_kernel(block, codes, table, n_permutations, seed)

    out = map_unit_blocks(kernel, act, k + 3)
    means, p, total, negative = out[:k], out[k], out[k + 1], out[k + 2].astype(bool)
    if negative.any():
        ids = act.coords["neuroid_id"].values[negative] if "neuroid_id" in act.coords else []
        example = f" (e.g. {', '.join(map(str, ids[:3]))})" if len(ids) else ""
        raise AnalysisError(
            f"activity: expected non-negative responses (the rayleigh test weighs each angle by the unit's mean "
            f"response there), found negative values in {int(negative.sum())} of {act.sizes['neuroid']} "
            f"units{example}; rectify or shift them, or use permutation_test with a tuning index"
        )
    r, preferred = vector_from_means(means, angles, period)
    preferred = np.where(r >= _ZERO_RESULTANT, preferred, np.nan)
    with np.errstate(invalid="ignore"):
        z = total * r**2
    q, family = fdr(p, act, correction)
    return describe_variables(unit_dataset(
        act,
        {"R": (("neuroid",), r), "Z": (("neuroid",), z), "p": (("neuroid",), p), "q": (("neuroid",), q),
         "preferred": (("neuroid",), preferred), "n": (("neuroid",), total)},
        attrs=result_attrs(
            "Rayleigh-type test of circular tuning: resultant of the tuning curve, permutation null",
            "R: pingouin.circ_r(angles, w=condition means); p: permutation_test(statistic=R)",
            act, groups, correction, family,
            statistic="R: resultant length of the tuning curve (condition means, each level counted once)",
            null=f"permutation of the trial labels within the design ({_design(groups.counts)}), n={n_permutations}",
            n_permutations=n_permutations, seed=seed, alternative="greater", period=period,
        ),
    ), act, {"R": ("resultant length of the tuning curve", "1"), "Z": ("Rayleigh Z = n R^2", "1"),
             "p": ("p value (permutation)", "1"), "q": (f"q value ({correction})", "1"),
             "preferred": (f"preferred {by} (resultant angle)", "deg"), "n": ("presentations", None)})
