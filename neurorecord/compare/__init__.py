"""Model vs biology: the same comparisons on a model recording and on a biological one.

Every function takes recordings in the package's layout (``presentation x neuroid``, with
``stimulus_id`` and the other stimulus coordinates) and returns labelled xarray objects. The
conditions are the values of a presentation coordinate (``by``, ``stimulus_id`` by default);
presentations of a condition are averaged first, so unequal trial counts are fine. Nothing here
needs torch or any optional package.

- :func:`rdm`: representational dissimilarity matrix over the conditions (correlation,
  Euclidean or crossnobis distance, rsatoolbox's conventions);
- :func:`compare_rdms`: Spearman, Kendall tau-a, cosine or Pearson similarity of two RDMs, with
  a bootstrap interval over conditions;
- :func:`split_rdms` and :func:`rdm_noise_ceiling`: RDMs of independent parts of the data
  (repetitions, subjects) and the lower and upper bounds of the noise ceiling;
- :func:`cka`: linear centred kernel alignment, plain or debiased;
- :func:`linear_predictivity`: cross-validated ridge predictivity of each biological unit from
  the model's units, raw and divided by the unit's split-half reliability
  (:func:`split_half_reliability`).

See ``docs/compare.md`` for the conventions and a worked example.
"""

from __future__ import annotations

from .ceiling import rdm_noise_ceiling, split_half_reliability, split_rdms
from .cka import cka, linear_cka
from .predictivity import ALPHAS, linear_predictivity
from .rdm import rdm, rdm_from_means, upper_triangle
from .rdm_compare import compare_rdms

__all__ = [
    "rdm",
    "rdm_from_means",
    "upper_triangle",
    "compare_rdms",
    "split_rdms",
    "rdm_noise_ceiling",
    "split_half_reliability",
    "cka",
    "linear_cka",
    "linear_predictivity",
    "ALPHAS",
]
