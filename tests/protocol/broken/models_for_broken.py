"""Entry points for the broken-protocol corpus (core-entry-*.yaml): one good model, one bad return."""

from torch import nn


def build() -> nn.Module:
    """A small model with the regions ``flatten``, ``hidden`` and ``readout``."""
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    model.add_module("hidden", nn.Sequential(nn.Linear(64, 32), nn.ReLU()))
    model.add_module("readout", nn.Linear(32, 10))
    return model


def not_a_model() -> dict:
    """Returns a plain dict: the protocol that names it must be refused."""
    return {"hidden": 32}
