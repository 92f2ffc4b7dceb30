"""Checks of a protocol's ``analyses:`` against the presentation coordinates, before recording.

Whatever an analysis needs of its ``by`` coordinate can be known from the stimuli alone: that the
coordinate exists and has a value on every presentation, that it has enough distinct values,
that it holds angles where the analysis needs angles, that every angle has its orthogonal or
opposite partner where a ratio form of OSI/DSI pairs them, that a one-vs-rest ``condition`` is
one of its levels. :func:`check_analysis_plan` checks all of it, so that a protocol that passes
never fails after recording for one of these reasons. The messages are those of the analyses
themselves (:mod:`neurorecord.analysis._levels`), prefixed with the protocol field.

Torch-free: it needs the analyses' entries and the coordinates as numpy arrays, nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import AnalysisError, did_you_mean
from ..protocol.schema import EACH
from ._levels import angle_problem, match_level, partner_problem
from ._indices import INDICES

__all__ = ["check_analysis_plan"]


def check_analysis_plan(analyses: Sequence[Any], coords: Mapping[str, np.ndarray],
                        folder: str | os.PathLike[str] | None = None) -> None:
    """Check every ``analyses:`` entry of a protocol against the presentation coordinates.

    Parameters
    ----------
    analyses : sequence of analysis entries
        ``protocol.analyses``: the validated entries of the protocol's ``analyses:`` list
        (:data:`neurorecord.protocol.schema.AnalysisSpec` models), in protocol order.
    coords : mapping of str to numpy.ndarray of shape (n_presentations,)
        The coordinates on ``presentation`` the recording will have, name -> values (what
        ``PresentationPlan.coords()`` gives before anything is recorded): ``stimulus_id``,
        ``repetition``, ``stimulus_set`` and every stimulus parameter (NaN, or ``""`` for text,
        on the presentations of a set without that parameter).
    folder : path-like, optional
        The protocol's folder, which the reference paths of ``kind: compare`` entries resolve
        against (default: the working directory). Each such reference is opened and checked
        (:func:`~neurorecord.analysis.comparison.check_comparison`).

    Raises
    ------
    AnalysisError
        (a :class:`~neurorecord.errors.NeurorecordError`) for the first entry that would fail
        for a reason the coordinates show, with ``loc`` the protocol key path of the field at
        fault (``("analyses", i, "by")``, ``("analyses", i, "by", j)`` for the j-th of a
        tuning map's two coordinates, ``("analyses", i, "index")`` or
        ``("analyses", i, "condition")``) and a message ``analyses[i].<field>: expected ...,
        found ...``:

        - ``by``: not a presentation coordinate (with the names there are); NaN on some
          presentations (a parameter of some stimulus sets only); fewer than two distinct values
          (one for a tuning curve); not angles (numbers) where the analysis needs angles
          (``rayleigh``, ``von_mises``, the ``osi*``/``dsi*`` indices, a ``rayleigh`` rule); fewer
          distinct angles than a von Mises fit has parameters;
        - ``index``: a ratio form of OSI/DSI (``osi``, ``osi_ratio``, ``dsi``, ``dsi_ratio``) with
          an angle whose orthogonal (OSI) or opposite (DSI) partner is not among the levels;
        - ``condition``: a one-vs-rest rule's ``condition`` that is not a level of ``by``;
        - ``reference``, ``by``, ``split``, ``ceiling``, ``n_folds`` of a ``kind: compare``
          entry: a reference that does not open or lacks the region, a ``by`` it does not have
          or fewer than 3 conditions shared with it, what the measures need of them.

    Examples
    --------
    >>> import numpy as np
    >>> from neurorecord.protocol.schema import PopulationAnalysis, SelectivityAnalysis
    >>> seven = {"orientation": np.repeat(np.arange(7) * 22.5, 4)}        # 0 to 135 deg
    >>> rule = PopulationAnalysis(name="tuned", kind="population", by="orientation", test="rayleigh", period=180,
    ...                           index="osi_vector", index_above=0.1)
    >>> check_analysis_plan([rule], seven)                               # the vector form needs no partners
    >>> ratio = SelectivityAnalysis(name="osi", kind="selectivity", by="orientation", index="osi")
    >>> try:
    ...     check_analysis_plan([rule, ratio], seven)
    ... except ValueError as error:
    ...     print(error.loc, str(error)[:124])
    ('analyses', 1, 'index') analyses[1].index: expected each angle of 'orientation' to have its orthogonal partner (90 deg away) for the osi ratio form
    """
    for i, entry in enumerate(analyses):
        _check_entry(i, entry, coords, folder)


def _fail(i: int, field: str, message: str, *extra: int, key: str = "analyses") -> None:
    path = f"{key}[{i}].{field}" + "".join(f"[{j}]" for j in extra)
    raise AnalysisError(f"{path}: {message}", loc=(key, i, field, *extra))


def _text(levels: np.ndarray) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in levels[:12]) + (
        ", ..." if len(levels) > 12 else "")


def _levels(i: int, by: str, coords: Mapping[str, np.ndarray], *extra: int, key: str = "analyses") -> np.ndarray:
    """The sorted distinct values of ``by`` as the analyses will group them; NaN refused."""
    values = np.asarray(coords[by])
    if values.dtype.kind in "iufb":
        missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), bool)
        if missing.any():
            sets = ""
            if "stimulus_set" in coords:
                names = np.unique(np.asarray(coords["stimulus_set"])[missing].astype(str))
                sets = f" (stimulus set{'s' if len(names) > 1 else ''} {', '.join(names)})"
            _fail(i, "by", f"expected a value of {by!r} on every presentation, found NaN on {int(missing.sum())} of "
                           f"{len(values)} presentations{sets}: the analyses run on every presentation, so every "
                           f"stimulus set needs the parameter", *extra, key=key)
        return np.unique(values)
    return np.unique(np.asarray(values, dtype=object).astype(str))


def _check_entry(i: int, entry: Any, coords: Mapping[str, np.ndarray], folder: str | os.PathLike[str] | None = None) -> None:
    names = [entry.by] if isinstance(entry.by, str) else list(entry.by)
    listed = not isinstance(entry.by, str)
    for j, by in enumerate(names):
        if by not in coords:
            _fail(i, "by", f"{by!r} is not a presentation coordinate of these stimuli{did_you_mean(by, coords)}; "
                           f"coordinates: {', '.join(sorted(coords))}", *([j] if listed else []))
    kind = entry.kind
    if kind == "compare":  # the reference is opened and checked against the coordinates
        from .comparison import check_comparison

        _levels(i, names[0], coords)  # no NaN
        check_comparison(i, entry, np.asarray(coords[names[0]]), folder)
        return
    index = INDICES.get(getattr(entry, "index", None) or "")
    if kind == "selectivity" and index is not None and index.name == "magnitude":
        return  # magnitude does not group by `by`
    levels = {by: _levels(i, by, coords, *([j] if listed else [])) for j, by in enumerate(names)}
    if kind == "tuning_curve":
        return  # any number of levels, any values
    by = names[0]
    found = levels[by]
    if len(found) < 2:
        _fail(i, "by", f"expected at least 2 distinct values of {by!r} (conditions to compare), found {len(found)} "
                       f"({_text(found)})")

    # what each kind needs of the angles, in the order the analysis checks it
    if kind in ("rayleigh", "von_mises") or (kind == "population" and entry.test == "rayleigh"):
        problem = angle_problem(found, by, "a von Mises fit" if kind == "von_mises" else "the rayleigh test")
        if problem:
            _fail(i, "by", problem)
    if kind == "von_mises":
        n_params = 5 if entry.two_peaks else 4
        distinct = np.unique(np.mod(found.astype(np.float64), float(entry.period)))
        if len(distinct) < n_params:
            _fail(i, "by", f"expected at least {n_params} distinct angles modulo {entry.period:g} for a von Mises fit "
                           f"with {n_params} parameters, found {len(distinct)} ({_text(distinct)})")
    if kind == "population":
        if (entry.test.endswith("_ovr") or (index is not None and index.per_condition)) and entry.condition != EACH:
            if match_level(found, entry.condition) is None:
                _fail(i, "condition", f"expected a level of {by!r}, found {entry.condition!r}; levels: {_text(found)}")
        index = INDICES[index.threshold] if index is not None and index.threshold else None
    if index is not None and index.family is not None:
        problem = angle_problem(found, by, f"the {index.name} index")
        if problem:
            _fail(i, "by", problem)
        if index.ratio:
            problem = partner_problem(found.astype(np.float64), by, index.name, index.family, float(index.period),
                                      float(index.period) / 2)
            if problem:
                _fail(i, "index", problem)


def check_study_plan(studies: Sequence[Any], lesions: Sequence[Any], coords: Mapping[str, np.ndarray]) -> None:
    """Check every ``study:`` entry of a protocol against the presentation coordinates.

    Parameters
    ----------
    studies : sequence of study entries
        ``protocol.study`` (:class:`neurorecord.protocol.schema.FunctionalPopulationsStudy`).
    lesions : sequence of lesion entries
        ``protocol.lesions``; each study names one of them (the schema has checked that).
    coords : mapping of str to numpy.ndarray of shape (n_presentations,)
        The coordinates on ``presentation`` the recording will have, as for
        :func:`check_analysis_plan`.

    Raises
    ------
    AnalysisError
        For the first entry at fault, with ``loc`` ``("study", i, "by")`` and a message
        ``study[i].by: ...``: ``by`` is not a presentation coordinate, is NaN on some
        presentations, has fewer than two levels, or has fewer than two levels in common with
        the classes (``label``) of the lesion entry's evaluated stimulus set, so a unit's
        preferred condition cannot be compared with the class its lesion hurts most.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> coords = {"label": np.repeat(np.arange(3), 2), "stimulus_set": np.array(["digits"] * 6)}
    >>> study = SimpleNamespace(by="size")
    >>> try:
    ...     check_study_plan([study], [], coords)
    ... except ValueError as error:
    ...     print(error.loc, error)
    ('study', 0, 'by') study[0].by: 'size' is not a presentation coordinate of these stimuli; coordinates: label, stimulus_set
    """
    for i, entry in enumerate(studies):
        by = entry.by
        if by not in coords:
            _fail(i, "by", f"{by!r} is not a presentation coordinate of these stimuli{did_you_mean(by, coords)}; "
                           f"coordinates: {', '.join(sorted(coords))}", key="study")
        found = _levels(i, by, coords, key="study")
        if len(found) < 2:
            _fail(i, "by", f"expected at least 2 distinct values of {by!r} (conditions to compare), found {len(found)} "
                           f"({_text(found)})", key="study")
        lesion = next((x for x in lesions if x.name == entry.lesions), None)
        if lesion is None or "label" not in coords:
            continue
        evaluated = np.asarray(coords["stimulus_set"]) == lesion.evaluate if "stimulus_set" in coords else slice(None)
        classes = np.unique(np.asarray(coords["label"])[evaluated].astype(str))
        common = np.intersect1d(found.astype(str), classes)
        if len(common) < 2:
            _fail(i, "by", f"expected levels of {by!r} that are classes of the lesion entry {lesion.name!r} (the labels "
                           f"of stimulus set {lesion.evaluate!r}: {_text(classes)}), so that each unit's preferred "
                           f"condition can be compared with the class its lesion hurts most; found {len(common)} in common "
                           f"(levels: {_text(found)})", key="study")
