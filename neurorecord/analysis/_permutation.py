"""Permutation test of any per-unit index by shuffling the condition labels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from .._validation import check_scalar, shape_text
from ..errors import AnalysisError
from ._stats_common import prepare, reaching, result_attrs, seed_of
from ._units import fdr, map_unit_blocks, unit_dataset

__all__ = ["permutation_test"]

def _permutation_kernel(block: np.ndarray, statistic: Callable, codes: np.ndarray, levels: np.ndarray,
                        n_permutations: int, seed: int) -> np.ndarray:
    u = block.shape[1]

    def evaluate(c: np.ndarray) -> np.ndarray:
        value = np.asarray(statistic(block, c, levels), dtype=np.float64)
        if value.shape != (u,):
            raise AnalysisError(
                f"statistic: expected an array of shape (n_units,) = ({u},) from statistic(values, codes, levels), "
                f"found shape {shape_text(value.shape)}"
            )
        return value

    observed = evaluate(codes)
    threshold = reaching(observed)
    exceed = np.zeros(u)
    rng = np.random.default_rng(seed)  # every block sees the same permutations
    for _ in range(n_permutations):
        exceed += evaluate(rng.permutation(codes)) >= threshold
    p = (1 + exceed) / (1 + n_permutations)
    p[np.isnan(observed)] = np.nan
    return np.stack([observed, p])


def permutation_test(activity: xr.DataArray, by: str,
                     statistic: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                     n_permutations: int = 1000, seed: int | None = 0, correction: str = "fdr_bh") -> xr.Dataset:
    """Permutation test of any per-unit index by shuffling the condition labels.

    ``statistic`` computes an index for every unit (a selectivity index, a tuning depth, an F
    statistic...) from the responses and the condition of each presentation. The conditions are
    shuffled among the presentations ``n_permutations`` times (the group sizes stay fixed) and the
    index recomputed; the p value is the fraction of shuffles whose index is at least the
    observed one::

        p = (1 + #(null >= observed)) / (1 + n_permutations)

    a one-sided test in which *larger means more selective*: pass an index with that orientation
    (negate one that is not; take the absolute value for a two-sided question). Null values within
    100 float64 epsilons (relative) of the observed one count as reaching it, as in
    ``scipy.stats.permutation_test``. The smallest attainable p is ``1 / (1 + n_permutations)``,
    which bounds the q values after correction: give enough permutations for the number of units.
    The test makes no assumption on the scale or the distribution of the responses.

    One permutation of the presentations serves all units of a block (and every block sees the
    same permutations: the result does not depend on the block size, and a seed fixes it).

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (any unit); a ``time_bin`` dim is averaged over. May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate whose values are the conditions.
    statistic : callable ``(values, codes, levels) -> numpy.ndarray of shape (n_units,)``
        ``values`` (n_presentations, n_units) float64, one column per unit; ``codes``
        (n_presentations,) int, the index in ``levels`` of each presentation's condition;
        ``levels`` the sorted distinct values of ``by``. Must be vectorised over units; e.g. the
        functions of :data:`neurorecord.analysis.selectivity.INDEX_FUNCTIONS`. It is called
        ``n_permutations + 1`` times per block of units: it must not modify its arguments.
    n_permutations : int, default 1000
        Number of label shuffles.
    seed : int >= 0 or None, default 0
        Seed of ``numpy.random.default_rng`` drawing the shuffles; None draws a fresh one (it is
        recorded in ``attrs["seed"]``).
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Multiple-comparison correction of ``p`` over the units of each region.

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid``, with every neuroid coordinate of ``activity``:

        - ``observed`` (neuroid): the index on the real labels.
        - ``p`` (neuroid): one-sided permutation p value; NaN where ``observed`` is NaN.
        - ``q`` (neuroid): ``p`` corrected over the units of each region.

        attrs: as :func:`~neurorecord.analysis.stats.anova`, plus ``statistic`` (its name), ``n_permutations``, ``seed``,
        ``alternative`` ("greater").

    Raises
    ------
    AnalysisError
        As :func:`~neurorecord.analysis.stats.anova`; ``statistic`` is not callable or returns
        the wrong shape; ``n_permutations`` is not an integer >= 1; ``seed`` is not an integer
        >= 0 or None.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> label = np.repeat([0, 1, 2], 10)
    >>> x = rng.normal(size=(30, 2)); x[label == 1, 0] += 2
    >>> act = xr.DataArray(x, dims=("presentation", "neuroid"), coords={"label": ("presentation", label)})
    >>> def spread(values, codes, levels):          # range of the condition means
    ...     means = np.stack([values[codes == i].mean(axis=0) for i in range(len(levels))])
    ...     return means.max(axis=0) - means.min(axis=0)
    >>> result = permutation_test(act, "label", spread, n_permutations=199, seed=1)
    >>> result["p"].values
    array([0.005, 0.365])
    """
    act, groups = prepare(activity, by, correction)
    if not callable(statistic):
        raise AnalysisError(
            f"statistic: expected a function (values, codes, levels) -> (n_units,), found {type(statistic).__name__}"
        )
    n_permutations = check_scalar("n_permutations", n_permutations, int, low=1, error=AnalysisError)
    seed = seed_of(seed)
    codes, levels = groups.codes.copy(), groups.levels

    def kernel(block: np.ndarray) -> np.ndarray:
        return _permutation_kernel(block, statistic, codes, levels, n_permutations, seed)

    observed, p = map_unit_blocks(kernel, act, 2)
    q, family = fdr(p, act, correction)
    name = getattr(statistic, "__qualname__", None) or getattr(statistic, "__name__", None) or repr(statistic)
    return unit_dataset(
        act,
        {"observed": (("neuroid",), observed), "p": (("neuroid",), p), "q": (("neuroid",), q)},
        attrs=result_attrs("permutation test (label shuffles, one-sided: larger is more selective)",
                     'scipy.stats.permutation_test(permutation_type="independent", alternative="greater")',
                     act, groups, correction, family, statistic=str(name), n_permutations=n_permutations, seed=seed,
                     alternative="greater"),
    )
