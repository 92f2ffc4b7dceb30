"""Building blocks shared by every part of the protocol schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

__all__ = ["Strict", "Preprocess", "Normalize", "StimulusBase", "SET_NAME_PATTERN"]

#: Names of stimulus sets, analyses, lesions: safe as zarr node names and file names.
SET_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class Strict(BaseModel):
    """A protocol section: unknown keys are errors, values are immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Normalize(Strict):
    """``(x - mean) / std`` per channel (one value, or one per channel)."""

    mean: float | list[float] = Field(0.0, description="Subtracted: one value, or one per channel (after `channels`).")
    std: float | list[float] = Field(1.0, description="Divided by, > 0: one value, or one per channel.")

    @model_validator(mode="after")
    def _positive_std(self) -> "Normalize":
        stds = self.std if isinstance(self.std, list) else [self.std]
        if any(s <= 0 for s in stds):
            raise ValueError(f"std must be > 0, found {self.std}")
        return self


class Preprocess(Strict):
    """Image preprocessing, applied in this order: ``resize``, ``channels``, ``normalize``.

    Recorded with the set's provenance in the store.
    """

    resize: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="[height, width] in pixels (bilinear, antialiased when shrinking)."
    )
    channels: Literal[1, 3] | None = Field(
        None, description="1: grey (ITU-R BT.601 luma of RGB); 3: RGB (grey replicated)."
    )
    normalize: Normalize | None = Field(None, description="Per-channel (x - mean) / std after resize and channels.")


class StimulusBase(Strict):
    """Keys every stimulus set has."""

    name: str = Field(..., min_length=1, pattern=SET_NAME_PATTERN, description="The set's name; the `stimulus_set` coordinate.")
    preprocess: Preprocess | None = Field(None, description="Resize, channel conversion and normalisation of the images.")
