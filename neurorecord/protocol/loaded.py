"""Schema of the stimulus kinds loaded from files."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["LOADED_SPECS"]

#: Spec models of the loaded kinds (besides digits and npy), joined into the protocol's stimulus union.
LOADED_SPECS: tuple[type[BaseModel], ...] = ()
