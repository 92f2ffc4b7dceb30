"""Exceptions raised by neurorecord.

Every error a user can cause by what they wrote (a protocol, a path, a model) is a
:class:`NeurorecordError`. The command-line interface prints its message and exits with
status 2, without a traceback; in Python it propagates like any exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "NeurorecordError",
    "ProtocolError",
    "SubjectError",
    "StimulusError",
    "RegionError",
    "StoreError",
    "IncompleteRecordingError",
    "DamagedStoreError",
    "InteropError",
    "AnalysisError",
    "did_you_mean",
]


class NeurorecordError(Exception):
    """Base class of the errors caused by user input (exit status 2 on the command line).

    ``loc`` is the protocol key path the error is about (``("record", "regions", 2)``), when
    known; :func:`neurorecord.prepare` uses it to prefix the message with ``file:line:col``.
    """

    def __init__(self, message: str, *, loc: tuple[str | int, ...] | None = None) -> None:
        super().__init__(message)
        self.loc = loc


class ProtocolError(NeurorecordError):
    """A protocol file is missing, malformed, or breaks the schema."""


class SubjectError(NeurorecordError):
    """A subject cannot be built: unknown zoo name, import failure, mismatched weights."""


class StimulusError(NeurorecordError):
    """A stimulus set cannot be built from its protocol entry."""


class RegionError(NeurorecordError):
    """A region name does not exist in the subject, or its output cannot be recorded."""


class StoreError(NeurorecordError):
    """An output folder or recording store cannot be used as asked."""


class InteropError(NeurorecordError):
    """Outside data cannot be converted: a missing or malformed file, Neo objects without the
    annotations a recording needs, an argument without units."""


class AnalysisError(NeurorecordError, ValueError):
    """An analysis was given data or arguments it cannot use (wrong dims, unknown coordinate,
    a value out of range). A ``ValueError``, so code that catches bad arguments catches it."""


class DamagedStoreError(StoreError):
    """A store's files are missing or changed since it was completed, or its format is unknown."""


class IncompleteRecordingError(StoreError):
    """The store was not finished (the run was interrupted); resume it or open it explicitly."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close.

    >>> did_you_mean("regoins", ["regions", "batch_size"])
    " (did you mean 'regions'?)"
    """
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
