"""Write a store's HTML report into a folder, atomically: a temporary folder renamed at the end."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import matplotlib
import yaml

from ..errors import NeurorecordError
from ..store import LESIONS_NODE, open_recording
from . import _html
from ._assets import Assets
from .analyses import region_analyses
from .lesions import lesion_section, study_section
from .overview import behaviour_section, protocol_section, provenance_section, regions_section, stimuli_section

__all__ = ["ReportError", "default_report_dir", "write_report"]

#: Matplotlib settings of the report's figures.
RC = {"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10}


class ReportError(NeurorecordError, ValueError):
    """The report cannot be written where asked: the message names the folder and why."""


def default_report_dir(store: str | os.PathLike[str]) -> Path:
    """Where a store's report goes by default: the folder ``<STORE>.report`` next to the store.

    Not inside the store: the store folder holds only what the run wrote (``neurorecord run
    --overwrite`` refuses a store folder that holds anything else).

    >>> default_report_dir("runs/digits").name
    'digits.report'
    """
    path = Path(store).absolute()
    return path.parent / f"{path.name}.report"


def _check_out(store: Path, out: Path) -> None:
    resolved, inside = out.resolve(), store.resolve()
    if resolved == inside or inside in resolved.parents:
        raise ReportError(f"--out {out}: is inside the store {store}; the store folder holds only what the run wrote. "
                          f"Choose a folder outside it, e.g. {default_report_dir(store)}")
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: expected a folder for the report, found a file")
    if out.is_dir() and any(out.iterdir()) and not _html.is_report(out):
        raise ReportError(f"--out {out}: the folder is not empty and holds no neurorecord report (no index.html written "
                          "by `neurorecord report`); it is never replaced: choose another folder")


def write_report(store: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                 allow_incomplete: bool = False) -> Path:
    """Write the HTML report of a recording store; return the path of its ``index.html``.

    The report is a folder: ``index.html`` (no script, no network access: the style sheet is
    inline), the figures as PNG files in ``figures/`` and every table as a CSV file in
    ``tables/``. It holds the protocol as run, the provenance, the subject and its regions
    with their shapes, the behaviour (accuracy) where recorded, the contact sheet of the
    stimulus sets, then a section per analysis, lesion experiment and study, each with its
    figures and tables. Large regions give a summary and their best units, not a panel per
    unit.

    The report is written into a temporary folder next to ``out`` and renamed to ``out``
    when it is finished, so a report that failed or was killed never looks complete; a
    report already in ``out`` is replaced. Writing it again gives the same files.

    Parameters
    ----------
    store : str or path
        A recording store (the folder of ``neurorecord run --out``).
    out : str or path, optional
        The report's folder. Default :func:`default_report_dir` (``<STORE>.report`` next to the
        store). It must be missing, empty, or hold an earlier report; it may not be inside the
        store.
    allow_incomplete : bool, default False
        Report on a store whose run has not been marked complete (the run's own reporting
        stage, once every result is written).

    Returns
    -------
    pathlib.Path
        ``out/index.html``.

    Raises
    ------
    StoreError
        ``store`` is not a neurorecord store (the message names the path).
    IncompleteRecordingError
        The run did not finish (and ``allow_incomplete`` is False).
    ReportError
        ``out`` is a file, inside the store, or a non-empty folder that is not a report.

    Examples
    --------
    >>> import neurorecord, tempfile
    >>> store = tempfile.mkdtemp() + "/digits"
    >>> _ = neurorecord.run(neurorecord.default_protocol_path(), store, quiet=True)
    >>> index = write_report(store)
    >>> index.parent.name, index.name, (index.parent / "tables" / "analyses-fc2-csi-neuroid.csv").is_file()
    ('digits.report', 'index.html', True)
    """
    store = Path(store)
    tree = open_recording(store, allow_incomplete=allow_incomplete)
    out = default_report_dir(store) if out is None else Path(out)
    _check_out(store, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # left by a killed report
        shutil.rmtree(stale, ignore_errors=True)
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        with matplotlib.rc_context(RC):
            _write(tree, store, partial)
        if out.exists():
            old = out.parent / f".{out.name}.partial-old-{uuid.uuid4().hex[:8]}"
            out.rename(old)
            partial.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out / "index.html"


def _write(tree, store: Path, folder: Path) -> None:
    folder.mkdir()
    assets = Assets(folder)
    attrs = dict(tree.attrs)
    sections = [protocol_section(attrs), provenance_section(attrs), regions_section(tree, attrs, assets)]
    behaviour = behaviour_section(tree, assets)
    if behaviour is not None:
        sections.append(behaviour)
    sections.append(stimuli_section(attrs, assets))
    studies = []
    written = yaml.safe_load(attrs.get("protocol_text", "")) or {}
    order = [e.get("name") for key in ("analyses", "study") for e in written.get(key, []) or []]
    if "analyses" in tree.children:
        regions = list(attrs.get("regions", []))
        analysed = sorted(tree["analyses"].children, key=lambda r: regions.index(r) if r in regions else len(regions))
        for region in analysed:
            found, names = region_analyses(assets, tree, region, order)
            if found:
                top = _html.Section(f"Analyses of {region}", f"analyses-{_html.slug(region)}", children=found)
                sections.append(top)
            studies += [(region, name) for name in names]
    if LESIONS_NODE in tree.children:
        lesions = [e.get("name") for e in written.get("lesions", []) or []]
        names = sorted(tree[LESIONS_NODE].children, key=lambda n: (lesions.index(n) if n in lesions else len(lesions), n))
        study_names = {name for _, name in studies}
        entries = [lesion_section(assets, f"lesions/{n}", tree[f"{LESIONS_NODE}/{n}"].to_dataset(inherit=False))
                   for n in names if n not in study_names]
        if entries:
            sections.append(_html.Section("Lesion experiments", "lesions", children=entries))
    for region, name in studies:
        study = study_section(assets, tree, region, name)
        if LESIONS_NODE in tree.children and name in tree[LESIONS_NODE].children:
            study.children.append(lesion_section(assets, f"lesions/{name}", tree[f"{LESIONS_NODE}/{name}"].to_dataset(inherit=False)))
        sections.append(study)
    sections[0].open = True
    title = f"neurorecord report: {attrs.get('protocol_name', store.name)}"
    intro = (f"Store {store.absolute()}; subject {(attrs.get('subject') or {}).get('name')}; run finished "
             f"{attrs.get('finished', 'not yet')}. Every figure is drawn from the store; every table is also a CSV file "
             "in tables/.")
    (folder / "index.html").write_text(_html.page(title, intro, sections), encoding="utf-8")
