"""What an analysis needs of the levels of its ``by`` coordinate, as plain functions of those levels.

Each ``*_problem`` function returns None when the levels serve, or the reason they do not in
the form ``"expected ..., found ..."``. The analyses raise it prefixed with ``by:`` when they
are called; :func:`neurorecord.analysis.checks.check_analysis_plan` raises the same text,
prefixed with the protocol field, before anything is recorded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ANGLE_ATOL", "angle_problem", "fold", "partners", "partner_problem", "match_level"]

#: Angular tolerance (degrees) when matching an orthogonal or opposite angle to the levels.
ANGLE_ATOL = 1e-6


def angle_problem(levels: np.ndarray, by: str, what: str) -> str | None:
    """Why ``levels`` are not angles in degrees (numbers), or None.

    >>> angle_problem(np.array(["a", "b"]), "label", "the rayleigh test")
    "expected angles in degrees (numbers) for the rayleigh test, found coordinate 'label' with values such as 'a', 'b'"
    """
    levels = np.asarray(levels)
    if levels.dtype.kind in "iuf":
        return None
    return (f"expected angles in degrees (numbers) for {what}, found coordinate {by!r} with values such as "
            f"{', '.join(repr(v.item() if hasattr(v, 'item') else v) for v in levels[:3])}")


def fold(angles: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct angles modulo ``period`` (sorted, in [0, period)) and each angle's index among them.

    >>> fold(np.array([0.0, 90.0, 180.0, 270.0]), 180.0)
    (array([ 0., 90.]), array([0, 1, 0, 1]))
    """
    folded = np.mod(np.round(np.mod(np.asarray(angles, dtype=np.float64), period), 9), period)
    distinct, inverse = np.unique(folded, return_inverse=True)
    return distinct, inverse.reshape(-1)


def partners(folded: np.ndarray, shift: float, period: float) -> np.ndarray:
    """For each folded angle, the index of the angle ``shift`` degrees away; -1 where there is none."""
    target = np.mod(folded + shift, period)
    distance = np.abs(np.mod(target[:, None] - folded[None, :] + period / 2, period) - period / 2)
    found = distance <= ANGLE_ATOL
    return np.where(found.any(axis=1), np.argmax(found, axis=1), -1)


def partner_problem(levels: np.ndarray, by: str, index: str, family: str, period: float, shift: float) -> str | None:
    """Why the ratio form of ``family`` (osi or dsi) cannot pair the angles ``levels``, or None.

    ``index`` is the index name asked for (``osi``, ``osi_ratio``, ...); the ratio form compares
    each preferred angle with the one ``shift`` degrees away (modulo ``period``).

    >>> partner_problem(np.array([0.0, 45.0, 90.0]), "orientation", "osi", "osi", 180.0, 90.0)
    "expected each angle of 'orientation' to have its orthogonal partner (90 deg away) for the osi ratio form (index 'osi'), found none at 135 (for 45); levels modulo 180: 0, 45, 90. Record the missing angles too, or ask for the vector form alone: index 'osi_vector'"
    """
    folded, _ = fold(np.asarray(levels, dtype=np.float64), period)
    missing = np.flatnonzero(partners(folded, shift, period) < 0)
    if not len(missing):
        return None
    what = "orthogonal" if family == "osi" else "opposite"
    targets = np.mod(folded + shift, period)
    pairs = ", ".join(f"{targets[i]:g} (for {folded[i]:g})" for i in missing[:5])
    return (f"expected each angle of {by!r} to have its {what} partner ({shift:g} deg away) for the {family} ratio "
            f"form (index {index!r}), found none at {pairs}; levels modulo {period:g}: "
            f"{', '.join(f'{a:g}' for a in folded)}. Record the missing angles too, or ask for the vector form alone: "
            f"index '{family}_vector'")


def match_level(levels: np.ndarray, condition: Any) -> Any | None:
    """The level equal to ``condition`` as a value or as text (``3`` and ``"3"`` match 3), or None.

    >>> match_level(np.array([0, 1, 2]), "2"), match_level(np.array(["a", "b"]), "c")
    (np.int64(2), None)
    """
    match = [lv for lv in np.asarray(levels) if str(lv) == str(condition) or lv == condition]
    return match[0] if match else None
