"""The report's first sections: protocol, provenance, subject and regions, behaviour, stimuli."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import NeurorecordError
from ..store import BEHAVIOUR_NODE
from . import _html
from ._assets import Assets
from ._html import Section

#: Most thumbnails per stimulus set on the contact sheet.
SHEET_PER_SET = 32


def protocol_section(attrs: dict[str, Any]) -> Section:
    section = Section("Protocol", "protocol")
    where = attrs.get("protocol_path") or "(no file: given as text)"
    section.add(_html.paragraph(f"The protocol as run: {attrs.get('protocol_name')!s}, read from {where}, "
                                f"sha256 {attrs.get('protocol_sha256')}."))
    section.add(_html.preformatted(str(attrs.get("protocol_text", ""))))
    return section


def provenance_section(attrs: dict[str, Any]) -> Section:
    section = Section("Provenance", "provenance")
    subject = attrs.get("subject", {}) or {}
    info = subject.get("info", {}) or {}
    rows = [
        ("subject", subject.get("name")),
        ("subject source", ", ".join(f"{k}: {v}" for k, v in (subject.get("source") or {}).items())),
        ("subject weights sha256", attrs.get("subject_weight_sha256")),
        ("subject test accuracy (from training)", info.get("test_accuracy", "not recorded")),
        ("seed", attrs.get("seed")),
        ("device", attrs.get("device")),
        ("torch threads", attrs.get("torch_threads")),
        ("created", attrs.get("created")),
        ("finished", attrs.get("finished")),
        ("python", attrs.get("python")),
        ("platform", attrs.get("platform")),
        ("store format", attrs.get("neurorecord_format", 1)),
    ]
    section.add(_html.key_values([(k, "" if v is None else v) for k, v in rows]))
    packages = attrs.get("packages") or {}
    section.add(_html.paragraph("Package versions of the run:"))
    section.add(_html.key_values(sorted(packages.items())))
    return section


def regions_section(tree: xr.DataTree, attrs: dict[str, Any], assets: Assets) -> Section:
    section = Section("Subject and regions", "regions")
    rows = []
    for name in attrs.get("regions", []):
        if name not in tree.children:
            continue
        ds = tree[name].to_dataset(inherit=False)
        act = ds["activity"]
        rows.append({"region": name, "dims": " x ".join(map(str, act.dims)),
                     "shape": " x ".join(str(act.sizes[d]) for d in act.dims), "dtype": str(act.dtype),
                     "module": ds.attrs.get("module_type", ""), "output shape": str(ds.attrs.get("output_shape", "")),
                     "reduce": ds.attrs.get("reduce", ""), "activity units": act.attrs.get("units", ""),
                     "neuroid coords": ", ".join(sorted(str(c) for c in ds.coords if ds[c].dims == ("neuroid",)))})
    subject = (attrs.get("subject") or {}).get("name")
    section.add(_html.paragraph(f"Subject {subject}: {len(rows)} recorded region(s), each a presentation x neuroid "
                                "array of unit activity (float32) in the store."))
    section.add(assets.table("regions", pd.DataFrame(rows), "Recorded regions"))
    return section


def behaviour_section(tree: xr.DataTree, assets: Assets) -> Section | None:
    """Accuracy overall and per class where the subject's output was recorded; None without it."""
    if BEHAVIOUR_NODE not in tree.children:
        return None
    section = Section("Behaviour", "behaviour")
    ds = tree[BEHAVIOUR_NODE].to_dataset(inherit=False)
    correct = ds["correct"].load()
    scored = correct.notnull()
    if not bool(scored.any()):
        section.add(_html.paragraph(f"The subject's output ({ds.sizes['output_unit']} units) was recorded, but no "
                                    "presentation has a numeric label to score it against."))
        return section
    section.add(_html.paragraph(f"Accuracy {float(correct.mean()):.4f} on {int(scored.sum())} labelled presentations "
                                f"(the subject's argmax output against the stimulus label)."))
    frames = []
    for by in ("stimulus_set", "label"):
        if by in correct.coords and len(np.unique(correct[by].values.astype(str))) > 1:
            grouped = correct.where(scored, drop=True).groupby(by)
            frames.append(pd.DataFrame({"grouping": by, "condition": [str(v) for v in grouped.mean()[by].values],
                                        "accuracy": grouped.mean().values, "n_scored": grouped.count().values}))
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        section.add(assets.table("behaviour-accuracy", frame, "Accuracy (fraction correct) per stimulus set and per label"))
    return section


def stimuli_section(attrs: dict[str, Any], assets: Assets) -> Section:
    """The contact sheet of the protocol's stimulus sets, rebuilt from the protocol text."""
    from ..protocol.load import protocol_from_text
    from ..stimuli import build_stimulus_sets
    from ..plot.sheet import contact_sheet

    section = Section("Stimuli", "stimuli")
    described = attrs.get("stimulus_sets", [])
    if described:
        section.add(_html.paragraph("Stimulus sets: " + "; ".join(_describe(s) for s in described) + "."))
    path = attrs.get("protocol_path") or None
    try:
        protocol = protocol_from_text(str(attrs.get("protocol_text", "")), path=Path(path) if path else None)
        sets = build_stimulus_sets(protocol)
    except NeurorecordError as exc:  # e.g. an image folder moved since the run
        section.add(_html.paragraph(f"The contact sheet is not drawn: the stimulus sets could not be rebuilt from the "
                                    f"protocol ({exc}).", note=True))
        return section
    caption = (f"Contact sheet: up to {SHEET_PER_SET} stimuli of each set, sampled evenly, as the subject receives them "
               "(after preprocessing); one grey scale per set, its range in the set's title.")
    section.add(assets.figure("stimuli-contact-sheet", lambda: contact_sheet(sets, max_per_set=SHEET_PER_SET), caption,
                              "contact sheet of the stimulus sets"))
    return section


def _describe(described: Any) -> str:
    if isinstance(described, dict):
        name = described.get("name", "?")
        rest = ", ".join(f"{k} {v}" for k, v in described.items() if k not in ("name", "parameters") and not isinstance(v, (dict, list)))
        return f"{name} ({rest})" if rest else str(name)
    return str(described)
