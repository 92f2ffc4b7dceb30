"""Statistics of lesion experiments, computed from per-stimulus correctness.

(Over 700 lines, one job: the statistics of a lesion sweep's correctness arrays; about half is
numpydoc with examples. Every function reads the same (lesion, stimulus) arrays and shares the
class bookkeeping; the exact McNemar, bootstrap and control-null parts each check against scipy.)

A lesion sweep evaluates a network once intact and once per lesion on the same evaluation set
and keeps, for every stimulus, whether the prediction was correct. Everything here is computed
from those boolean arrays (and, for the loss, the logits), so any metric can be recomputed
later from a stored sweep. The module is plain numpy/scipy/statsmodels/xarray: it never imports
torch, and runs on the correctness of a biological decoder as well.

==============================  ===========================================================
function                        what it computes
==============================  ===========================================================
:func:`lesion_effects`          lesion x class matrix of accuracy changes (percentage
                                points), exact McNemar p, FDR q over the sweep, bootstrap CI
:func:`sensitive_units`         "lesion-sensitive for class c": q < q_below and a decrease
:func:`draw_controls`           seeded random unit groups of the same size from the region
:func:`control_null`            percentile and empirical p of a lesion against its controls
:func:`cross_entropy_loss`      mean cross-entropy (nats) per lesion, from logits
==============================  ===========================================================

Everything is vectorised over lesions: the discordant-pair counts of all lesions and classes
come from one matrix product per block of lesions, the binomial p values from one call of
``scipy.stats.binom.cdf``, the bootstrap from one matrix product per class and block of
resamples (the same resamples for every lesion). Results agree with
``statsmodels.stats.contingency_tables.mcnemar(exact=True)`` and
``statsmodels.stats.multitest.multipletests`` to about 1e-12.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._validation import check_choice, check_scalar, check_seed, shape_text
from ..errors import AnalysisError

__all__ = [
    "CORRECTIONS",
    "DIRECTIONS",
    "OVERALL",
    "bootstrap_indices",
    "control_null",
    "cross_entropy_loss",
    "draw_controls",
    "lesion_effects",
    "sensitive_units",
]

#: Multiple-comparison corrections :func:`lesion_effects` accepts (statsmodels ``multipletests`` names).
CORRECTIONS = ("fdr_bh", "bonferroni")

#: Directions of effect :func:`sensitive_units` accepts.
DIRECTIONS = ("decrease", "increase", "any")

#: Name of the column of :func:`lesion_effects` that pools all classes.
OVERALL = "overall"

#: Target size in bytes of the float64 blocks (lesions x stimuli, resamples x stimuli) built at once.
_BLOCK_BYTES = 32 * 2**20


# --------------------------------------------------------------------------------------------
# argument checks: neurorecord._validation (argument, expected, found), raising AnalysisError


def _check_bool_array(name: str, value: Any, shape: tuple[int | None, ...], dims: str) -> np.ndarray:
    """``value`` as a bool array of ``shape`` (None: any length); 0/1 numbers are accepted."""
    array = np.asarray(value)
    expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        raise AnalysisError(f"{name}: expected an array of shape {dims} = {expected}, found shape {shape_text(array.shape)}")
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "biuf":
        raise AnalysisError(f"{name}: expected booleans (or 0/1 numbers), found dtype {array.dtype}")
    bad = (array != 0) & (array != 1)
    if bad.any():
        raise AnalysisError(f"{name}: expected booleans (or 0/1 numbers), found the value {array[bad].flat[0].item()!r}")
    return array.astype(bool)


# --------------------------------------------------------------------------------------------
# lesion x class effects


def _class_levels(labels: np.ndarray, classes: Sequence | None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (or given) class levels and the code of every stimulus in them."""
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise AnalysisError("labels: expected a class label for every stimulus, found NaN")
    if classes is None:
        levels, codes = np.unique(labels, return_inverse=True)
        return levels, codes.reshape(-1)
    levels = np.asarray(classes)
    if levels.ndim != 1 or len(levels) == 0:
        raise AnalysisError(f"classes: expected a non-empty sequence of class labels, found {classes!r}")
    if len(np.unique(levels.astype(str))) != len(levels):
        raise AnalysisError(f"classes: expected distinct class labels, found {levels.tolist()!r}")
    missing = np.setdiff1d(np.unique(labels), levels)
    if len(missing):
        raise AnalysisError(
            f"classes: expected every value of labels among the classes, found labels not in classes: {missing.tolist()!r}"
        )
    order = np.argsort(levels, kind="stable")
    codes = order[np.searchsorted(levels[order], labels)]
    return levels, codes


def _discordant_counts(correct: np.ndarray, correct_intact: np.ndarray, one_hot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """b (intact right, lesioned wrong) and c (intact wrong, lesioned right), (lesion, class) int64."""
    n_lesions, n_stimuli = correct.shape
    b = np.empty((n_lesions, one_hot.shape[1]), dtype=np.int64)
    c = np.empty_like(b)
    rows = max(1, _BLOCK_BYTES // (8 * max(n_stimuli, 1)))
    for start in range(0, n_lesions, rows):
        block = correct[start : start + rows]
        # integer counts through a float64 product: exact below 2**53 stimuli
        b[start : start + rows] = np.rint((~block & correct_intact).astype(np.float64) @ one_hot)
        c[start : start + rows] = np.rint((block & ~correct_intact).astype(np.float64) @ one_hot)
    return b, c


def _mcnemar_exact(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Two-sided exact McNemar p: ``min(1, 2 * P(Binom(b + c, 1/2) <= min(b, c)))``; 1 without discordant pairs."""
    from scipy.stats import binom

    n = b + c
    p = np.minimum(1.0, 2.0 * binom.cdf(np.minimum(b, c), n, 0.5))
    p[n == 0] = 1.0
    return p


def bootstrap_indices(labels: Any, n_boot: int, seed: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Stimulus indices of the within-class bootstrap resamples that :func:`lesion_effects` uses.

    Resample ``r`` replaces every stimulus ``i`` by a stimulus drawn uniformly, with
    replacement, from the stimuli of the same class as ``i``; so each resample keeps the
    number of stimuli of every class. The draws come from ``numpy.random.default_rng(seed)``,
    one uniform number per (resample, stimulus) in row-major order, so resamples
    ``start:stop`` are the same whether drawn alone or with the others.

    Parameters
    ----------
    labels : array-like of shape (n_stimuli,)
        Class label of every stimulus (any values; the classes are the distinct values).
    n_boot : int
        Number of resamples of the whole set.
    seed : int
        Seed of ``numpy.random.default_rng``.
    start, stop : int, default 0 and n_boot
        Return only resamples ``start`` to ``stop - 1``.

    Returns
    -------
    numpy.ndarray of int64, shape (stop - start, n_stimuli)
        ``out[r, i]`` is the index of the stimulus at position ``i`` of resample ``start + r``;
        ``labels[out[r]]`` equals ``labels``.

    Raises
    ------
    AnalysisError
        ``labels`` is not one-dimensional, or ``n_boot``, ``seed``, ``start`` or ``stop`` is
        not a valid count.

    Examples
    --------
    >>> idx = bootstrap_indices([0, 0, 0, 1, 1], n_boot=2, seed=0)
    >>> idx.shape
    (2, 5)
    >>> bool((np.asarray([0, 0, 0, 1, 1])[idx] == [0, 0, 0, 1, 1]).all())
    True
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise AnalysisError(f"labels: expected an array of shape (n_stimuli,), found shape {shape_text(labels.shape)}")
    n_boot = check_scalar("n_boot", n_boot, int, low=0, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    stop = n_boot if stop is None else check_scalar("stop", stop, int, low=0, error=AnalysisError)
    start = check_scalar("start", start, int, low=0, error=AnalysisError)
    if not start <= stop <= n_boot:
        raise AnalysisError(f"start, stop: expected 0 <= start <= stop <= n_boot = {n_boot}, found {start}, {stop}")
    _, codes = np.unique(labels, return_inverse=True)
    return _resample(codes.reshape(-1), seed, start, stop)


def _resample(codes: np.ndarray, seed: int, start: int, stop: int) -> np.ndarray:
    n = len(codes)
    order = np.argsort(codes, kind="stable")  # stimuli grouped by class
    counts = np.bincount(codes)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    if start:
        rng.random(start * n)  # advance the stream: one double per (resample, stimulus)
    u = rng.random((stop - start, n))
    pos = np.minimum((u * counts[codes]).astype(np.int64), counts[codes] - 1)
    return order[first[codes] + pos]


def _bootstrap_deltas(d: np.ndarray, codes: np.ndarray, counts: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Accuracy change (percentage points) of every lesion in every resample, (lesion, class + overall, resample).

    ``d`` is (lesion, stimulus) lesioned minus intact correctness in {-1, 0, 1}. Only stimuli
    where some lesion differs from intact contribute, so the products run over those columns.
    """
    n_lesions, n_stimuli = d.shape
    n_classes = len(counts)
    sums = np.zeros((n_lesions, n_classes, n_boot))
    active = np.flatnonzero((d != 0).any(axis=0))
    by_class = [active[codes[active] == k] for k in range(n_classes)]
    rows = max(1, _BLOCK_BYTES // (8 * max(n_stimuli, 1)))
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = _resample(codes, seed, start, stop)
        # multiplicity of every stimulus in every resample of the block
        flat = idx + (np.arange(stop - start) * n_stimuli)[:, None]
        weights = np.bincount(flat.ravel(), minlength=(stop - start) * n_stimuli)
        weights = weights.reshape(stop - start, n_stimuli).astype(np.float64)
        for k, cols in enumerate(by_class):
            if len(cols):
                sums[:, k, start:stop] = d[:, cols] @ weights[:, cols].T
    out = np.empty((n_lesions, n_classes + 1, n_boot))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, :n_classes] = 100.0 * sums / counts[None, :, None]
    out[:, n_classes] = 100.0 * sums.sum(axis=1) / n_stimuli
    return out


def lesion_effects(
    correct: Any,
    correct_intact: Any,
    labels: Any,
    lesion_names: Sequence[str],
    classes: Sequence | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    correction: str = "fdr_bh",
) -> xr.Dataset:
    """Accuracy change of every lesion in every class, with exact McNemar tests and bootstrap CIs.

    Compares, stimulus by stimulus, the correctness of each lesioned network with that of the
    intact network on the same evaluation set. For lesion ``l`` and class ``k`` (the stimuli of
    that class; ``"overall"``: all stimuli), the discordant pairs are ``b`` (intact correct,
    lesioned wrong) and ``c`` (intact wrong, lesioned correct); the accuracy change is
    ``100 * (c - b) / n`` percentage points, and the exact two-sided McNemar test gives
    ``p = min(1, 2 * binom.cdf(min(b, c), b + c, 1/2))`` (1 when ``b + c = 0``). All
    (lesion, class) p values of the sweep, ``"overall"`` included, form one family for the
    multiple-comparison correction.

    Parameters
    ----------
    correct : array-like of bool, shape (n_lesions, n_stimuli)
        Whether the lesioned network classified each stimulus correctly (0/1 numbers are
        accepted).
    correct_intact : array-like of bool, shape (n_stimuli,)
        Whether the intact network classified each stimulus correctly.
    labels : array-like, shape (n_stimuli,)
        True class of each stimulus (any integers, not necessarily 0..K-1; strings work too).
    lesion_names : sequence of str, length n_lesions
        Distinct name of each lesion (``"fc2.17"``, ``"fc2:selective-3"``); the ``lesion``
        coordinate.
    classes : sequence, optional
        Class levels to report, in this order; must contain every value of ``labels``. A
        class without stimuli gets NaN accuracy, p, q and CI, and is not tested. Default: the
        sorted distinct labels.
    n_boot : int, default 1000
        Number of bootstrap resamples for the CI of the accuracy change; 0 skips the
        bootstrap (``ci_low`` and ``ci_high`` are NaN). The cost is about
        ``n_lesions x n_boot x`` (stimuli where some lesion differs from intact)
        multiply-adds, and the resampled changes are held as a float64 array of
        ``n_lesions x (n_classes + 1) x n_boot`` (88 MB for 1000 lesions, 10 classes and
        1000 resamples; about 1.5 s with 10 000 stimuli on two cores).
    ci : float, default 0.95
        Coverage of the percentile bootstrap interval.
    seed : int, default 0
        Seed of the bootstrap resamples (:func:`bootstrap_indices`).
    correction : {"fdr_bh", "bonferroni"}, default "fdr_bh"
        Correction of ``p`` over all (lesion, class) tests of the sweep.

    Returns
    -------
    xarray.Dataset
        Coordinates ``lesion`` (the names), ``class`` (str: the class levels, then
        ``"overall"``) and ``presentation`` (with coordinate ``label``), and:

        - ``delta_accuracy`` (lesion, class): lesioned minus intact accuracy, percentage points.
        - ``accuracy`` (lesion, class): lesioned accuracy, percent.
        - ``accuracy_intact`` (class): intact accuracy, percent.
        - ``p`` (lesion, class): exact two-sided McNemar p value.
        - ``q`` (lesion, class): ``p`` corrected over all tests of the sweep.
        - ``b``, ``c`` (lesion, class), int64: the discordant-pair counts.
        - ``ci_low``, ``ci_high`` (lesion, class): percentile bootstrap interval of
          ``delta_accuracy`` (percentage points). Stimuli are resampled with replacement
          within each class (the same resamples for every lesion); the ``"overall"`` interval
          comes from the same stratified resamples.
        - ``n`` (class), int64: number of stimuli.
        - ``correct`` (lesion, presentation) and ``correct_intact`` (presentation), bool: the
          per-stimulus correctness, so that any other metric can be recomputed.

        attrs: ``test``, ``reference``, ``correction``, ``family`` (the tests corrected
        together), ``n_boot``, ``ci``, ``seed``, ``bootstrap``, ``classes`` (the class
        levels as given), ``n_lesions``, ``n_stimuli``.

    Raises
    ------
    AnalysisError
        An array has the wrong shape or non-boolean values, ``lesion_names`` has the wrong
        length or repeats a name, ``labels`` has NaN or values outside ``classes``, or
        ``n_boot``, ``ci``, ``seed`` or ``correction`` is not valid. The message names the
        argument, what was expected and what was found.

    See Also
    --------
    sensitive_units : which (lesion, class) pairs are significant decreases.
    control_null : compare one lesion's effect with matched random lesions.

    Examples
    --------
    >>> intact = np.ones(8, bool)                      # the intact network gets all 8 right
    >>> labels = np.array([3, 3, 3, 3, 7, 7, 7, 7])
    >>> correct = np.array([[0, 0, 0, 0, 1, 1, 1, 1],  # lesion "a" loses class 3
    ...                     [1, 1, 1, 1, 1, 1, 1, 1]], bool)
    >>> fx = lesion_effects(correct, intact, labels, ["a", "b"], n_boot=200)
    >>> fx["delta_accuracy"].values
    array([[-100.,    0.,  -50.],
           [   0.,    0.,    0.]])
    >>> fx["class"].values.tolist()
    ['3', '7', 'overall']
    >>> fx["p"].sel(lesion="a").values                 # 2 * 0.5**4: four discordant pairs
    array([0.125, 1.   , 0.125])
    >>> fx["b"].sel(lesion="a", **{"class": "overall"}).item(), fx["ci_low"].sel(lesion="a").values
    (4, array([-100.,    0.,  -50.]))
    """
    correct_intact = _check_bool_array("correct_intact", correct_intact, (None,), "(n_stimuli,)")
    n_stimuli = len(correct_intact)
    if n_stimuli == 0:
        raise AnalysisError("correct_intact: expected at least one stimulus, found 0")
    correct = _check_bool_array("correct", correct, (None, n_stimuli), "(n_lesions, n_stimuli)")
    n_lesions = correct.shape[0]
    labels = np.asarray(labels)
    if labels.shape != (n_stimuli,):
        raise AnalysisError(
            f"labels: expected an array of shape (n_stimuli,) = ({n_stimuli},) like correct_intact, "
            f"found shape {shape_text(labels.shape)}"
        )
    if isinstance(lesion_names, str):
        raise AnalysisError(f"lesion_names: expected a sequence of {correct.shape[0]} str, found the str {lesion_names!r}")
    names = [str(name) for name in lesion_names]
    if len(names) != correct.shape[0]:
        raise AnalysisError(
            f"lesion_names: expected {correct.shape[0]} names (one per row of correct), found {len(names)}"
        )
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise AnalysisError(f"lesion_names: expected distinct names, found repeated names {repeated!r}")
    n_boot = check_scalar("n_boot", n_boot, int, low=0, error=AnalysisError)
    ci = check_scalar("ci", ci, float, low=0, high=1, closed="neither", error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    correction = check_choice("correction", correction, CORRECTIONS, error=AnalysisError)
    levels, codes = _class_levels(labels, classes)
    class_names = [str(level) for level in levels]
    if OVERALL in class_names:
        raise AnalysisError(f"labels: expected class labels other than {OVERALL!r} (the name of the pooled column), found {OVERALL!r}")
    n_classes = len(levels)

    # counts per class, then the pooled column
    one_hot = np.zeros((n_stimuli, n_classes + 1))
    one_hot[np.arange(n_stimuli), codes] = 1.0
    one_hot[:, n_classes] = 1.0
    counts = np.rint(one_hot.sum(axis=0)).astype(np.int64)
    right_intact = np.rint(correct_intact.astype(np.float64) @ one_hot).astype(np.int64)
    b, c = _discordant_counts(correct, correct_intact, one_hot)
    right = right_intact[None, :] - b + c
    empty = counts == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy_intact = np.where(empty, np.nan, 100.0 * right_intact / counts)
        accuracy = np.where(empty, np.nan, 100.0 * right / counts)
        delta = np.where(empty, np.nan, 100.0 * (c - b) / counts)
    p = _mcnemar_exact(b, c)
    p[:, empty] = np.nan

    from ._multitest import adjusted_p

    q = np.full_like(p, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        q[tested] = adjusted_p(p[tested], correction)
    n_tested = int(tested.sum())
    n_columns = int((~empty).sum())
    family = (
        f"{correction} over all {n_tested} (lesion, class) tests of the sweep: {n_lesions} lesions x "
        f"{n_columns} columns ({n_columns - 1} classes with stimuli and {OVERALL!r})"
    )

    ci_low = np.full_like(p, np.nan)
    ci_high = np.full_like(p, np.nan)
    if n_boot and n_lesions:
        d = correct.astype(np.int8) - correct_intact.astype(np.int8)[None, :]
        deltas = _bootstrap_deltas(d.astype(np.float64), codes, counts[:n_classes], n_boot, seed)
        tails = [100.0 * (1.0 - ci) / 2.0, 100.0 * (1.0 + ci) / 2.0]
        with np.errstate(invalid="ignore"):
            ci_low, ci_high = np.percentile(deltas, tails, axis=-1)
        ci_low[:, empty] = np.nan
        ci_high[:, empty] = np.nan

    lc = ("lesion", "class")
    ds = xr.Dataset(
        {
            "delta_accuracy": (lc, delta, {"units": "percentage points", "long_name": "lesioned minus intact accuracy"}),
            "accuracy": (lc, accuracy, {"units": "%", "long_name": "accuracy of the lesioned network"}),
            "accuracy_intact": (("class",), accuracy_intact, {"units": "%", "long_name": "accuracy of the intact network"}),
            "p": (lc, p, {"long_name": "exact two-sided McNemar p value"}),
            "q": (lc, q, {"long_name": f"p corrected ({correction}) over all tests of the sweep"}),
            "b": (lc, b, {"long_name": "stimuli right when intact and wrong when lesioned"}),
            "c": (lc, c, {"long_name": "stimuli wrong when intact and right when lesioned"}),
            "ci_low": (lc, ci_low, {"units": "percentage points", "long_name": f"lower bound of the {ci:g} bootstrap CI of delta_accuracy"}),
            "ci_high": (lc, ci_high, {"units": "percentage points", "long_name": f"upper bound of the {ci:g} bootstrap CI of delta_accuracy"}),
            "n": (("class",), counts, {"long_name": "number of stimuli"}),
            "correct": (("lesion", "presentation"), correct),
            "correct_intact": (("presentation",), correct_intact),
        },
        coords={
            "lesion": np.asarray(names, dtype=str),
            "class": np.asarray([*class_names, OVERALL], dtype=str),
            "label": ("presentation", labels),
        },
        attrs={
            "test": "exact McNemar (two-sided binomial test of the discordant pairs, intact vs lesioned)",
            "reference": "statsmodels.stats.contingency_tables.mcnemar(exact=True)",
            "correction": correction,
            "family": family,
            "n_boot": n_boot,
            "ci": ci,
            "seed": seed,
            "bootstrap": "percentile interval; stimuli resampled with replacement within each class, "
                         "the same resamples for every lesion (neurorecord.analysis.lesion_stats.bootstrap_indices)",
            "classes": levels.tolist(),
            "n_lesions": int(n_lesions),
            "n_stimuli": int(n_stimuli),
        },
    )
    return ds


def sensitive_units(effects: xr.Dataset, q_below: float = 0.05, direction: str = "decrease") -> xr.DataArray:
    """Whether each lesion is "lesion-sensitive" for each class: a significant accuracy change.

    A lesion is sensitive for class ``c`` only when its McNemar test survives the correction
    (``q < q_below``) and the accuracy changes in ``direction``. A large ``delta_accuracy``
    without a small ``q`` is not enough, nor is a small ``q`` in the other direction.

    Parameters
    ----------
    effects : xarray.Dataset
        Output of :func:`lesion_effects` (needs ``q`` and ``delta_accuracy``, dims lesion and
        class).
    q_below : float, default 0.05
        Threshold on the corrected p value ``q`` (strict: ``q < q_below``), in (0, 1].
    direction : {"decrease", "increase", "any"}, default "decrease"
        ``"decrease"``: the lesion lowers the class's accuracy (``delta_accuracy < 0``);
        ``"increase"``: it raises it; ``"any"``: either.

    Returns
    -------
    xarray.DataArray of bool, dims (lesion, class)
        True where the lesion is sensitive; False where ``q`` is NaN (a class without
        stimuli). attrs: ``q_below``, ``direction``, ``correction`` and ``family`` of
        ``effects``.

    Raises
    ------
    AnalysisError
        ``effects`` is not a Dataset with ``q`` and ``delta_accuracy``, ``q_below`` is not in
        (0, 1], or ``direction`` is not one of :data:`DIRECTIONS`.

    Examples
    --------
    >>> labels = np.repeat([0, 1], 20)
    >>> correct = np.ones((2, 40), bool); correct[0, :15] = False   # lesion "a" breaks class 0
    >>> fx = lesion_effects(correct, np.ones(40, bool), labels, ["a", "b"], n_boot=0)
    >>> sensitive_units(fx).values
    array([[ True, False,  True],
           [False, False, False]])
    """
    if not isinstance(effects, xr.Dataset) or any(v not in effects for v in ("q", "delta_accuracy")):
        found = type(effects).__name__ if not isinstance(effects, xr.Dataset) else f"variables {sorted(map(str, effects.data_vars))}"
        raise AnalysisError(f"effects: expected the Dataset of lesion_effects (with 'q' and 'delta_accuracy'), found {found}")
    q_below = check_scalar("q_below", q_below, float, low=0, high=1, closed="right", error=AnalysisError)
    direction = check_choice("direction", direction, DIRECTIONS, error=AnalysisError)
    significant = effects["q"] < q_below  # NaN compares False
    delta = effects["delta_accuracy"]
    if direction == "decrease":
        out = significant & (delta < 0)
    elif direction == "increase":
        out = significant & (delta > 0)
    else:
        out = significant & (delta != 0)
    out = out.rename("sensitive")
    out.attrs = {
        "q_below": q_below,
        "direction": direction,
        "correction": effects.attrs.get("correction"),
        "family": effects.attrs.get("family"),
    }
    return out


# --------------------------------------------------------------------------------------------
# matched random controls


def draw_controls(n_units_region: int, k: int, n_draws: int, seed: int, exclude: Any = None) -> np.ndarray:
    """Random groups of ``k`` units of a region, the matched controls of a ``k``-unit lesion.

    Each draw is ``k`` distinct units chosen uniformly from the region (without replacement
    within a draw; draws are independent, so two draws may overlap or even coincide). By default
    the pool is every unit of the region, the target population's units included: the null is
    "a random group of k units from the same region", and a random group may share units with
    the target. Pass ``exclude=target_units`` for the stricter null of groups disjoint from the
    target.

    Parameters
    ----------
    n_units_region : int
        Number of units of the region (unit indices 0 .. n_units_region - 1).
    k : int
        Units per group (the size of the target population), at least 1.
    n_draws : int
        Number of groups to draw.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same groups.
    exclude : array-like of int, optional
        Unit indices left out of the pool (for example the target's units).

    Returns
    -------
    numpy.ndarray of int64, shape (n_draws, k)
        Unit indices of each group, sorted within the group.

    Raises
    ------
    AnalysisError
        A count is not a valid integer, ``exclude`` holds indices outside the region, or fewer
        than ``k`` units remain in the pool.

    Examples
    --------
    >>> groups = draw_controls(10, k=3, n_draws=4, seed=0, exclude=[0, 1])
    >>> groups.shape, bool((groups >= 2).all())
    ((4, 3), True)
    >>> bool((np.diff(groups, axis=1) > 0).all())      # distinct units within each draw
    True
    >>> bool((draw_controls(10, 3, 4, seed=0, exclude=[0, 1]) == groups).all())
    True
    """
    n_units_region = check_scalar("n_units_region", n_units_region, int, low=1, error=AnalysisError)
    k = check_scalar("k", k, int, low=1, error=AnalysisError)
    n_draws = check_scalar("n_draws", n_draws, int, low=0, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    pool = np.arange(n_units_region)
    if exclude is not None:
        excluded = np.asarray(exclude)
        if excluded.ndim > 1 or (excluded.size and excluded.dtype.kind not in "iu"):
            raise AnalysisError(f"exclude: expected a 1-D array of unit indices (int), found {excluded.dtype} of shape {shape_text(excluded.shape)}")
        outside = excluded[(excluded < 0) | (excluded >= n_units_region)] if excluded.size else excluded
        if outside.size:
            raise AnalysisError(f"exclude: expected unit indices in 0..{n_units_region - 1}, found {outside.tolist()!r}")
        pool = np.setdiff1d(pool, excluded)
    if k > len(pool):
        raise AnalysisError(f"k: expected at most the {len(pool)} units of the pool (region minus exclude), found {k}")
    rng = np.random.default_rng(seed)
    out = np.empty((n_draws, k), dtype=np.int64)
    rows = max(1, _BLOCK_BYTES // (8 * len(pool)))
    for start in range(0, n_draws, rows):
        keys = rng.random((min(rows, n_draws - start), len(pool)))  # a random order of the pool per draw
        chosen = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < len(pool) else np.argsort(keys, axis=1)
        out[start : start + len(keys)] = np.sort(pool[chosen], axis=1)
    return out


def control_null(delta_target: Any, delta_controls: Any, classes: Sequence | None = None) -> xr.Dataset:
    """Where a lesion's effect falls among the effects of matched random lesions.

    For each class, compares the target's accuracy change with the changes of ``n_draws``
    random lesions of the same size from the same region (:func:`draw_controls`). The test is
    one-sided, for decreases: H0 "the target hurts no more than a random matched lesion",
    with the empirical p value ``(1 + #(control <= target)) / (1 + n_draws)`` (ties count
    against the target; the +1 keeps p > 0 and makes it valid for a finite number of draws).
    For an increase, pass the negated changes.

    Parameters
    ----------
    delta_target : array-like of float, shape (n_classes,)
        The target lesion's accuracy change per class (percentage points), e.g.
        ``effects["delta_accuracy"].sel(lesion=name)``. A scalar is one class.
    delta_controls : array-like of float, shape (n_draws, n_classes)
        The accuracy change of each control lesion in the same classes, e.g.
        ``effects["delta_accuracy"].sel(lesion=control_names)``.
    classes : sequence, optional
        Labels of the classes. Default: the ``class`` coordinate of ``delta_target`` when it is
        a DataArray with one, else ``"0", "1", ...``.

    Returns
    -------
    xarray.Dataset, dim class
        - ``percentile`` (class): percent of controls below the target, ties counted half
          (``scipy.stats.percentileofscore(kind="mean")``); low values mean the target hurts
          more than most random lesions.
        - ``p_empirical`` (class): the one-sided empirical p value above.
        - ``delta_target`` (class): the target's change, for reference.

        NaN where the target or any control is NaN in that class. attrs: ``n_draws``,
        ``alternative`` (``"less"``), ``p_definition``, ``percentile_definition``.

    Raises
    ------
    AnalysisError
        The shapes do not match, or there are no controls.

    Examples
    --------
    >>> controls = np.array([[-1.0, 0.0], [0.0, -2.0], [-3.0, 0.0], [0.0, 1.0]])
    >>> null = control_null([-5.0, 0.0], controls, classes=["0", "overall"])
    >>> null["p_empirical"].values                     # (1 + 0) / 5 and (1 + 3) / 5
    array([0.2, 0.8])
    >>> null["percentile"].values                      # 0 / 4 and (1 + 2 / 2) / 4
    array([ 0., 50.])
    """
    if classes is None and isinstance(delta_target, xr.DataArray) and delta_target.ndim == 1 and "class" in delta_target.coords:
        classes = [str(v) for v in delta_target["class"].values]
    target = np.asarray(delta_target, dtype=np.float64)
    controls = np.asarray(delta_controls, dtype=np.float64)
    if target.ndim == 0:
        target = target.reshape(1)
        if controls.ndim == 1:
            controls = controls[:, None]
    if target.ndim != 1:
        raise AnalysisError(f"delta_target: expected an array of shape (n_classes,), found shape {shape_text(target.shape)}")
    n_classes = len(target)
    if controls.ndim != 2 or controls.shape[1] != n_classes:
        raise AnalysisError(
            f"delta_controls: expected an array of shape (n_draws, n_classes) = (any, {n_classes}) like delta_target, "
            f"found shape {shape_text(controls.shape)}"
        )
    n_draws = controls.shape[0]
    if n_draws == 0:
        raise AnalysisError("delta_controls: expected at least one control draw, found 0")
    if classes is None:
        classes = [str(i) for i in range(n_classes)]
    classes = [str(v) for v in classes]
    if isinstance(delta_controls, xr.DataArray) and "class" in delta_controls.coords:
        other = [str(v) for v in np.atleast_1d(delta_controls["class"].values)]
        if other != classes:
            raise AnalysisError(f"delta_controls: expected the classes of delta_target {classes!r} in that order, found {other!r}")
    if len(classes) != n_classes:
        raise AnalysisError(f"classes: expected {n_classes} labels (one per class of delta_target), found {len(classes)}")
    below = (controls < target).sum(axis=0)
    equal = (controls == target).sum(axis=0)
    percentile = 100.0 * (below + 0.5 * equal) / n_draws
    p_empirical = (1.0 + below + equal) / (1.0 + n_draws)
    missing = np.isnan(target) | np.isnan(controls).any(axis=0)
    percentile[missing] = np.nan
    p_empirical[missing] = np.nan
    return xr.Dataset(
        {
            "percentile": ("class", percentile, {"units": "%"}),
            "p_empirical": ("class", p_empirical),
            "delta_target": ("class", target),
        },
        coords={"class": np.asarray(classes, dtype=str)},
        attrs={
            "n_draws": int(n_draws),
            "alternative": "less",
            "p_definition": "(1 + #(control <= target)) / (1 + n_draws): random matched lesions that hurt at least as much",
            "percentile_definition": "100 * (#(control < target) + #(control == target) / 2) / n_draws",
        },
    )


# --------------------------------------------------------------------------------------------
# loss


def cross_entropy_loss(logits: Any, labels: Any, lesion_names: Sequence[str] | None = None) -> xr.DataArray:
    """Mean cross-entropy of the true class under the softmax of the logits, per lesion, in nats.

    Computes ``mean_i(logsumexp(logits[i]) - logits[i, labels[i]])`` (natural log, so nats),
    which is stable for logits of any size: the same as ``sklearn.metrics.log_loss`` on the
    softmax probabilities, without forming them.

    Parameters
    ----------
    logits : array-like of float, shape (n_lesions, n_stimuli, n_classes) or (n_stimuli, n_classes)
        Unnormalised scores (the network's output before the softmax). ``-inf`` marks an
        impossible class; NaN propagates to that lesion's loss.
    labels : array-like of int, shape (n_stimuli,)
        Index of the true class of each stimulus, in 0 .. n_classes - 1 (the column of
        ``logits``; map other label values to columns first).
    lesion_names : sequence of str, optional
        Names for the ``lesion`` coordinate (3-D logits only).

    Returns
    -------
    xarray.DataArray of float64, named ``loss``
        Dims (lesion,) for 3-D logits, no dims for 2-D logits. attrs: ``units`` ("nats").

    Raises
    ------
    AnalysisError
        ``logits`` is not 2-D or 3-D, ``labels`` does not match its stimuli, a label is not an
        integer column index, or ``lesion_names`` has the wrong length.

    Examples
    --------
    >>> logits = np.array([[[2.0, 0.0], [0.0, 2.0]],      # lesion 0: both right
    ...                    [[0.0, 0.0], [0.0, 0.0]]])     # lesion 1: chance
    >>> cross_entropy_loss(logits, [0, 1], ["a", "b"]).values.round(4)
    array([0.1269, 0.6931])
    >>> float(cross_entropy_loss(np.array([[1000.0, 0.0]]), [0]))   # no overflow
    0.0
    """
    from scipy.special import logsumexp

    z = np.asarray(logits, dtype=np.float64)
    if z.ndim not in (2, 3):
        raise AnalysisError(
            f"logits: expected an array of shape (n_lesions, n_stimuli, n_classes) or (n_stimuli, n_classes), "
            f"found shape {shape_text(z.shape)}"
        )
    n_stimuli, n_classes = z.shape[-2:]
    y = np.asarray(labels)
    if y.shape != (n_stimuli,):
        raise AnalysisError(
            f"labels: expected an array of shape (n_stimuli,) = ({n_stimuli},) like logits, found shape {shape_text(y.shape)}"
        )
    if y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= n_classes):
        found = f"dtype {y.dtype}" if y.dtype.kind not in "iu" else f"values from {y.min()} to {y.max()}"
        raise AnalysisError(f"labels: expected integer class indices in 0..{n_classes - 1} (columns of logits), found {found}")
    stacked = z if z.ndim == 3 else z[None]
    with np.errstate(invalid="ignore"):
        true = np.take_along_axis(stacked, y.astype(np.int64)[None, :, None], axis=2)[..., 0]
        loss = (logsumexp(stacked, axis=2) - true).mean(axis=1) if n_stimuli else np.full(len(stacked), np.nan)
    attrs = {"units": "nats", "long_name": "mean cross-entropy loss"}
    if z.ndim == 2:
        if lesion_names is not None:
            raise AnalysisError("lesion_names: expected None for 2-D logits (one network), found names")
        return xr.DataArray(loss[0], name="loss", attrs=attrs)
    coords = {}
    if lesion_names is not None:
        names = [str(n) for n in lesion_names] if not isinstance(lesion_names, str) else [lesion_names]
        if len(names) != len(stacked):
            raise AnalysisError(f"lesion_names: expected {len(stacked)} names (one per lesion of logits), found {len(names)}")
        coords["lesion"] = np.asarray(names, dtype=str)
    return xr.DataArray(loss, dims=("lesion",), coords=coords, name="loss", attrs=attrs)
