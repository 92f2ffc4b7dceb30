"""Schema of the generated (parametric) stimulus kinds."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["PARAMETRIC_SPECS"]

#: Spec models of the parametric kinds, joined into the protocol's stimulus union.
PARAMETRIC_SPECS: tuple[type[BaseModel], ...] = ()
