"""Parameter grids: stimuli as the factorial product of parameter axes, indexed without expanding.

An axis is one parameter's values, or a zipped group of parameters whose values are paired
element by element. Stimulus ``i`` is the ``i``-th combination in C order (the first axis
varies slowest, like nested loops), so any subset of a grid of millions of stimuli is found
with :func:`numpy.unravel_index` and nothing is built for the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["ParameterGrid"]


class ParameterGrid:
    """The factorial product of axes, each a mapping of parameter names to equal-length arrays.

    Parameters
    ----------
    axes
        One mapping per axis, slowest first: ``{name: values}``, or several names for a zipped
        group (values paired element by element, so all of one length).

    Examples
    --------
    >>> import numpy as np
    >>> g = ParameterGrid([{"orientation": np.array([0.0, 90.0])},
    ...                    {"phase": np.array([0.0, 180.0, 270.0]), "contrast": np.array([50.0, 100.0, 25.0])}])
    >>> len(g), g.shape, g.names
    (6, (2, 3), ['orientation', 'phase', 'contrast'])
    >>> {k: v.tolist() for k, v in g.columns(np.array([0, 4])).items()}
    {'orientation': [0.0, 90.0], 'phase': [0.0, 180.0], 'contrast': [50.0, 100.0]}
    """

    def __init__(self, axes: Sequence[Mapping[str, np.ndarray]]) -> None:
        if not axes:
            raise ValueError("a parameter grid needs at least one axis")
        self.axes = [{name: np.asarray(values) for name, values in axis.items()} for axis in axes]
        lengths = []
        for axis in self.axes:
            sizes = {len(v) for v in axis.values()}
            if len(sizes) != 1 or 0 in sizes:
                listed = ", ".join(f"{k}: {len(v)}" for k, v in axis.items())
                raise ValueError(f"the values of one axis must be non-empty and of equal length; found {listed}")
            lengths.append(sizes.pop())
        self.names = [name for axis in self.axes for name in axis]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"a parameter appears on two axes: {self.names}")
        self.shape = tuple(lengths)

    def __len__(self) -> int:
        return math.prod(self.shape)

    def columns(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Every parameter's value at each stimulus of ``index`` (integers in ``[0, len(self))``)."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"stimulus index out of range 0..{len(self) - 1}")
        positions = np.unravel_index(index, self.shape)
        return {name: values[pos] for axis, pos in zip(self.axes, positions) for name, values in axis.items()}
