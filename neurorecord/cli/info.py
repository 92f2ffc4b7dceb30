"""``neurorecord info``: a plain-text description of a store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from ..errors import DamagedStoreError
from ..store import BEHAVIOUR_NODE, MANIFEST_ATTR, check_files, check_format, not_a_store, read_run_state, root_attrs

__all__ = ["describe_store"]


def describe_store(path: str | os.PathLike[str], check: bool = False) -> str:
    """Regions, shapes, coordinates, provenance and completeness of a store, as text.

    With ``check``, every file of a complete store is read and compared with the manifest
    written at completion; a damaged store raises :class:`~neurorecord.errors.DamagedStoreError`
    naming each missing or changed file.
    """
    path = Path(path)
    state = read_run_state(path)
    if state is None:
        raise not_a_store(path)
    lines = [f"store     {path}", f"status    {state.describe()}"]
    if state.stage == "creating":
        return "\n".join(lines)
    attrs = root_attrs(path)
    check_format(path, attrs)
    problems = check_files(path, attrs, checksums=check) if state.complete else []
    if problems:
        raise DamagedStoreError(f"{path}: the store is damaged ({len(problems)} problem(s)): " + "; ".join(problems))
    manifest = attrs.get(MANIFEST_ATTR)
    if state.complete:
        how = "sizes and CRC-32 of" if check else "sizes of"
        lines.append(f"check     {how} all {len(manifest)} files match the manifest" if manifest
                     else "check     no manifest (store format 1): files cannot be checked")
    subject = attrs.get("subject", {})
    lines += [
        f"protocol  {attrs.get('protocol_name')}  sha256 {attrs.get('protocol_sha256')}",
        f"          from {attrs.get('protocol_path') or '(text)'}",
        f"subject   {subject.get('name')}  weights sha256 {attrs.get('subject_weight_sha256')}",
        f"          source {subject.get('source')}",
    ]
    if "test_accuracy" in subject.get("info", {}):
        lines.append(f"          test accuracy {subject['info']['test_accuracy']:.4f}")
    lines += [
        f"seed      {attrs.get('seed')}   device {attrs.get('device')}   created {attrs.get('created')}"
        + (f"   finished {attrs['finished']}" if attrs.get("finished") else ""),
        "packages  " + ", ".join(f"{k} {v}" for k, v in attrs.get("packages", {}).items()),
    ]
    tree = xr.open_datatree(path, engine="zarr", chunks={}, consolidated=False)
    for name in attrs.get("regions", list(tree.children)):
        ds = tree[name].to_dataset()
        act = ds["activity"]
        chunks = act.encoding.get("chunks") or act.encoding.get("preferred_chunks")
        lines.append(f"region    {name}: activity {dict(act.sizes)} {act.dtype}, chunks {chunks}, "
                     f"module {ds.attrs.get('module_type')} output {ds.attrs.get('output_shape')} reduce {ds.attrs.get('reduce')}")
        for dim in act.dims:
            names = sorted(c for c in ds.coords if ds.coords[c].dims == (dim,))
            lines.append(f"          {dim} coords: {', '.join(names)}")
    if BEHAVIOUR_NODE in tree.children:
        lines.append(_behaviour_line(tree[BEHAVIOUR_NODE].to_dataset(inherit=False)))
    if "analyses" in tree.children:
        regions = list(attrs.get("regions", []))
        nodes = [n for n in tree["analyses"].subtree if n.has_data]
        region_of = {n.path: n.path.strip("/").split("/")[1] for n in nodes}  # analyses/<region>/<name>[/...]
        nodes.sort(key=lambda n: (regions.index(region_of[n.path]) if region_of[n.path] in regions else len(regions), n.path))
        for node in nodes:
            ds = node.to_dataset(inherit=False)
            what = ", ".join(f"{k}{tuple(ds[k].dims)}" for k in sorted(ds.data_vars))
            extra = f"  rule: {ds.attrs['rule']}, {ds.attrs.get('n_members')} of {ds.attrs.get('n_candidates')} units" if "rule" in ds.attrs else ""
            lines.append(f"analysis  {node.path.lstrip('/')}: {what}{extra}")
    if "lesions" in tree.children:
        order = [entry.get("name") for entry in (yaml.safe_load(attrs.get("protocol_text", "")) or {}).get("lesions", [])]
        nodes = sorted(tree["lesions"].children.values(), key=lambda n: order.index(n.name) if n.name in order else len(order))
        for node in nodes:
            ds = node.to_dataset(inherit=False)
            if state.lesions_done.get(node.name, -1) != -1 or not {"delta_accuracy", "q"} <= set(ds.variables):
                lines.append(f"lesions   {node.path.lstrip('/')}: unfinished (a result being written when the run stopped)")
                continue
            overall = ds["delta_accuracy"].sel({"class": "overall"})
            n_sig = int((ds["q"] < 0.05).sum())
            lines.append(
                f"lesions   {node.path.lstrip('/')}: {ds.sizes['lesion']} lesions of {ds.attrs.get('region')} "
                f"({ds.attrs.get('method')}), evaluated on {ds.sizes['presentation']} stimuli; overall accuracy change "
                f"{float(overall.min()):+.2f} to {float(overall.max()):+.2f} pp; {n_sig} (lesion, class) tests with q < 0.05"
            )
    return "\n".join(lines)


def _behaviour_line(ds: xr.Dataset) -> str:
    """``behaviour``: output size and accuracy, overall and per stimulus set, on the presentations
    that have a label (read from the store; unwritten presentations of an unfinished run skipped)."""
    correct = ds["correct"].load()  # unwritten rows of an unfinished run read as NaN: not scored
    text = f"behaviour {ds.sizes['output_unit']} output units; "
    scored = correct.notnull()
    if not bool(scored.any()):
        return text + "no labelled presentations to score"
    text += f"accuracy {float(correct.mean()):.4f} on {int(scored.sum())} labelled presentations"
    if "stimulus_set" in ds.coords and len(set(ds["stimulus_set"].values.tolist())) > 1:
        per = correct.groupby("stimulus_set").mean()
        text += " (" + ", ".join(f"{k}: {float(v):.4f}" for k, v in zip(per["stimulus_set"].values, per.values) if np.isfinite(v)) + ")"
    return text
