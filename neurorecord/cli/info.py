"""``neurorecord info``: a description of a store, as text or (``--json``) for scripts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from ..errors import DamagedStoreError
from ..store import (BEHAVIOUR_NODE, MANIFEST_ATTR, check_files, check_format, is_consolidated, not_a_store,
                     read_run_state, root_attrs)

__all__ = ["describe_store", "store_summary"]


def describe_store(path: str | os.PathLike[str], check: bool = False) -> str:
    """Regions, shapes, coordinates, provenance and completeness of a store, as text.

    The facts of :func:`store_summary`, one line each. With ``check``, every file of a complete
    store is read and compared with the manifest written at completion; a damaged store raises
    :class:`~neurorecord.errors.DamagedStoreError` naming each missing or changed file.
    """
    summary = store_summary(path, check)
    lines = [f"store     {summary['store']}", f"status    {summary['status']}"]
    if "regions" not in summary:  # the skeleton was never finished
        return "\n".join(lines)
    if summary["complete"]:
        n_files = summary["check"]["n_files"]
        lines.append(f"check     {summary['check']['compared']} of all {n_files} files match the manifest" if n_files
                     else "check     no manifest (store format 1): files cannot be checked")
    protocol, subject = summary["protocol"], summary["subject"]
    lines += [
        f"protocol  {protocol['name']}  sha256 {protocol['sha256']}",
        f"          from {protocol['path'] or '(text)'}",
        f"subject   {subject['name']}  weights sha256 {subject['weight_sha256']}",
        f"          source {subject['source']}",
    ]
    if subject["test_accuracy"] is not None:
        lines.append(f"          test accuracy {subject['test_accuracy']:.4f}")
    lines += [
        f"seed      {summary['seed']}   device {summary['device']}   created {summary['created']}"
        + (f"   finished {summary['finished']}" if summary["finished"] else ""),
        "packages  " + ", ".join(f"{k} {v}" for k, v in (summary["packages"] or {}).items()),
    ]
    for region in summary["regions"]:
        chunks = tuple(region["chunks"]) if region["chunks"] else None
        shards = f"shards {tuple(region['shards'])}, " if region["shards"] else ""
        lines.append(f"region    {region['name']}: activity {region['sizes']} {region['dtype']}, chunks {chunks}, {shards}"
                     f"module {region['module_type']} output {region['output_shape']} reduce {region['reduce']}")
        for dim, names in region["coords"].items():
            lines.append(f"          {dim} coords: {', '.join(names)}")
    behaviour = summary["behaviour"]
    if behaviour is not None:
        text = f"behaviour {behaviour['n_output_units']} output units; "
        if not behaviour["n_scored"]:
            text += "no labelled presentations to score"
        else:
            text += f"accuracy {behaviour['accuracy']:.4f} on {behaviour['n_scored']} labelled presentations"
            if len(behaviour["accuracy_per_set"]) > 1:
                text += " (" + ", ".join(f"{k}: {v:.4f}" for k, v in behaviour["accuracy_per_set"].items() if np.isfinite(v)) + ")"
        lines.append(text)
    for analysis in summary["analyses"]:
        what = ", ".join(f"{name}{tuple(dims)}" for name, dims in analysis["dims"].items())
        extra = (f"  rule: {analysis['rule']}, {analysis['n_members']} of {analysis['n_candidates']} units"
                 if analysis["rule"] is not None else "")
        lines.append(f"analysis  {analysis['node']}: {what}{extra}")
    for lesion in summary["lesions"]:
        if not lesion["finished"]:
            lines.append(f"lesions   {lesion['node']}: unfinished (a result being written when the run stopped)")
            continue
        lines.append(
            f"lesions   {lesion['node']}: {lesion['n_lesions']} lesions of {lesion['region']} ({lesion['method']}), evaluated "
            f"on {lesion['n_stimuli']} stimuli; overall accuracy change {lesion['overall_min']:+.2f} to "
            f"{lesion['overall_max']:+.2f} pp; {lesion['n_significant']} (lesion, class) tests with q < 0.05")
    return "\n".join(lines)


def store_summary(path: str | os.PathLike[str], check: bool = False) -> dict[str, Any]:
    """What ``neurorecord info --json`` prints: the facts of :func:`describe_store` as a dict.

    Keys: ``store``, ``status`` (the text line), ``complete``, ``run`` (the run state),
    ``consolidated``, ``format``, ``check`` (what was compared with the manifest), ``protocol``,
    ``subject``, ``seed``, ``device``, ``created``, ``finished``, ``packages``, ``regions`` (one
    entry per region: ``name``, ``sizes``, ``dtype``, ``chunks``, ``shards``, ``coords`` per dim,
    ``module_type``, ``output_shape``, ``reduce``), ``behaviour`` (``n_output_units``,
    ``accuracy``, ``n_scored``, ``accuracy_per_set``; None without it), ``analyses`` (``node``,
    ``variables``, ``dims``, and a population's ``rule``, ``n_members``, ``n_candidates``; region
    by region in protocol order) and ``lesions`` (``node``, ``region``, ``method``,
    ``n_lesions``, ``finished``; when finished ``n_stimuli``, ``overall_min``, ``overall_max``
    (percentage points) and ``n_significant``). Sizes are counts;
    ``accuracy`` is a fraction. A store whose skeleton was never finished has only the first keys.

    Raises
    ------
    StoreError
        ``path`` is not a neurorecord store.
    DamagedStoreError
        A file of a complete store is missing or changed (each one named).

    Examples
    --------
    >>> import json, neurorecord, tempfile
    >>> out = tempfile.mkdtemp() + "/digits"
    >>> _ = neurorecord.run(neurorecord.default_protocol_path(), out, quiet=True)
    >>> summary = json.loads(json.dumps(store_summary(out)))
    >>> summary["complete"], [(r["name"], r["sizes"]["neuroid"]) for r in summary["regions"]]
    (True, [('fc1', 100), ('fc2', 100), ('fc3', 100)])
    """
    from dataclasses import asdict

    path = Path(path)
    state = read_run_state(path)
    if state is None:
        raise not_a_store(path)
    summary: dict[str, Any] = {"store": str(path), "status": state.describe(), "complete": state.complete,
                               "run": asdict(state), "consolidated": is_consolidated(path)}
    if state.stage == "creating":
        return summary
    attrs = root_attrs(path)
    check_format(path, attrs)
    problems = check_files(path, attrs, checksums=check) if state.complete else []
    if problems:
        raise DamagedStoreError(f"{path}: the store is damaged ({len(problems)} problem(s)): " + "; ".join(problems))
    manifest = attrs.get(MANIFEST_ATTR)
    subject = attrs.get("subject", {})
    summary.update({
        "format": attrs.get("neurorecord_format", 1),
        "check": {"compared": ("sizes and CRC-32" if check else "sizes") if state.complete and manifest else "nothing",
                  "n_files": len(manifest or {})},
        "protocol": {"name": attrs.get("protocol_name"), "sha256": attrs.get("protocol_sha256"),
                     "path": attrs.get("protocol_path") or None},
        "subject": {"name": subject.get("name"), "weight_sha256": attrs.get("subject_weight_sha256"),
                    "source": subject.get("source"), "test_accuracy": subject.get("info", {}).get("test_accuracy")},
        **{key: attrs.get(key) for key in ("seed", "device", "created", "finished", "packages")},
    })
    tree = xr.open_datatree(path, engine="zarr", chunks={}, consolidated=is_consolidated(path))
    regions = []
    for name in attrs.get("regions", list(tree.children)):
        ds = tree[name].to_dataset()
        act = ds["activity"]
        shards = act.encoding.get("shards")
        regions.append({
            "name": name, "sizes": dict(act.sizes), "dtype": str(act.dtype),
            "chunks": list(act.encoding.get("chunks") or []), "shards": list(shards) if shards else None,
            "coords": {str(dim): sorted(str(c) for c in ds.coords if ds.coords[c].dims == (dim,)) for dim in act.dims},
            **{key: ds.attrs.get(key) for key in ("module_type", "output_shape", "reduce")},
        })
    summary["regions"] = regions
    summary["behaviour"] = None
    if BEHAVIOUR_NODE in tree.children:
        ds = tree[BEHAVIOUR_NODE].to_dataset(inherit=False)
        correct = ds["correct"].load()  # unwritten rows of an unfinished run read as NaN: not scored
        scored = int(correct.notnull().sum())
        per_set = {}
        if scored and "stimulus_set" in ds.coords:
            per = correct.groupby("stimulus_set").mean()
            per_set = {str(k): float(v) for k, v in zip(per["stimulus_set"].values, per.values)}
        summary["behaviour"] = {"n_output_units": int(ds.sizes["output_unit"]), "n_scored": scored,
                                "accuracy": float(correct.mean()) if scored else None, "accuracy_per_set": per_set}
    analyses = []
    if "analyses" in tree.children:
        order = list(attrs.get("regions", []))
        nodes = [n for n in tree["analyses"].subtree if n.has_data]
        region_of = {n.path: n.path.strip("/").split("/")[1] for n in nodes}  # analyses/<region>/<name>[/...]
        nodes.sort(key=lambda n: (order.index(region_of[n.path]) if region_of[n.path] in order else len(order), n.path))
        for node in nodes:
            ds = node.to_dataset(inherit=False)
            rule = ds.attrs.get("rule")
            analyses.append({"node": node.path.lstrip("/"), "variables": sorted(str(v) for v in ds.data_vars),
                             "dims": {str(k): [str(d) for d in ds[k].dims] for k in sorted(ds.data_vars)},
                             "rule": rule, "n_members": ds.attrs.get("n_members") if rule else None,
                             "n_candidates": ds.attrs.get("n_candidates") if rule else None})
    summary["analyses"] = analyses
    lesions = []
    if "lesions" in tree.children:
        order = [entry.get("name") for entry in (yaml.safe_load(attrs.get("protocol_text", "")) or {}).get("lesions", [])]
        for node in sorted(tree["lesions"].children.values(), key=lambda n: order.index(n.name) if n.name in order else len(order)):
            ds = node.to_dataset(inherit=False)
            finished = state.lesions_done.get(node.name, -1) == -1 and {"delta_accuracy", "q"} <= set(ds.variables)
            entry = {"node": node.path.lstrip("/"), "region": ds.attrs.get("region"), "method": ds.attrs.get("method"),
                     "n_lesions": int(ds.sizes.get("lesion", 0)), "finished": finished}
            if finished:
                overall = ds["delta_accuracy"].sel({"class": "overall"})
                entry.update(n_stimuli=int(ds.sizes["presentation"]), overall_min=float(overall.min()),
                             overall_max=float(overall.max()), n_significant=int((ds["q"] < 0.05).sum()))
            lesions.append(entry)
    summary["lesions"] = lesions
    return summary
