"""A small VGG-style CNN with random weights, the subject of ``record_overhead.py`` and ``lesion_sweep.py``.

Three conv blocks (two 3x3 convs with ReLU, then 2x2 max-pooling) and a two-layer classifier,
about 1.08 M parameters, for (n, 3, 32, 32) inputs (``size=16``: (n, 3, 16, 16) inputs, a
smaller classifier). Regions worth recording are the blocks (for 32x32 inputs):

=========  ===================  ==================
region     output               neuroids (none)
=========  ===================  ==================
block1     32 x 16 x 16         8,192
block2     64 x 8 x 8           4,096
block3     128 x 4 x 4          2,048
=========  ===================  ==================

Used as a protocol entry point (``vgg:vgg_small``) and built directly for the plain baseline;
the same seed gives the same weights either way.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["vgg_small"]

_CHANNELS = (32, 64, 128)
_HIDDEN = 384
_CLASSES = 10


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(c_in, c_out, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(c_out, c_out, 3, padding=1)),
                ("relu2", nn.ReLU()),
                ("pool", nn.MaxPool2d(2)),
            ]
        )
    )


def vgg_small(seed: int = 0, size: int = 32) -> nn.Sequential:
    """VGG-style CNN for 3 x ``size`` x ``size`` inputs: ``block1`` .. ``block3``, then ``classifier``.

    Weights are PyTorch's default initialisation drawn under ``torch.manual_seed(seed)``,
    without touching the caller's random state. Returned in eval mode. ``size`` must be a
    multiple of 8 (three 2x2 poolings); only the classifier's first layer depends on it.

    >>> model = vgg_small()
    >>> sum(p.numel() for p in model.parameters()), tuple(model(torch.zeros(2, 3, 32, 32)).shape)
    (1077674, (2, 10))
    >>> tuple(vgg_small(size=16)(torch.zeros(2, 3, 16, 16)).shape)
    (2, 10)
    """
    if size <= 0 or size % 8:
        raise ValueError(f"size: expected a positive multiple of 8, found {size!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        c1, c2, c3 = _CHANNELS
        model = nn.Sequential(
            OrderedDict(
                [
                    ("block1", _conv_block(3, c1)),
                    ("block2", _conv_block(c1, c2)),
                    ("block3", _conv_block(c2, c3)),
                    (
                        "classifier",
                        nn.Sequential(
                            OrderedDict(
                                [
                                    ("flatten", nn.Flatten()),
                                    ("fc", nn.Linear(c3 * (size // 8) ** 2, _HIDDEN)),
                                    ("relu", nn.ReLU()),
                                    ("out", nn.Linear(_HIDDEN, _CLASSES)),
                                ]
                            )
                        ),
                    ),
                ]
            )
        )
    return model.eval()
