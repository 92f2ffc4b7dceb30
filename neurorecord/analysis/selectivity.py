"""Selectivity indices: how strongly each unit prefers some conditions over the others.

(Over 500 lines for one job: the table of indices, their kernels from condition means, their
plain-numpy forms and the analysis that computes them stay together.)

:func:`selectivity` computes one index per call on a recording (presentation x neuroid) grouped
by a stimulus coordinate, from the same per-condition statistics on model and biological data,
on numpy or dask-backed activity. The indices:

===========================  ==============================================  ============
index                        definition (r_k: the unit's mean response in     dims
                             condition k, K conditions)
===========================  ==============================================  ============
``csi``                      class selectivity (Morcos et al. 2018):         (neuroid,)
                             (mu_max - mu_rest) / (mu_max + mu_rest)
``dprime``                   one-vs-rest d' per condition                    (by, neuroid)
``osi``, ``dsi``             orientation / direction selectivity, vector     (neuroid,)
                             and ratio forms, ``by`` in degrees
``osi_vector``,              one form alone (``dsi_vector``, ``dsi_ratio``    (neuroid,)
``osi_ratio``, ...           likewise); the vector form needs no partner
                             angles
``lifetime_sparseness``      Vinje & Gallant (2000) over the K condition     (neuroid,)
                             means
``population_sparseness``    the same formula across units, per condition    (by,)
``magnitude``                mean |response| over all presentations          (neuroid,)
===========================  ==============================================  ============

:data:`INDICES` is the one table of index names, shared with
:func:`~neurorecord.analysis.populations.define_population` (which thresholds the per-unit
ones) and the protocol checks of :mod:`neurorecord.analysis.checks`. The scalar per-unit
indices are also available as plain functions of numpy arrays in :data:`INDEX_FUNCTIONS`
(``(values, codes, levels) -> (units,)``), for permutation tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_choice
from ..errors import AnalysisError
from ._indices import INDICES, IndexSpec
from ._levels import angle_problem, fold, partner_problem, partners
from ._units import check_activity, grouping, map_unit_blocks, unit_dataset
from .tuning import _common_attrs, describe_variables, group_means, group_moments

__all__ = [
    "selectivity",
    "INDEX_FUNCTIONS",
    "INDICES",
    "IndexSpec",
    "csi_index",
    "osi_vector_index",
    "dsi_vector_index",
    "lifetime_sparseness_index",
    "magnitude_index",
]

_NEGATIVE_CHOICES = ("raise", "shift", "nan")


def _check_negative(negative: object) -> str:
    return check_choice("negative", negative, _NEGATIVE_CHOICES, error=AnalysisError)


def _nonnegative(means: np.ndarray, negative: str, index: str, unit_names: np.ndarray | None = None) -> np.ndarray:
    """Apply the ``negative`` policy to condition means (conditions, units); returns a new array.

    ``"raise"``: units with a negative condition mean are an error; ``"shift"``: such a unit's
    means are shifted up by its lowest (negative) condition mean, so that it becomes 0; units
    without negative means are left as they are; ``"nan"``: such units become NaN.
    """
    means = np.array(means, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = (means < 0).any(axis=0)
    if not bad.any():
        return means
    if negative == "raise":
        cols = np.flatnonzero(bad)
        names = [str(unit_names[c]) if unit_names is not None else f"#{c}" for c in cols[:5]]
        more = f", ... ({len(cols)} units)" if len(cols) > 5 else ""
        raise AnalysisError(
            f"{index}: the index is defined for non-negative responses, but unit(s) {', '.join(names)}{more} "
            f"have negative condition means; pass negative='shift' (subtract such a unit's lowest condition mean) "
            f"or negative='nan' (report NaN for them)"
        )
    if negative == "shift":
        means[:, bad] -= np.nanmin(means[:, bad], axis=0)
    else:
        means[:, bad] = np.nan
    return means


# ----------------------------------------------------------------------------- from condition means


def _csi_from_means(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSI and index of the preferred condition from non-negative means (conditions, units)."""
    n_cond = means.shape[0]
    preferred = np.argmax(means, axis=0)
    cols = np.arange(means.shape[1])
    mu_max = means[preferred, cols]
    others = np.ones(means.shape, dtype=bool)
    others[preferred, cols] = False
    mu_rest = np.where(others, means, 0.0).sum(axis=0) / (n_cond - 1)
    den = mu_max + mu_rest
    with np.errstate(invalid="ignore", divide="ignore"):
        csi = np.where(den > 0, (mu_max - mu_rest) / den, np.nan)
    return csi, preferred


def _angles(levels: np.ndarray, by: str, index: str) -> np.ndarray:
    problem = angle_problem(levels, by, f"the {index} index")
    if problem:
        raise AnalysisError(f"by: {problem}")
    return np.asarray(levels).astype(np.float64)


def vector_from_means(means: np.ndarray, angles: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Vector index ``|sum_k r_k exp(2 pi i theta_k / period)| / sum_k r_k`` and the vector's angle (deg).

    ``means`` (conditions, units), ``angles`` (conditions,) in degrees. The index is NaN where
    the means sum to 0; the angle, in [0, period), is NaN where the sum of vectors is 0 (below
    1e-12 of the summed |means|: rounding of balanced responses).

    >>> index, angle = vector_from_means(np.array([[1.0], [0.0], [0.0], [0.0]]), np.array([0, 45, 90, 135]), 180.0)
    >>> index.round(12), angle
    (array([1.]), array([0.]))
    """
    phase = np.exp(2j * np.pi * angles / period)
    z = phase @ means
    total = means.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        index = np.where(total != 0, np.abs(z) / total, np.nan)
    direction = np.mod(np.angle(z) * period / (2 * np.pi), period)
    direction = np.where(direction >= period, 0.0, direction)
    tiny = np.abs(z) <= 1e-12 * np.abs(means).sum(axis=0)
    return index, np.where(tiny | ~np.isfinite(index), np.nan, direction)


def _ratio_from_means(means: np.ndarray, angles: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """(r_pref - r_partner) / (r_pref + r_partner) over means folded modulo ``period``; preferred (deg).

    The partner of each angle is ``period / 2`` away; every angle must have one (checked before).
    """
    folded, inverse = fold(angles, period)
    partner = partners(folded, period / 2, period)
    sums = np.zeros((len(folded), means.shape[1]))
    np.add.at(sums, inverse, means)
    fmeans = sums / np.bincount(inverse, minlength=len(folded))[:, None]
    preferred = np.argmax(fmeans, axis=0)
    cols = np.arange(means.shape[1])
    r_pref = fmeans[preferred, cols]
    r_other = fmeans[partner[preferred], cols]
    den = r_pref + r_other
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den > 0, (r_pref - r_other) / den, np.nan)
    return ratio, np.where(np.isnan(fmeans).any(axis=0), np.nan, folded[preferred])


def _sparseness(rates: np.ndarray, axis: int) -> np.ndarray:
    """Vinje-Gallant sparseness over ``axis``, ignoring NaN entries (n = number of finite ones)."""
    finite = np.isfinite(rates)
    n = finite.sum(axis=axis)
    r = np.where(finite, rates, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = r.sum(axis=axis) / n
        m2 = (r * r).sum(axis=axis) / n
        s = (1.0 - m1 * m1 / m2) / (1.0 - 1.0 / n)
    return np.where((m2 > 0) & (n >= 2), s, np.nan)


def _dprime_from_moments(counts: np.ndarray, means: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """One-vs-rest d' (conditions, units); the rest pooled over the other conditions' presentations.

    The rest's sum of squares combines the groups' own sums of squares with their means'
    deviations from the rest mean (no cancellation: every term is non-negative).
    """
    out = np.empty_like(means)
    weights = counts[:, None].astype(np.float64)
    for c in range(len(counts)):
        others = np.arange(len(counts)) != c
        n_rest = counts[others].sum()
        mean_rest = (weights[others] * means[others]).sum(axis=0) / n_rest
        ss_rest = (ss[others] + weights[others] * (means[others] - mean_rest) ** 2).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            var_rest = ss_rest / (n_rest - 1)
            var_c = ss[c] / (counts[c] - 1) if counts[c] > 1 else np.full(means.shape[1], np.nan)
            out[c] = (means[c] - mean_rest) / np.sqrt((var_c + var_rest) / 2.0)
    return out


# ----------------------------------------------------------------------------- raw index functions


def _means(values: np.ndarray, codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    return group_means(np.asarray(values, dtype=np.float64), np.asarray(codes).reshape(-1), len(levels))


def csi_index(values: np.ndarray, codes: np.ndarray, levels: np.ndarray, negative: str = "raise") -> np.ndarray:
    """Class selectivity index of each unit (see :func:`selectivity`, index ``"csi"``).

    Parameters
    ----------
    values : numpy.ndarray of shape (n_presentations, n_units), float64
        Responses.
    codes : numpy.ndarray of shape (n_presentations,), int
        Condition of each presentation, an index into ``levels``.
    levels : numpy.ndarray of shape (n_conditions,)
        The conditions' values.
    negative : {"raise", "shift", "nan"}, default "raise"
        What to do with units that have a negative condition mean.

    Returns
    -------
    numpy.ndarray of shape (n_units,)

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[4.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    >>> csi_index(values, np.array([0, 1, 2]), np.array(["a", "b", "c"]))
    array([1., 0.])
    """
    means = _nonnegative(_means(values, codes, levels), _check_negative(negative), "csi")
    return _csi_from_means(means)[0]


def osi_vector_index(values: np.ndarray, codes: np.ndarray, levels: np.ndarray, negative: str = "raise") -> np.ndarray:
    """Orientation selectivity, vector form: 1 - circular variance with doubled angles (period 180 deg).

    ``levels`` are angles in degrees; arguments as in :func:`csi_index`.

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    >>> np.round(osi_vector_index(values, np.arange(4), np.array([0, 45, 90, 135])), 12)
    array([1., 0.])
    """
    means = _nonnegative(_means(values, codes, levels), _check_negative(negative), "osi_vector")
    return vector_from_means(means, _angles(levels, "levels", "osi_vector"), 180.0)[0]


def dsi_vector_index(values: np.ndarray, codes: np.ndarray, levels: np.ndarray, negative: str = "raise") -> np.ndarray:
    """Direction selectivity, vector form: 1 - circular variance over directions (period 360 deg).

    ``levels`` are angles in degrees; arguments as in :func:`csi_index`.

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[1.0], [0.0], [1.0], [0.0]])
    >>> np.round(dsi_vector_index(values, np.arange(4), np.array([0, 90, 180, 270])), 12)
    array([0.])
    """
    means = _nonnegative(_means(values, codes, levels), _check_negative(negative), "dsi_vector")
    return vector_from_means(means, _angles(levels, "levels", "dsi_vector"), 360.0)[0]


def lifetime_sparseness_index(values: np.ndarray, codes: np.ndarray, levels: np.ndarray,
                              negative: str = "raise") -> np.ndarray:
    """Lifetime sparseness of each unit over its condition means (Vinje & Gallant 2000).

    Arguments as in :func:`csi_index`.

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[1.0, 2.0], [0.0, 2.0], [0.0, 2.0]])
    >>> lifetime_sparseness_index(values, np.arange(3), np.arange(3))
    array([1., 0.])
    """
    means = _nonnegative(_means(values, codes, levels), _check_negative(negative), "lifetime_sparseness")
    return _sparseness(means, axis=0)


def magnitude_index(values: np.ndarray, codes: np.ndarray | None = None, levels: np.ndarray | None = None) -> np.ndarray:
    """Mean activation magnitude of each unit: mean |response| over all presentations.

    ``codes`` and ``levels`` are accepted for a common signature and not used.

    Examples
    --------
    >>> import numpy as np
    >>> magnitude_index(np.array([[1.0, -2.0], [3.0, 2.0]]))
    array([2., 2.])
    """
    return np.abs(np.asarray(values, dtype=np.float64)).mean(axis=0)


#: Scalar per-unit indices as ``f(values, codes, levels) -> (units,)`` on numpy arrays:
#: ``values`` (presentation, units) float64, ``codes`` (presentation,) int indices into
#: ``levels``. They compute exactly what :func:`selectivity` reports for the same data.
INDEX_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "csi": csi_index,
    "osi_vector": osi_vector_index,
    "dsi_vector": dsi_vector_index,
    "lifetime_sparseness": lifetime_sparseness_index,
    "magnitude": magnitude_index,
}


# ----------------------------------------------------------------------------- the analysis


def selectivity(activity: xr.DataArray, by: str | None, index: str, **kwargs: Any) -> xr.Dataset:
    """A selectivity index of every unit, from its responses grouped by a stimulus coordinate.

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        Responses (a ``time_bin`` dim is averaged over). May be dask-backed.
    by : str
        Name of the ``presentation`` coordinate whose values are the conditions (at least two);
        angles in degrees for the ``osi*`` and ``dsi*`` indices. Not used by ``"magnitude"``
        (may be None).
    index : str
        One of the indices below (the names of :data:`INDICES`). With r_k the unit's mean response in condition k (K
        conditions):

        ``"csi"``
            Class selectivity index (Morcos et al. 2018): ``(mu_max - mu_rest) / (mu_max + mu_rest)``
            with mu_max the largest condition mean and mu_rest the (unweighted) mean of the
            other K - 1 condition means. In [0, 1] for non-negative responses; NaN where all
            condition means are 0. Variables ``csi`` and ``preferred`` (the level of mu_max, the
            first one on ties).
        ``"dprime"``
            One-vs-rest d' per condition: ``(mu_c - mu_rest) / sqrt((var_c + var_rest) / 2)``, the
            rest being all presentations of the other conditions pooled, variances with ddof=1.
            NaN where condition c has one presentation; +-inf where both variances are 0 and
            the means differ, NaN where they do not. Variable ``dprime`` (by, neuroid).
        ``"osi"``, ``"dsi"``
            Orientation / direction selectivity. Vector form ``<x>si_vector = |sum_k r_k
            exp(2 pi i theta_k / P)| / sum_k r_k`` (1 - circular variance) with P = 180 deg for
            OSI (doubled angles, so directions theta and theta + 180 count as one orientation)
            and P = 360 deg for DSI; ``preferred_vector`` is the angle of that sum (deg in [0,
            P); NaN where the sum is 0). Ratio form ``<x>si_ratio = (r_pref - r_x) / (r_pref +
            r_x)`` where the condition means are first averaged over the levels that are the
            same angle modulo P (for OSI on direction data: each direction with its opposite,
            so the orientation response is the mean over its two directions), pref is the
            largest of these (the first on ties, ``preferred`` in deg, [0, P)), and x is
            pref + 90 deg (OSI) or pref + 180 deg (DSI). Every level must have its
            orthogonal (OSI) / opposite (DSI) angle among the levels (within 1e-6 deg), else
            AnalysisError.
        ``"osi_vector"``, ``"osi_ratio"``, ``"dsi_vector"``, ``"dsi_ratio"``
            One form alone, with the same definition and variable names: the vector form
            (``<x>si_vector``, ``preferred_vector``) needs no partner angles, so it serves any
            set of angles; the ratio form (``<x>si_ratio``, ``preferred``) needs them.
        ``"lifetime_sparseness"``
            Vinje & Gallant (2000) over the K condition means of each unit:
            ``S = (1 - (sum_k r_k / K)**2 / (sum_k r_k**2 / K)) / (1 - 1/K)``; 1 for a unit that
            responds in one condition only, 0 for uniform responses, NaN where all means are 0.
        ``"population_sparseness"``
            The same formula across the N units, for each condition (Treves & Rolls style):
            one value per condition, dims (by,), not per unit. Units that are NaN (see
            ``negative="nan"``) are left out of N.
        ``"magnitude"``
            Mean activation magnitude: mean of |response| over all presentations of each unit
            (not grouped).
    negative : {"raise", "shift", "nan"}, default "raise"
        Only for ``csi``, the ``osi*`` and ``dsi*`` indices, ``lifetime_sparseness`` and
        ``population_sparseness``, which are defined for non-negative responses (rates).
        The check is on condition means, not single presentations. ``"raise"``: a unit with a
        negative condition mean is an AnalysisError naming it; ``"shift"``: such a unit's
        condition means are shifted up by its lowest (negative) condition mean before the index
        is computed (units whose means are all >= 0 are left as they are); ``"nan"``: such
        units get NaN.

    Returns
    -------
    xarray.Dataset
        Indexed by ``neuroid`` (every neuroid coordinate kept); the conditions' dim is named
        after ``by`` and carries its sorted values, with ``n`` (presentations per condition).
        ``attrs``: ``analysis``, ``index``, ``by``, ``definition``, ``negative`` and ``period``
        where they apply, ``activity_units``.

    Raises
    ------
    AnalysisError
        Unknown index or keyword, ``by`` not a presentation coordinate or with fewer than two
        values, non-numeric angles, an angle without its orthogonal/opposite partner for a
        ratio form (``osi``, ``osi_ratio``, ``dsi``, ``dsi_ratio``), negative condition means
        with ``negative="raise"``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> activity = xr.DataArray(
    ...     np.array([[4.0, 1.0], [2.0, 1.0], [0.0, 1.0], [0.0, 1.0]]),
    ...     dims=("presentation", "neuroid"),
    ...     coords={"orientation": ("presentation", [0, 0, 90, 90]),
    ...             "neuroid_id": ("neuroid", ["v1.0", "v1.1"])})
    >>> selectivity(activity, "orientation", "csi")["csi"].values
    array([1., 0.])
    >>> osi = selectivity(activity, "orientation", "osi")
    >>> osi["osi_ratio"].values, osi["preferred"].values
    (array([1., 0.]), array([0., 0.]))
    >>> sorted(selectivity(activity, "orientation", "osi_vector").data_vars)    # the vector form alone
    ['n', 'osi_vector', 'preferred_vector']
    >>> selectivity(activity, "orientation", "lifetime_sparseness")["lifetime_sparseness"].values
    array([1., 0.])
    >>> selectivity(activity, "orientation", "population_sparseness")["population_sparseness"].values
    array([0.4, 1. ])
    """
    spec = INDICES[check_choice("index", index, tuple(INDICES), error=AnalysisError)]
    allowed = ("negative",) if spec.nonnegative else ()
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise AnalysisError(f"selectivity: unknown keyword(s) {', '.join(unknown)} for index {index!r}; "
                            f"it takes {', '.join(allowed) if allowed else 'no keywords'}")
    negative = _check_negative(kwargs.get("negative", "raise")) if spec.nonnegative else None

    attrs: dict[str, Any] = {"analysis": "selectivity", "index": index}
    if by is not None:
        attrs["by"] = by
    if index == "magnitude":
        act = check_activity(activity, by)
        values = map_unit_blocks(lambda b: magnitude_index(b)[None, :], act, 1)[0]
        attrs["definition"] = "mean |response| over all presentations"
        return _described(unit_dataset(act, {"magnitude": (("neuroid",), values)}, attrs={**attrs, **_common_attrs(act)}), act, None)

    if not isinstance(by, str):
        raise AnalysisError(f"by: expected the name of a presentation coordinate, found {by!r}")
    act = check_activity(activity, by)
    groups = grouping(act, by, min_groups=2)
    codes, n_cond = groups.codes, groups.n_groups
    if negative is not None:
        attrs["negative"] = negative
    coords = {by: (by, groups.levels)}
    n_var = {"n": ((by,), groups.counts.astype(np.int64))}

    if spec.family is not None:  # validate the angles before any work
        angles = _angles(groups.levels, by, index)
        period = float(spec.period)
        problem = partner_problem(angles, by, index, spec.family, period, period / 2) if spec.ratio else None
        if problem:
            raise AnalysisError(f"by: {problem}")

    if index == "dprime":
        def kernel(block: np.ndarray) -> np.ndarray:
            _, means, ss = group_moments(block, codes, n_cond)
            return np.concatenate([means, ss])

        stats = map_unit_blocks(kernel, act, 2 * n_cond)
        dprime = _dprime_from_moments(groups.counts, stats[:n_cond], stats[n_cond:])
        attrs["definition"] = "(mu_c - mu_rest) / sqrt((var_c + var_rest) / 2), rest = other conditions pooled, ddof=1"
        return _described(unit_dataset(act, {"dprime": ((by, "neuroid"), dprime), **n_var}, coords=coords,
                                       attrs={**attrs, **_common_attrs(act)}), act, by)

    means = map_unit_blocks(lambda b: group_means(b, codes, n_cond), act, n_cond)
    names = np.asarray(act.coords["neuroid_id"].values) if "neuroid_id" in act.coords else None
    means = _nonnegative(means, str(negative), index, names)

    variables: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    if index == "csi":
        csi, preferred = _csi_from_means(means)
        variables = {"csi": (("neuroid",), csi), "preferred": (("neuroid",), groups.levels[preferred])}
        attrs["definition"] = "(mu_max - mu_rest) / (mu_max + mu_rest) over condition means (Morcos et al. 2018)"
    elif spec.family is not None:
        family, forms = spec.family, []
        if spec.vector:
            vector, preferred_vector = vector_from_means(means, angles, period)
            variables[f"{family}_vector"] = (("neuroid",), vector)
            variables["preferred_vector"] = (("neuroid",), preferred_vector)
            forms.append(f"vector: |sum r_k exp(2 pi i theta_k / {period:g})| / sum r_k")
        if spec.ratio:
            ratio, preferred = _ratio_from_means(means, angles, period)
            variables[f"{family}_ratio"] = (("neuroid",), ratio)
            variables["preferred"] = (("neuroid",), preferred)
            forms.append(f"ratio: (r_pref - r_x) / (r_pref + r_x), x = pref + {period / 2:g} deg, condition means "
                         f"averaged over angles equal modulo {period:g}")
        variables = {name: variables[name] for name in spec.variables}
        attrs["period"] = period
        attrs["definition"] = "; ".join(forms)
    elif index == "lifetime_sparseness":
        variables = {"lifetime_sparseness": (("neuroid",), _sparseness(means, axis=0))}
        attrs["definition"] = "(1 - (sum r/K)^2 / (sum r^2/K)) / (1 - 1/K) over the K condition means (Vinje & Gallant 2000)"
    else:  # population_sparseness
        variables = {"population_sparseness": ((by,), _sparseness(means, axis=1))}
        attrs["definition"] = ("(1 - (sum r/N)^2 / (sum r^2/N)) / (1 - 1/N) across the N units' condition means, "
                               "one value per condition")
    return _described(unit_dataset(act, {**variables, **n_var}, coords=coords, attrs={**attrs, **_common_attrs(act)}),
                      act, by)


#: long_name and units of every variable :func:`selectivity` returns ("by": the units of ``by``).
_VARIABLE_ATTRS: dict[str, tuple[str, str | None]] = {
    "csi": ("class selectivity index", "1"),
    "dprime": ("one-vs-rest d'", "1"),
    "osi_vector": ("orientation selectivity index (vector)", "1"),
    "osi_ratio": ("orientation selectivity index (ratio)", "1"),
    "dsi_vector": ("direction selectivity index (vector)", "1"),
    "dsi_ratio": ("direction selectivity index (ratio)", "1"),
    "preferred_vector": ("preferred angle (vector sum)", "deg"),
    "lifetime_sparseness": ("lifetime sparseness", "1"),
    "population_sparseness": ("population sparseness", "1"),
    "magnitude": ("mean |response|", "activity"),
    "n": ("presentations per condition", None),
}


def _described(ds: xr.Dataset, act: xr.DataArray, by: str | None) -> xr.Dataset:
    """``ds`` with the ``long_name``/``units`` attrs of its variables and of its ``by`` coordinate."""
    table = dict(_VARIABLE_ATTRS)
    if "preferred" in ds:
        angle = ds.attrs.get("period") is not None
        table["preferred"] = (f"preferred {by}", "deg" if angle else "by")
    return describe_variables(ds, act, table, by=() if by is None else (by,))
