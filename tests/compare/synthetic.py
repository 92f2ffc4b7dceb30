"""Small synthetic recordings for the comparison tests: planted structure, known noise."""

from __future__ import annotations

import numpy as np
import xarray as xr


def recording(means: np.ndarray, n_rep: int | np.ndarray = 4, noise: float = 0.5, seed: int = 0,
              region: str = "v1", shuffle: bool = True) -> xr.DataArray:
    """Trials around condition means (conditions, units): Gaussian noise of sd ``noise``.

    ``n_rep`` may differ per condition (an array); presentations are shuffled so that no test
    relies on their order. Coords: ``stimulus_id`` (``s000`` ...), ``repetition``, ``label``
    (condition index mod 3), ``neuroid_id``, ``region``.
    """
    rng = np.random.default_rng(seed)
    n_cond, n_units = means.shape
    reps = np.broadcast_to(np.asarray(n_rep), (n_cond,))
    codes = np.repeat(np.arange(n_cond), reps)
    repetition = np.concatenate([np.arange(r) for r in reps])
    order = rng.permutation(len(codes)) if shuffle else np.arange(len(codes))
    codes, repetition = codes[order], repetition[order]
    values = means[codes] + noise * rng.normal(size=(len(codes), n_units))
    return xr.DataArray(
        values, dims=("presentation", "neuroid"),
        coords={"stimulus_id": ("presentation", np.array([f"s{c:03d}" for c in codes])),
                "repetition": ("presentation", repetition),
                "label": ("presentation", codes % 3),
                "neuroid_id": ("neuroid", [f"{region}.{i}" for i in range(n_units)]),
                "region": ("neuroid", [region] * n_units)},
        attrs={"units": "spikes"},
    )


def planted(n_cond: int = 12, n_units: int = 20, seed: int = 0) -> np.ndarray:
    """Condition means with structure: three clusters of conditions plus unit-specific gains."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(3, n_units))
    return centres[np.arange(n_cond) % 3] + 0.5 * rng.normal(size=(n_cond, n_units))
