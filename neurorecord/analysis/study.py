"""A protocol's ``study: kind: functional_populations`` entry, computed and written into the store.

The study of ``docs/functional-populations.md`` as one function: response and lesion profiles,
for each ``{method, criterion}`` the two clusterings and their agreement, the unit-by-unit match
of preferred and most-hurt condition, the per-unit indicators, their correlations and how each
predicts lesion impact. Every step is seeded from the protocol's seed, so the results are
deterministic and a resumed run recomputes them whole. Torch-free, like the rest of
:mod:`neurorecord.analysis`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr

from ..store import ANALYSES_NODE, save_result_nodes
from .agreement import indicator_correlations, partition_agreement, predicts_lesion_impact, preferred_vs_most_hurt, unit_indicators
from .profiles import cluster_profiles, lesion_profiles, response_profiles

__all__ = ["PROFILES", "functional_populations", "population_tables", "run_studies", "top_sets"]

#: The two kinds of profile a unit is clustered by, as they appear in node names.
PROFILES = ("activity", "lesion")


def _label(choice: Any) -> str:
    return f"{choice.method}-{choice.criterion}"


def functional_populations(entry: Any, activity: xr.DataArray, effects: xr.Dataset, seed: int = 0) -> dict[str, xr.Dataset]:
    """Compute one ``kind: functional_populations`` study entry.

    Parameters
    ----------
    entry : FunctionalPopulationsStudy
        The protocol entry (:class:`neurorecord.protocol.schema.FunctionalPopulationsStudy`):
        ``by``, ``normalise``, ``methods``, ``n_boot``, ``n_perm``.
    activity : xarray.DataArray, dims (presentation, neuroid)
        The region's recording, coordinates ``neuroid_id`` and ``entry.by``. May be dask-backed.
    effects : xarray.Dataset, dims (lesion, class)
        The single-unit sweep of the same region (a ``units: all`` lesion entry's node).
    seed : int, default 0
        The protocol's seed; every clustering, bootstrap and permutation is seeded with it.

    Returns
    -------
    dict of str to xarray.Dataset
        Results by node name relative to ``analyses/<region>/<name>``: ``response_profiles``
        and ``lesion_profiles`` (variable ``profile``, dims (neuroid, condition)); for each
        ``methods`` entry ``clusters/<method>-<criterion>-activity`` and ``-lesion``
        (:func:`~neurorecord.analysis.cluster_profiles`), ``agreement/<method>-<criterion>``
        (:func:`~neurorecord.analysis.partition_agreement`); then ``match``
        (:func:`~neurorecord.analysis.preferred_vs_most_hurt`), ``indicators``,
        ``correlations`` and ``prediction``. Every Dataset's attrs hold ``study`` (the entry
        as JSON) and ``seed``; those of a clustering step also ``method``, ``criterion``,
        ``profile`` and ``null``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis.lesion_stats import lesion_effects
    >>> from neurorecord.protocol.schema import FunctionalPopulationsStudy
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(4), 10)
    >>> tuning = np.repeat(np.eye(4), 3, axis=0)                           # 12 units, 3 preferring each class
    >>> x = tuning[:, labels].T + 0.1 * rng.random((40, 12))
    >>> ids = [f"fc1.{i}" for i in range(12)]
    >>> activity = xr.DataArray(x, dims=("presentation", "neuroid"),
    ...                         coords={"label": ("presentation", labels), "neuroid_id": ("neuroid", ids)})
    >>> correct = np.ones((12, 40), bool)
    >>> for unit in range(12):                                             # each lesion hurts its preferred class
    ...     correct[unit, labels == unit // 3] = rng.random(10) > 0.6 + 0.1 * (unit % 3)
    >>> effects = lesion_effects(correct, np.ones(40, bool), labels, ids, n_boot=0)
    >>> entry = FunctionalPopulationsStudy(kind="functional_populations", name="fp", region="fc1", lesions="fc1-single",
    ...                                    methods=[{"method": "average", "criterion": "silhouette"}], n_boot=10, n_perm=99)
    >>> results = functional_populations(entry, activity, effects)
    >>> sorted(results)[:4]
    ['agreement/average-silhouette', 'clusters/average-silhouette-activity', 'clusters/average-silhouette-lesion', 'correlations']
    >>> results["clusters/average-silhouette-activity"].attrs["k_chosen"], results["agreement/average-silhouette"]["value"].values
    (4, array([1., 1.]))
    >>> float(results["match"]["fraction_match"]), results["agreement/average-silhouette"].attrs["method"]
    (1.0, 'average')
    """
    study = entry.model_dump_json()
    profiles = {"activity": response_profiles(activity, entry.by, normalise=entry.normalise),
                "lesion": lesion_profiles(effects)}
    results: dict[str, xr.Dataset] = {
        "response_profiles": profiles["activity"].rename("profile").to_dataset(),
        "lesion_profiles": profiles["lesion"].rename("profile").to_dataset(),
    }
    for choice in entry.methods:
        label = _label(choice)
        clusters = {}
        for kind in PROFILES:
            clusters[kind] = cluster_profiles(profiles[kind], method=choice.method, criterion=choice.criterion,
                                              n_boot=entry.n_boot, seed=seed)
            clusters[kind].attrs["profile"] = kind
            results[f"clusters/{label}-{kind}"] = clusters[kind]
        agreement = partition_agreement(clusters["activity"]["population"], clusters["lesion"]["population"],
                                        n_perm=entry.n_perm, seed=seed)
        agreement.attrs.update(method=choice.method, criterion=choice.criterion, profile="activity vs lesion",
                               k_activity=clusters["activity"].attrs["k_chosen"], k_lesion=clusters["lesion"].attrs["k_chosen"])
        results[f"agreement/{label}"] = agreement
    results["match"] = preferred_vs_most_hurt(profiles["activity"], profiles["lesion"], n_perm=entry.n_perm, seed=seed)
    indicators = unit_indicators(activity, effects, by=entry.by)
    results["indicators"] = indicators
    results["correlations"] = indicator_correlations(indicators, n_boot=entry.n_boot, seed=seed)
    results["prediction"] = predicts_lesion_impact(indicators, n_perm=entry.n_perm, seed=seed)
    for name, ds in results.items():
        ds.attrs.setdefault("method", "none")
        ds.attrs.setdefault("criterion", "none")
        ds.attrs.setdefault("null", "none")
        ds.attrs.update(study=study, study_kind=entry.kind, seed=seed)
    return results


def population_tables(clusters: xr.Dataset, name: str) -> dict[str, xr.Dataset]:
    """Each population of a clustering as a population table (what :func:`~neurorecord.analysis.runner.load_population` reads).

    Parameters
    ----------
    clusters : xarray.Dataset
        From :func:`~neurorecord.analysis.cluster_profiles`: ``population`` (neuroid), -1 for
        units set aside.
    name : str
        The clustering's name (``"kmeans-gap-activity"``); population ``j`` is ``"<name>-<j>"``.

    Returns
    -------
    dict of str to xarray.Dataset
        ``"<name>-<j>"`` -> a Dataset over every unit (``neuroid``, with its coordinates):
        ``member`` (bool) and ``population`` (the unit's cluster). A cluster has no per-unit
        test behind it, so there is no ``p`` or ``q``; attrs: ``rule`` (in words),
        ``population`` (the name), ``method``, ``criterion``, ``k_chosen``, ``stability``,
        ``n_members``, ``n_candidates`` (every unit, set-aside ones included).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neurorecord.analysis.populations import Population
    >>> clusters = xr.Dataset({"population": ("neuroid", np.array([0, 1, 0, -1])), "stability": ((), 0.8)},
    ...                       coords={"neuroid_id": ("neuroid", ["fc1.0", "fc1.1", "fc1.2", "fc1.3"])},
    ...                       attrs={"method": "kmeans", "criterion": "gap", "k_chosen": 2, "profile": "activity"})
    >>> tables = population_tables(clusters, "kmeans-gap-activity")
    >>> Population.from_dataset(tables["kmeans-gap-activity-0"]).neuroid_ids
    ['fc1.0', 'fc1.2']
    """
    labels = np.asarray(clusters["population"].values)
    coords = {k: c for k, c in clusters.coords.items() if c.dims == ("neuroid",)}
    tables = {}
    for j in np.unique(labels[labels >= 0]):
        member = labels == j
        what = f"{clusters.attrs.get('profile', '')} profiles".strip()
        attrs = {"rule": f"cluster {int(j)} of {clusters.attrs.get('method')} on {what}, k chosen by "
                         f"{clusters.attrs.get('criterion')} ({clusters.attrs.get('k_chosen')} clusters)",
                 "population": f"{name}-{int(j)}", "method": clusters.attrs.get("method"),
                 "criterion": clusters.attrs.get("criterion"), "k_chosen": clusters.attrs.get("k_chosen"),
                 "stability": float(clusters["stability"]) if "stability" in clusters else float("nan"),
                 "n_members": int(member.sum()), "n_candidates": int(len(labels))}
        tables[f"{name}-{int(j)}"] = xr.Dataset(
            {"member": ("neuroid", member), "population": ("neuroid", labels)}, coords=coords, attrs=attrs)
    return tables


def top_sets(indicators: xr.Dataset, fraction: float, sets: Any = None) -> dict[str, xr.Dataset]:
    """The top-k units by each indicator, as population tables: the sets a study lesions beside its clusters.

    Parameters
    ----------
    indicators : xarray.Dataset, dim neuroid
        From :func:`~neurorecord.analysis.unit_indicators`: ``csi``, ``magnitude``,
        ``lesion_impact``.
    fraction : float in (0, 1)
        k is ``max(1, round(fraction * n_units))``.
    sets : iterable of str, optional
        Names from :data:`neurorecord.protocol.study.TOP_SETS` (default all): ``top-selective``
        (highest ``csi``), ``top-magnitude``, ``top-impact`` (highest ``lesion_impact``).

    Returns
    -------
    dict of str to xarray.Dataset
        name -> a table over every unit: ``member`` (bool), ``rank`` (1 = highest; units
        whose indicator is NaN rank last, ties in unit order); attrs ``rule``, ``population``,
        ``indicator``, ``k``, ``n_members``, ``n_candidates``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ind = xr.Dataset({"csi": ("neuroid", [0.1, 0.9, np.nan, 0.5]), "magnitude": ("neuroid", [4.0, 1.0, 2.0, 3.0]),
    ...                   "lesion_impact": ("neuroid", [0.0, 2.0, 1.0, 0.5])},
    ...                  coords={"neuroid_id": ("neuroid", ["a", "b", "c", "d"])})
    >>> tables = top_sets(ind, 0.5)
    >>> {name: t["neuroid_id"].values[t["member"].values].tolist() for name, t in tables.items()}
    {'top-selective': ['b', 'd'], 'top-magnitude': ['a', 'd'], 'top-impact': ['b', 'c']}
    """
    from ..protocol.study import TOP_SETS

    n = indicators.sizes["neuroid"]
    k = max(1, int(round(fraction * n)))
    coords = {key: c for key, c in indicators.coords.items() if c.dims == ("neuroid",)}
    tables = {}
    for name in TOP_SETS if sets is None else sets:
        if name not in TOP_SETS:
            continue
        indicator, what = TOP_SETS[name]
        values = np.asarray(indicators[indicator].values, dtype=np.float64)
        order = np.argsort(np.where(np.isnan(values), np.inf, -values), kind="stable")
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(1, n + 1)
        member = rank <= k
        attrs = {"rule": f"the {k} units of highest {indicator}: {what}", "population": name, "indicator": indicator,
                 "k": k, "fraction": float(fraction), "n_members": int(member.sum()), "n_candidates": int(n)}
        tables[name] = xr.Dataset({"member": ("neuroid", member), "rank": ("neuroid", rank)}, coords=coords, attrs=attrs)
    return tables


def run_studies(protocol: Any, tree: xr.DataTree, store: str | os.PathLike[str]) -> list[str]:
    """Run every ``study:`` entry of ``protocol`` on ``tree`` and write the results into ``store``.

    Each entry's results go under ``analyses/<region>/<name>/`` (see
    :func:`functional_populations`), and each clustering's populations under
    ``analyses/<region>/<name>/populations/<method>-<criterion>-<activity|lesion>-<j>``, readable
    with ``load_population(store, region, "<name>/populations/...")``, and, with
    ``population_lesions``, the top-k sets (:func:`top_sets`) as ``populations/top-selective``,
    ``top-magnitude``, ``top-impact``. Returns the nodes written.
    """
    written = []
    for entry in protocol.study:
        activity = tree[entry.region]["activity"]
        effects = tree[f"lesions/{entry.lesions}"].to_dataset().load()
        results = functional_populations(entry, activity, effects, seed=protocol.seed)
        for name, ds in list(results.items()):
            if name.startswith("clusters/"):
                for pop, table in population_tables(ds, name.removeprefix("clusters/")).items():
                    table.attrs.update(study=ds.attrs["study"], seed=protocol.seed)
                    results[f"populations/{pop}"] = table
        if entry.population_lesions is not None:
            for pop, table in top_sets(results["indicators"], entry.population_lesions.top_fraction).items():
                table.attrs.update(study=results["indicators"].attrs["study"], seed=protocol.seed)
                results[f"populations/{pop}"] = table
        nodes = {f"{ANALYSES_NODE}/{entry.region}/{entry.name}/{name}": ds for name, ds in results.items()}
        save_result_nodes(store, nodes)
        written.extend(nodes)
    return written
