"""Argument checks shared by every public function: one message form, one place.

Every check takes the argument's name and raises with the form
``"<name>: expected <what>, found <value>"`` (and, for names, the valid choices), so a user
reads the same sentence whichever function they called. The exception class is the caller's
(``error=``): :class:`~neurorecord.errors.AnalysisError` in the analyses, plain ``ValueError``
in the torch side. Both are ``ValueError`` subclasses; nothing here uses ``assert``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from .errors import did_you_mean

__all__ = ["check_choice", "check_scalar", "check_seed", "shape_text"]


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as Python writes a tuple: ``(3,)``, ``(2, 4)``.

    >>> shape_text((3,))
    '(3,)'
    """
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def check_choice(name: str, value: Any, choices: Sequence[str], *, error: type[Exception] = ValueError) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ``error`` naming the valid ones.

    >>> check_choice("correction", "fdr_bh", ("fdr_bh", "bonferroni"))
    'fdr_bh'
    >>> check_choice("correction", "fdr", ("fdr_bh", "bonferroni"))
    Traceback (most recent call last):
    ...
    ValueError: correction: expected one of 'fdr_bh', 'bonferroni', found 'fdr' (did you mean 'fdr_bh'?)
    """
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise error(f"{name}: expected one of {', '.join(map(repr, choices))}, found {value!r}{hint}")
    return value


def check_scalar(
    name: str,
    value: Any,
    kind: type = Real,
    *,
    low: float | None = None,
    high: float | None = None,
    closed: str = "both",
    none_ok: bool = False,
    error: type[Exception] = ValueError,
) -> Any:
    """Return ``value`` (as ``int`` or ``float``) if it is a finite ``kind`` inside the interval.

    Parameters
    ----------
    name
        The argument's name, as the user wrote it.
    value
        What the user passed.
    kind
        ``int`` (any integral type, not bool) or ``float`` (any real number, not bool).
    low, high
        Bounds of the interval (None: unbounded on that side).
    closed
        Which bounds belong to the interval: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
    none_ok
        Accept ``None`` (returned as is).
    error
        The exception class to raise.

    Examples
    --------
    >>> check_scalar("n_boot", 100, int, low=0)
    100
    >>> check_scalar("alpha", 1.5, float, low=0, high=1, closed="neither")
    Traceback (most recent call last):
    ...
    ValueError: alpha: expected a number in (0, 1), found 1.5
    """
    if value is None and none_ok:
        return None
    integral = kind in (int, Integral)
    ok_type = isinstance(value, (Integral, np.integer)) if integral else isinstance(value, (Real, np.floating, np.integer))
    what = "an integer" if integral else "a number"
    if low is not None or high is not None:
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        if high is None:
            what += f" {'>=' if left == '[' else '>'} {low:g}"
        elif low is None:
            what += f" {'<=' if right == ']' else '<'} {high:g}"
        else:
            what += f" in {left}{low:g}, {high:g}{right}"
    if none_ok:
        what += " or None"
    if isinstance(value, (bool, np.bool_)) or not ok_type:
        raise error(f"{name}: expected {what}, found {value!r} ({type(value).__name__})")
    v = float(value)
    outside = (
        not np.isfinite(v)
        or (low is not None and (v < low if closed in ("both", "left") else v <= low))
        or (high is not None and (v > high if closed in ("both", "right") else v >= high))
    )
    if outside:
        raise error(f"{name}: expected {what}, found {value!r}")
    return int(value) if integral else float(value)


def check_seed(name: str, value: Any, *, error: type[Exception] = ValueError) -> int:
    """Return a seed as ``int``: a non-negative integer.

    >>> check_seed("seed", 3)
    3
    """
    return check_scalar(name, value, int, low=0, error=error)
