"""Fixtures shared by the lesion tests: the 454 test digits and the two zoo subjects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurorecord.stimuli import DigitsSet
from neurorecord.subjects import load_zoo_subject


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.from_numpy(DigitsSet("d", "test").images(np.arange(454)))


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    return load_zoo_subject("digits-mlp").model


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    return load_zoo_subject("digits-cnn").model
