"""Population lesions of a study: each population silenced whole, against matched random controls.

A ``study:`` entry with ``population_lesions`` (the default) lesions every population it defined
(each cluster of each clustering, and the top-k most selective, highest-magnitude and most
damaging units; :func:`neurorecord.analysis.study.top_sets`) with the lesion method of its
single-unit sweep entry, on that entry's evaluation set. Each population of ``k`` units is
compared with ``controls`` random lesions of ``k`` units of the same region
(:func:`~neurorecord.analysis.lesion_stats.draw_controls`); populations of the same size share
their controls, which is the same null (a random ``k``-unit lesion of the region) drawn once.
The result, written to ``lesions/<study name>``, says per class whether a population hurts more
than its size predicts (``control_p``, one-sided, and ``control_q``, FDR over the populations),
and the same for the loss (``loss_control_p``). Recomputed whole on resume, like the study.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import torch
import xarray as xr
from ..analysis._multitest import adjusted_p
from tqdm.auto import tqdm

from .. import store as store_io
from ..analysis.lesion_stats import control_null, cross_entropy_loss, draw_controls, lesion_effects
from ..stimuli.base import StimulusSet
from .experiment import BLOCK, LESIONS_NODE, _run_block, _set
from .specs import Lesion
from .sweep import prepared_sweep, unit_means

__all__ = ["population_lesions", "run_population_lesions"]


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] % 2**31)


def population_lesions(model: torch.nn.Module, x: torch.Tensor, labels: np.ndarray, region: str,
                       populations: dict[str, tuple[int, ...]], n_units_region: int, *, method: str = "zero",
                       value: float = 0.0, std: float = 1.0, means: torch.Tensor | None = None, controls: int = 99,
                       n_boot: int = 1000, correction: str = "fdr_bh", seed: int = 0,
                       device: torch.device | str = "cpu", stimulus_id: Any = None, progress: bool = False) -> xr.Dataset:
    """Lesion each population whole and ``controls`` random groups of each population size.

    Parameters
    ----------
    model : torch.nn.Module
        The subject; left as found (no hooks, same mode and weights).
    x : torch.Tensor, shape (n_stimuli, ...)
        The evaluation stimuli, preprocessed.
    labels : numpy.ndarray of int, shape (n_stimuli,)
        True classes (the model's output indices).
    region : str
        The lesioned module.
    populations : dict of str to tuple of int
        Population name -> its units (channels of ``region``), each non-empty.
    n_units_region : int
        Number of units of ``region`` (the controls' pool).
    method, value, std, means
        The lesion (:class:`~neurorecord.lesion.specs.Lesion`): ``zero``, ``mean`` (with
        ``means``, the units' means), ``noise`` (``std``) or ``clamp`` (``value``).
    controls : int, default 99
        Random lesions per population size.
    n_boot, correction, seed
        As :func:`~neurorecord.analysis.lesion_stats.lesion_effects`; the controls and the
        noise lesions are drawn from ``seed`` too.
    device : torch.device or str, default "cpu"
    stimulus_id : array-like of str, optional
        Labels of the stimuli (``presentation`` coordinate).
    progress : bool, default False
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    xarray.Dataset, dims (lesion, class[, presentation])
        :func:`~neurorecord.analysis.lesion_stats.lesion_effects` of every lesion (populations
        first, then controls ``control-<k>/<j>``), with coordinates ``lesion_kind``
        (``population`` or ``control``), ``n_units``, ``targets``; ``loss`` (lesion, nats);
        for the populations ``control_median`` (class; the median change of the controls of
        its size, percentage points: what its size alone predicts), ``control_percentile``, ``control_p`` (class; one-sided
        empirical p of the accuracy change among the controls of its size), ``control_q``
        (class; ``correction`` over the populations) and ``loss_control_p`` (the same for
        the loss increase). attrs: ``region``, ``method``, ``n_controls``, ``null``,
        ``n_units_region``.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> from neurorecord.stimuli import DigitsSet
    >>> stim = DigitsSet("digits", "test")
    >>> x, labels = torch.from_numpy(np.array(stim.images(np.arange(len(stim))))), stim.parameters()["label"]
    >>> fx = population_lesions(digits_mlp(), x, labels, "fc2", {"first-ten": tuple(range(10))}, 100, controls=19, n_boot=0)
    >>> fx["lesion_kind"].values.tolist().count("control"), fx["control_p"].sel(lesion="first-ten", **{"class": "overall"}).item() > 0
    (19, True)
    """
    labels = np.asarray(labels).astype(np.int64)
    names, units, kinds = [], [], []
    for name, members in populations.items():
        names.append(name)
        units.append(tuple(int(u) for u in members))
        kinds.append("population")
    sizes = sorted({len(u) for u in units})
    for k in sizes:
        for j, draw in enumerate(draw_controls(n_units_region, k, controls, seed=_seed(seed, k))):
            names.append(f"control-{k}/{j}")
            units.append(tuple(int(u) for u in draw))
            kinds.append("control")
    lesions = [Lesion(u, method, value=value, std=std) for u in units]
    correct = np.zeros((len(lesions), len(labels)), bool)
    loss = np.zeros(len(lesions))
    intact = None
    bar = tqdm(total=len(lesions), unit="lesion", desc=f"population lesions {region}", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    with bar, prepared_sweep(model, x, region, means=means, device=device) as sweep:
        pack, chunk = None, None
        for start in range(0, len(lesions), BLOCK):
            stop = min(len(lesions), start + BLOCK)
            result = _run_block(sweep, lesions[start:stop], _seed(seed, start // BLOCK), pack, chunk)
            pack, chunk = result.pack_size, result.stimulus_chunk
            correct[start:stop] = result.predictions.numpy() == labels[None, :]
            loss[start:stop] = cross_entropy_loss(result.logits.numpy(), labels).values
            intact = result
            bar.update(stop - start)
    correct_intact = intact.intact_predictions.numpy() == labels
    loss_intact = float(cross_entropy_loss(intact.intact_logits.numpy(), labels))
    ds = lesion_effects(correct, correct_intact, labels, names, n_boot=n_boot, seed=seed, correction=correction)
    ds = ds.assign_coords(
        targets=("lesion", np.array([",".join(f"{region}.{u}" for u in lesioned) for lesioned in units], dtype=object)),
        lesion_kind=("lesion", np.array(kinds, dtype=object)),
        n_units=("lesion", np.array([len(u) for u in units], dtype=np.int64)),
    )
    if stimulus_id is not None:
        ds = ds.assign_coords(stimulus_id=("presentation", np.asarray(stimulus_id, dtype=object)))
    ds["loss"] = ("lesion", loss, {"units": "nats", "long_name": "mean cross-entropy loss of the lesioned network"})
    ds["loss_intact"] = ((), loss_intact, {"units": "nats", "long_name": "mean cross-entropy loss of the intact network"})
    ds = ds.merge(_against_controls(ds, np.array(kinds), correction))
    ds.attrs.update({"region": region, "method": method, "n_controls": int(controls), "n_units_region": int(n_units_region),
                     "null": f"{controls} random lesions of as many units of {region} (shared by populations of one size); "
                             "p = (1 + #controls at least as harmful) / (1 + controls)",
                     "correction_control": correction})
    return ds


def _against_controls(ds: xr.Dataset, kinds: np.ndarray, correction: str) -> xr.Dataset:
    """Each population's accuracy and loss change among the controls of its size."""
    n_lesion, n_class = ds.sizes["lesion"], ds.sizes["class"]
    percentile = np.full((n_lesion, n_class), np.nan)
    p = np.full((n_lesion, n_class), np.nan)
    q = np.full((n_lesion, n_class), np.nan)
    loss_p = np.full(n_lesion, np.nan)
    median = np.full((n_lesion, n_class), np.nan)
    sizes = ds["n_units"].values
    delta = ds["delta_accuracy"].values
    loss_rise = ds["loss"].values - float(ds["loss_intact"])
    for i in np.flatnonzero(kinds == "population"):
        same = (kinds == "control") & (sizes == sizes[i])
        null = control_null(delta[i], delta[same])
        percentile[i], p[i] = null["percentile"].values, null["p_empirical"].values
        median[i] = np.median(delta[same], axis=0)
        loss_p[i] = control_null([-loss_rise[i]], -loss_rise[same][:, None])["p_empirical"].values[0]
    rows = np.flatnonzero(kinds == "population")
    for c in range(n_class):
        finite = rows[np.isfinite(p[rows, c])]
        if finite.size:
            q[finite, c] = adjusted_p(p[finite, c], correction)
    lc = ("lesion", "class")
    return xr.Dataset({
        "control_percentile": (lc, percentile, {"units": "%", "long_name": "percent of matched controls less harmful"}),
        "control_p": (lc, p, {"long_name": "one-sided empirical p: hurts no more than a random lesion of its size"}),
        "control_median": (lc, median, {"units": "percentage points",
                                         "long_name": "median accuracy change of the matched controls"}),
        "control_q": (lc, q, {"long_name": f"control_p corrected over the populations ({correction})"}),
        "loss_control_p": ("lesion", loss_p, {"long_name": "one-sided empirical p of the loss increase among the controls"}),
    })


def run_population_lesions(protocol: Any, model: torch.nn.Module, sets: list[StimulusSet], device: torch.device,
                           store: str | os.PathLike[str], quiet: bool = True) -> list[str]:
    """Lesion the populations of every ``study:`` entry that asks for it; write ``lesions/<study name>``.

    The populations are read back from the study's results in the store
    (``analyses/<region>/<name>/populations/...``), so this runs after
    :func:`neurorecord.analysis.study.run_studies`. Returns the nodes written.
    """
    from ..analysis.runner import load_analysis

    written = []
    tree = store_io.open_recording(store, allow_incomplete=True) if protocol.study else None  # once: it reads every node's coordinates
    for index, entry in enumerate(protocol.study):
        options = entry.population_lesions
        if options is None:
            continue
        spec = next(lesion for lesion in protocol.lesions if lesion.name == entry.lesions)
        stim = _set(sets, spec.evaluate)
        params = stim.parameters()
        x = torch.from_numpy(np.array(stim.images(np.arange(len(stim)))))
        sweep = tree[f"{LESIONS_NODE}/{spec.name}"]
        n_units = int(sweep.attrs["n_units_region"])
        populations = {}
        base = f"{entry.name}/populations"
        for name in sorted(tree[f"{store_io.ANALYSES_NODE}/{entry.region}/{base}"].children):
            top = name in ("top-selective", "top-magnitude", "top-impact")
            if (top and name not in options.sets) or (not top and "clusters" not in options.sets):
                continue
            table = load_analysis(tree, entry.region, f"{base}/{name}")
            member = table["member"].values.astype(bool)
            channels = np.asarray(table["channel"].values)[member]
            populations[name] = tuple(sorted({int(c) for c in channels}))
        means = None
        if spec.method == "mean":
            reference = _set(sets, spec.reference or spec.evaluate)
            means = unit_means(model, torch.from_numpy(np.array(reference.images(np.arange(len(reference))))),
                               spec.region, device=device)
        effects = population_lesions(
            model, x, params["label"], spec.region, populations, n_units, method=spec.method, value=spec.value,
            std=spec.std, means=means, controls=options.controls, n_boot=spec.n_boot, correction=spec.correction,
            seed=_seed(protocol.seed, index), device=device, stimulus_id=params["stimulus_id"], progress=not quiet)
        effects.attrs.update({"study": entry.name, "lesion": spec.model_dump_json(), "evaluate": spec.evaluate,
                              "population_lesions": options.model_dump_json(), "seed": int(protocol.seed)})
        node = f"{LESIONS_NODE}/{entry.name}"
        store_io.save_result_node(store, node, effects)
        written.append(node)
    return written
