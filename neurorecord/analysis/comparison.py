"""A recorded region against a second recording: the ``kind: compare`` entries of a protocol.

The second recording (the *reference*: a biological one, or another model's) is a neurorecord
store's region or an NWB file's units (:func:`read_reference`). :func:`compare_with_reference`
restricts both recordings to the conditions (values of ``by``) they share and runs the
comparisons of :mod:`neurorecord.compare` on them: the similarity of the two RDMs with a
bootstrap interval over conditions and the reference's noise ceiling, linear CKA, and the
cross-validated ridge predictivity of every reference unit from the region's units with its
split-half reliability ceiling. The result is one Dataset per entry and region, stored as
``analyses/<region>/<name>`` like every other analysis. :func:`check_comparison` checks an
entry against the reference before anything is recorded.

Torch-free, as every analysis: the reference is read with :func:`neurorecord.open_recording` or
:func:`neurorecord.interop.from_nwb`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from .._validation import check_choice, check_scalar, check_seed
from ..errors import AnalysisError, InteropError, StoreError, did_you_mean
from ..protocol.schema import COMPARE_MEASURES, ComparisonAnalysis, ComparisonReference

__all__ = ["Reference", "read_reference", "shared_conditions", "compare_with_reference", "compare_entry",
           "check_comparison", "MEASURES", "RDM_METHODS", "COMPARE_METHODS"]

#: What :func:`compare_with_reference` can compute.
MEASURES = COMPARE_MEASURES
#: Dissimilarities of the RDMs (those of :func:`neurorecord.compare.rdm` that need no repetitions).
RDM_METHODS = ("correlation", "euclidean")
#: Comparisons of two RDMs (those of :func:`neurorecord.compare.compare_rdms`).
COMPARE_METHODS = ("spearman", "tau_a", "cosine", "pearson")


@dataclass
class Reference:
    """A reference recording: its ``activity`` (presentation x neuroid [x time_bin]) and
    ``provenance`` (the attributes a result records: path, kind, region, hashes)."""

    activity: xr.DataArray
    provenance: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _text(levels: np.ndarray, n: int = 5) -> str:
    shown = [f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in levels[:n]]
    return ", ".join(shown) + (", ..." if len(levels) > n else "")


def read_reference(reference: ComparisonReference, folder: str | os.PathLike[str] | None = None,
                   where: str = "reference", loc: tuple[str | int, ...] = ("reference",)) -> Reference:
    """Open the reference recording of a ``kind: compare`` entry.

    Parameters
    ----------
    reference : neurorecord.protocol.schema.ComparisonReference
        The entry's ``reference`` mapping: ``store`` + ``region``, or ``nwb`` (+ ``region``,
        ``window``, ``align_to``, ``stimulus_key``).
    folder : path-like, optional
        Folder relative paths resolve against (the protocol's); default: the working directory.
    where, loc
        The protocol field the mapping is (``analyses[0].reference``) and its key path, for
        messages and for the ``file:line:col`` the session adds.

    Returns
    -------
    Reference
        ``activity``: a store region's activity (dask-backed; with ``window``, the time bins
        inside it), or the NWB file's spike counts in ``window`` (its binned activity for a file
        without spike times), of the units of ``region``. ``provenance``: ``reference`` (the
        resolved path), ``reference_kind``, ``reference_region`` and, for a store, its
        ``protocol_name``, ``protocol_sha256``, ``subject_weight_sha256`` and ``created``; for
        an NWB file, its ``sha256`` and ``identifier``.

    Raises
    ------
    neurorecord.errors.AnalysisError
        With ``loc`` the field at fault: a store that does not exist or is incomplete or damaged
        (``store``), a region it does not have (``region``: the regions listed), an NWB file that
        cannot be read (``nwb``), a ``window`` that selects no time bin.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> from neurorecord.interop import to_nwb
    >>> x = xr.DataArray(np.arange(6, dtype=np.float32).reshape(3, 2), dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", ["a", "b", "c"]), "neuroid_id": ("neuroid", ["V1.0", "V1.1"]),
    ...             "region": ("neuroid", ["V1", "V1"])})
    >>> path = to_nwb(x, tempfile.mkdtemp() + "/v1.nwb", spikes=False)
    >>> ref = read_reference(ComparisonReference(nwb=str(path), region="V1"))
    >>> ref.activity.sizes["neuroid"], ref.provenance["reference_kind"]
    (2, 'nwb')
    """
    base = Path(folder) if folder is not None else Path.cwd()
    if reference.store is not None:
        path = Path(reference.store).expanduser()
        path = path if path.is_absolute() else base / path
        return _read_store(reference, path, where, loc)
    path = Path(str(reference.nwb)).expanduser()
    path = path if path.is_absolute() else base / path
    return _read_nwb(reference, path, where, loc)


def _read_store(reference: ComparisonReference, path: Path, where: str, loc: tuple[str | int, ...]) -> Reference:
    from ..store import open_recording
    from .runner import select_time_window

    try:
        tree = open_recording(path)
    except StoreError as exc:
        raise AnalysisError(f"{where}.store: expected a complete neurorecord store (the --out folder of neurorecord run), "
                            f"found {exc}", loc=(*loc, "store")) from None
    regions = [str(r) for r in tree.attrs.get("regions", [])]
    if reference.region not in regions:
        raise AnalysisError(f"{where}.region: {reference.region!r} is not a region of the reference store {path}"
                            f"{did_you_mean(str(reference.region), regions)}; regions: {', '.join(regions)}",
                            loc=(*loc, "region"))
    activity = tree[str(reference.region)]["activity"]
    if reference.window is not None:
        if "time_bin" not in activity.dims:
            raise AnalysisError(f"{where}.window: expected a time-resolved region (time_bin), found region "
                                f"{reference.region!r} of {path} without time bins; drop the window", loc=(*loc, "window"))
        try:
            activity = select_time_window(activity, tuple(reference.window))
        except AnalysisError as exc:
            raise AnalysisError(f"{where}.window: {exc}", loc=(*loc, "window")) from None
    attrs = tree.attrs
    provenance = {"reference": str(path), "reference_kind": "store", "reference_region": str(reference.region)}
    for key in ("protocol_name", "protocol_sha256", "subject_weight_sha256", "created"):
        if key in attrs:
            provenance[f"reference_{key}"] = attrs[key]
    return Reference(activity, provenance)


def _read_nwb(reference: ComparisonReference, path: Path, where: str, loc: tuple[str | int, ...]) -> Reference:
    from ..interop import from_nwb

    if not path.is_file():
        found = "a folder" if path.is_dir() else "no such file"
        raise AnalysisError(f"{where}.nwb: expected an NWB file, found {found}: {path}", loc=(*loc, "nwb"))
    window = tuple(reference.window) if reference.window is not None else None
    try:
        ds = from_nwb(path, window=window, align_to=reference.align_to, stimulus_key=reference.stimulus_key)
    except InteropError as exc:
        raise AnalysisError(f"{where}.nwb: cannot read {path}: {exc}", loc=(*loc, "nwb")) from None
    except ImportError as exc:
        raise AnalysisError(f"{where}.nwb: {exc}", loc=(*loc, "nwb")) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:  # not HDF5, not NWB
        raise AnalysisError(f"{where}.nwb: expected an NWB file, found {path}, which pynwb cannot read "
                            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})",
                            loc=(*loc, "nwb")) from None
    activity = ds["activity"]
    if reference.region is not None:
        names = np.asarray(activity["region"].values, dtype=object).astype(str)
        if reference.region not in names:
            valid = sorted(set(names))
            raise AnalysisError(f"{where}.region: no unit of {path} is in region {reference.region!r}"
                                f"{did_you_mean(reference.region, valid)}; regions: {', '.join(valid)}",
                                loc=(*loc, "region"))
        activity = activity.isel(neuroid=np.flatnonzero(names == reference.region))
    provenance = {"reference": str(path), "reference_kind": "nwb", "reference_region": reference.region or "all",
                  "reference_sha256": _sha256(path), "reference_identifier": ds.attrs.get("nwb_identifier", ""),
                  "reference_window_ms": [ds.attrs["window_start_ms"], ds.attrs["window_stop_ms"]]}
    return Reference(activity, provenance)


def _keys(values: Any) -> np.ndarray:
    values = np.asarray(values)
    return values if values.dtype.kind in "biuf" else values.astype(object).astype(str)


def shared_conditions(model_values: Any, reference_values: Any, by: str) -> np.ndarray:
    """The sorted values of ``by`` found in both recordings (at least 3).

    ``model_values`` and ``reference_values`` are the ``by`` coordinate of each recording's
    presentations; both numbers or both text (compared as text).

    >>> shared_conditions([0, 1, 2, 3, 3], [1, 2, 3, 4], "label")
    array([1, 2, 3])
    """
    model, reference = np.asarray(model_values), np.asarray(reference_values)
    kinds = ["numbers" if v.dtype.kind in "biuf" else "text" for v in (model, reference)]
    if kinds[0] != kinds[1]:
        raise AnalysisError(f"by: expected {by!r} to hold the same kind of values in both recordings, found "
                            f"{kinds[0]} in the recording ({_text(np.unique(_keys(model)))}) and {kinds[1]} in the "
                            f"reference ({_text(np.unique(_keys(reference)))})")
    ours, theirs = np.unique(_keys(model)), np.unique(_keys(reference))
    shared = np.intersect1d(ours, theirs)
    if len(shared) < 3:
        raise AnalysisError(f"by: expected at least 3 values of {by!r} shared by the recording and the reference "
                            f"(conditions to compare), found {len(shared)}; the recording has {len(ours)} "
                            f"({_text(ours)}), the reference {len(theirs)} ({_text(theirs)})")
    return shared


def _restrict(activity: xr.DataArray, by: str, shared: np.ndarray) -> xr.DataArray:
    keep = np.isin(_keys(activity[by].values), shared)
    return activity if keep.all() else activity.isel(presentation=np.flatnonzero(keep))


def _measures(measures: Sequence[str]) -> list[str]:
    if isinstance(measures, str) or not len(measures):
        raise AnalysisError(f"measures: expected a non-empty list of {', '.join(MEASURES)}, found {measures!r}")
    chosen = [check_choice("measures", m, MEASURES, error=AnalysisError) for m in measures]
    twice = [m for i, m in enumerate(chosen) if m in chosen[:i]]
    if twice:
        raise AnalysisError(f"measures: expected each measure once, found {twice[0]!r} twice")
    return chosen


def compare_with_reference(activity: xr.DataArray, reference: xr.DataArray, by: str = "stimulus_id", *,
                           measures: Sequence[str] = MEASURES, rdm_method: str = "correlation",
                           compare_method: str = "spearman", n_boot: int = 1000, ci: float = 0.95,
                           ceiling: bool = True, split: str = "repetition", cka_debiased: bool = False,
                           n_folds: int = 10, seed: int = 0) -> xr.Dataset:
    """Compare a recording with a reference recording over the conditions they share.

    Both recordings are restricted to the values of ``by`` present in both; then
    :func:`~neurorecord.compare.rdm`, :func:`~neurorecord.compare.compare_rdms`,
    :func:`~neurorecord.compare.split_rdms`, :func:`~neurorecord.compare.rdm_noise_ceiling`,
    :func:`~neurorecord.compare.cka` and :func:`~neurorecord.compare.linear_predictivity` run on
    them as documented in docs/compare.md (the region's units are the regressors, the
    reference's the targets).

    Parameters
    ----------
    activity : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        The recorded region (time bins are averaged). May be dask-backed.
    reference : xarray.DataArray, dims (presentation, neuroid[, time_bin])
        The reference (a biological recording, another model's region).
    by : str, default "stimulus_id"
        A presentation coordinate of both; its shared values are the conditions (at least 3).
    measures : sequence of {"rdm", "cka", "predictivity"}, default all three
        What to compute.
    rdm_method : {"correlation", "euclidean"}, default "correlation"
        The RDMs' dissimilarity.
    compare_method : {"spearman", "tau_a", "cosine", "pearson"}, default "spearman"
        The comparison of the RDMs (and of the noise ceiling).
    n_boot : int, default 1000
        Bootstrap resamples of the conditions for the interval of the RDM similarity (0: none).
    ci : float, default 0.95
        Confidence level of that interval.
    ceiling : bool, default True
        The reference's noise ceilings: of the RDM similarity, from one RDM per value of
        ``split``; of each reference unit's predictivity, its split-half reliability (needs 2
        presentations of every condition).
    split : str, default "repetition"
        The reference's presentation coordinate whose values are independent parts.
    cka_debiased : bool, default False
        The debiased CKA (at least 4 conditions).
    n_folds : int, default 10
        Folds over conditions of the predictivity (at least 3 conditions each).
    seed : int, default 0
        Seed of the bootstrap, the folds and the split halves.

    Returns
    -------
    xarray.Dataset
        With ``"rdm"``: ``rdm_model`` and ``rdm_reference`` (dims ``condition``, ``condition_``
        labelled with the shared values of ``by``; coords ``n_model`` and ``n_reference``,
        presentations per condition, and the recording's coordinates constant within a
        condition), ``rdm_similarity`` (scalar) and with ``n_boot``: ``rdm_similarity_ci_low``,
        ``rdm_similarity_ci_high``, ``rdm_similarity_boot_std``, ``rdm_similarity_bootstrap``
        (dim ``boot``); with ``ceiling``: ``rdm_ceiling_lower``, ``rdm_ceiling_upper`` and
        ``rdm_similarity_to_splits`` (the model RDM's mean similarity to each part's RDM, the
        value the ceiling bounds), each also ``*_per_split`` (dim ``split``). With ``"cka"``:
        ``cka`` (scalar). With ``"predictivity"`` (dim ``neuroid``: the reference's units, with
        its neuroid coordinates): ``predictivity_r``, ``predictivity_r_fold`` and
        ``predictivity_alpha`` (fold, neuroid), ``predictivity_median_r``, and with ``ceiling``:
        ``predictivity_ceiling`` (split-half reliability), ``predictivity_r_ceiled``,
        ``predictivity_median_r_ceiled``. Every variable has ``long_name`` and ``units`` and
        the attributes of the function that made it. ``attrs``: ``analysis``, ``by``,
        ``measures``, ``seed``, the methods and counts (``n_conditions`` shared,
        ``n_conditions_model``, ``n_conditions_reference``, ``n_units_model``,
        ``n_units_reference``).

    Raises
    ------
    neurorecord.errors.AnalysisError
        A bad argument; ``by`` not a coordinate of both, of different kinds (numbers, text) or
        with fewer than 3 shared values; whatever the comparison functions refuse (a reference
        without repetitions for a ceiling, too few conditions for ``n_folds``, NaN in an RDM).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ids = np.array([f"s{i:02d}" for i in range(30)])
    >>> model = xr.DataArray(rng.normal(size=(30, 8)), dims=("presentation", "neuroid"),
    ...                      coords={"stimulus_id": ("presentation", ids)})
    >>> weights = rng.normal(size=(8, 20))                     # 20 "V1" units, linear in the model's 8
    >>> trials = np.concatenate([model.values @ weights + rng.normal(scale=0.5, size=(30, 20)) for _ in range(2)])
    >>> bio = xr.DataArray(trials, dims=("presentation", "neuroid"),
    ...     coords={"stimulus_id": ("presentation", np.tile(ids, 2)), "repetition": ("presentation", np.repeat([0, 1], 30)),
    ...             "neuroid_id": ("neuroid", [f"v1.{i}" for i in range(20)])})
    >>> result = compare_with_reference(model, bio, n_boot=50, n_folds=3)
    >>> result["rdm_model"].dims, result["predictivity_r"].dims
    (('condition', 'condition_'), ('neuroid',))
    >>> bool(result["rdm_similarity"] > 0.5), bool(result["cka"] > 0.5), bool(result["predictivity_median_r"] > 0.8)
    (True, True, True)
    """
    from ..compare import cka, linear_predictivity

    chosen = _measures(measures)
    rdm_method = check_choice("rdm_method", rdm_method, RDM_METHODS, error=AnalysisError)
    compare_method = check_choice("compare_method", compare_method, COMPARE_METHODS, error=AnalysisError)
    n_boot = check_scalar("n_boot", n_boot, int, low=0, error=AnalysisError)
    n_folds = check_scalar("n_folds", n_folds, int, low=2, error=AnalysisError)
    seed = check_seed("seed", seed, error=AnalysisError)
    for name, flag in (("ceiling", ceiling), ("cka_debiased", cka_debiased)):
        if not isinstance(flag, (bool, np.bool_)):
            raise AnalysisError(f"{name}: expected True or False, found {flag!r}")
    for name, recording in (("activity", activity), ("reference", reference)):
        if not isinstance(recording, xr.DataArray) or by not in recording.coords:
            found = type(recording).__name__ if not isinstance(recording, xr.DataArray) else "no such coordinate"
            raise AnalysisError(f"{name}: expected a DataArray with the presentation coordinate {by!r}, found {found}")
    shared = shared_conditions(activity[by].values, reference[by].values, by)
    model, ref = _restrict(activity, by, shared), _restrict(reference, by, shared)

    variables: dict[str, xr.DataArray] = {}
    if "rdm" in chosen:
        variables.update(_rdm_variables(model, ref, by, rdm_method, compare_method, n_boot, ci, ceiling, split, seed))
    if "cka" in chosen:
        variables["cka"] = cka(model, ref, by, debiased=bool(cka_debiased))
    if "predictivity" in chosen:
        result = linear_predictivity(model, ref, by, n_folds=n_folds, seed=seed, ceiling=bool(ceiling))
        for name, var in result.data_vars.items():
            var = var.copy()
            var.attrs = dict(result.attrs) if name == "r" else {"long_name": _PREDICTIVITY_NAMES[name], "units": "1"}
            variables[f"predictivity_{name}"] = var
        for name in ("median_r", "median_r_ceiled"):
            if name in result.attrs:
                variables[f"predictivity_{name}"] = xr.DataArray(
                    result.attrs[name], attrs={"long_name": f"median over reference units of {name[7:]}", "units": "1"})
    n_units = [int(a.sizes["neuroid"]) for a in (model, ref)]
    attrs = {"analysis": "compare_with_reference", "by": by, "measures": chosen, "seed": seed,
             "rdm_method": rdm_method, "compare_method": compare_method, "n_boot": n_boot, "ci": ci,
             "ceiling": bool(ceiling), "split": split, "cka_debiased": bool(cka_debiased), "n_folds": n_folds,
             "n_conditions": len(shared), "n_conditions_model": len(np.unique(_keys(activity[by].values))),
             "n_conditions_reference": len(np.unique(_keys(reference[by].values))),
             "n_units_model": n_units[0], "n_units_reference": n_units[1],
             "reference_units": str(reference.attrs.get("units", ""))}
    return xr.Dataset(variables, attrs=attrs)


_PREDICTIVITY_NAMES = {"r_fold": "held-out Pearson r per fold", "alpha": "ridge penalty chosen",
                       "ceiling": "split-half reliability (Spearman-Brown corrected)",
                       "r_ceiled": "held-out Pearson r / split-half reliability"}


def _rdm_variables(model: xr.DataArray, ref: xr.DataArray, by: str, rdm_method: str, compare_method: str, n_boot: int,
                   ci: float, ceiling: bool, split: str, seed: int) -> dict[str, xr.DataArray]:
    """The RDM part of :func:`compare_with_reference`: both RDMs, their similarity, the noise ceiling."""
    from ..compare import compare_rdms, rdm, rdm_noise_ceiling, split_rdms

    d_model, d_ref = rdm(model, by, rdm_method), rdm(ref, by, rdm_method)
    similarity = compare_rdms(d_model, d_ref, compare_method, n_boot=n_boot, ci=ci, seed=seed)
    levels = d_model["condition"].values
    labels = {"condition": levels, "condition_": levels, "n_model": ("condition", d_model["n"].values),
              "n_reference": ("condition", d_ref["n"].sel(condition=levels).values)}
    d_model = d_model.drop_vars("n").assign_coords(labels)
    d_ref = xr.DataArray(d_ref.sel(condition=levels, condition_=levels).values, dims=d_model.dims,
                         coords=labels, attrs=d_ref.attrs)
    out = {"rdm_model": d_model, "rdm_reference": d_ref}
    for name, var in similarity.data_vars.items():
        attrs = similarity.attrs if name == "similarity" else {
            "long_name": f"{name.replace('_', ' ')} of the RDM similarity" if name != "bootstrap"
            else "RDM similarity of each bootstrap resample", "units": "1"}
        out["rdm_similarity" if name == "similarity" else f"rdm_similarity_{name}"] = var.copy().assign_attrs(attrs)
    if ceiling:
        parts = split_rdms(ref, by, split, rdm_method)
        bounds = rdm_noise_ceiling(parts, compare_method)
        to_parts = np.array([float(compare_rdms(d_model, parts.isel(split=k))["similarity"])
                             for k in range(parts.sizes["split"])])
        for name in ("lower", "upper"):
            out[f"rdm_ceiling_{name}"] = bounds[name].copy().assign_attrs(
                {**bounds.attrs, "long_name": f"{name} bound of the noise ceiling ({compare_method})"})
            out[f"rdm_ceiling_{name}_per_split"] = bounds[f"{name}_per_split"].copy().assign_attrs(
                {"long_name": f"{name} bound of the noise ceiling, per part", "units": "1"})
        split_values = parts["split"].values
        out["rdm_similarity_to_splits"] = xr.DataArray(to_parts.mean(), attrs={
            "long_name": "mean similarity of the model RDM to each part's RDM (the value the noise ceiling bounds)",
            "units": "1", "split": split})
        out["rdm_similarity_per_split"] = xr.DataArray(to_parts, dims=("split",), coords={"split": split_values}, attrs={
            "long_name": "similarity of the model RDM to each part's RDM", "units": "1"})
    return out


def compare_entry(entry: ComparisonAnalysis, activity: xr.DataArray, reference: Reference, seed: int = 0) -> xr.Dataset:
    """Run a protocol's ``kind: compare`` entry on one region: :func:`compare_with_reference`
    with the entry's settings and the protocol's seed; the reference's provenance in ``attrs``.

    >>> import numpy as np, xarray as xr
    >>> entry = ComparisonAnalysis(name="self", kind="compare", measures=["cka"],
    ...                            reference={"store": "elsewhere", "region": "fc2"})
    >>> a = xr.DataArray(np.arange(12.0).reshape(4, 3) ** 2, dims=("presentation", "neuroid"),
    ...                  coords={"stimulus_id": ("presentation", list("abcd"))})
    >>> ds = compare_entry(entry, a, Reference(a, {"reference": "elsewhere"}))
    >>> float(ds["cka"].round(12)), ds.attrs["reference"]
    (1.0, 'elsewhere')
    """
    result = compare_with_reference(
        activity, reference.activity, entry.by, measures=entry.measures, rdm_method=entry.rdm_method,
        compare_method=entry.compare_method, n_boot=entry.n_boot, ci=entry.ci, ceiling=entry.ceiling, split=entry.split,
        cka_debiased=entry.cka_debiased, n_folds=entry.n_folds, seed=seed)
    result.attrs.update(reference.provenance)
    return result


def check_comparison(i: int, entry: ComparisonAnalysis, model_values: np.ndarray,
                     folder: str | os.PathLike[str] | None = None) -> None:
    """Check a ``kind: compare`` entry (``analyses[i]``) against its reference, before recording.

    ``model_values`` is the ``by`` coordinate the recording will have (one value per
    presentation). Opens the reference (:func:`read_reference`) and checks that ``by`` is one of
    its presentation coordinates, that the two share at least 3 conditions, and what the
    measures need of them: ``3 * n_folds`` conditions for the predictivity, 4 for a debiased
    CKA and, with ``ceiling``, 2 presentations of every condition in the reference and a
    ``split`` coordinate whose every part holds every condition.

    Raises
    ------
    neurorecord.errors.AnalysisError
        ``analyses[i].<field>: expected ..., found ...`` with ``loc`` the protocol key path.

    Examples
    --------
    >>> entry = ComparisonAnalysis(name="v1", kind="compare", reference={"store": "/no/such/store", "region": "V1"})
    >>> try:
    ...     check_comparison(0, entry, np.array(["a", "b", "c"]))
    ... except ValueError as error:
    ...     print(error.loc, str(error)[:61])
    ('analyses', 0, 'reference', 'store') analyses[0].reference.store: expected a complete neurorecord
    """
    where, loc = f"analyses[{i}]", ("analyses", i)
    ref = read_reference(entry.reference, folder, f"{where}.reference", (*loc, "reference")).activity
    source = entry.reference.store or entry.reference.nwb
    coords = sorted(str(c) for c in ref.coords if ref.coords[c].dims == ("presentation",))
    by = entry.by
    if by not in coords:
        raise AnalysisError(f"{where}.by: {by!r} is not a presentation coordinate of the reference {source}"
                            f"{did_you_mean(by, coords)}; its coordinates: {', '.join(coords)}", loc=(*loc, "by"))
    try:
        shared = shared_conditions(model_values, ref[by].values, by)
    except AnalysisError as exc:
        raise AnalysisError(f"{where}.{exc}", loc=(*loc, "by")) from None
    n = len(shared)
    if "predictivity" in entry.measures and n < 3 * entry.n_folds:
        raise AnalysisError(f"{where}.n_folds: expected at most {n // 3} folds for the {n} conditions the recordings share "
                            f"(3 or more per fold), found {entry.n_folds}", loc=(*loc, "n_folds"))
    if "cka" in entry.measures and entry.cka_debiased and n < 4:
        raise AnalysisError(f"{where}.cka_debiased: expected at least 4 shared conditions for a debiased CKA, found {n}",
                            loc=(*loc, "cka_debiased"))
    if not entry.ceiling or not {"rdm", "predictivity"} & set(entry.measures):
        return
    keys = _keys(ref[by].values)
    kept = np.isin(keys, shared)
    counts = np.array([(keys[kept] == level).sum() for level in shared])
    if "predictivity" in entry.measures and counts.min() < 2:
        few = shared[counts < 2]
        raise AnalysisError(f"{where}.ceiling: expected at least 2 presentations of every condition in the reference for "
                            f"the split-half reliability ceiling, found {counts.min()} for {_text(few)} ({len(few)} "
                            f"conditions); set ceiling: false to compare without ceilings", loc=(*loc, "ceiling"))
    if "rdm" in entry.measures:
        if entry.split not in coords:
            raise AnalysisError(f"{where}.split: {entry.split!r} is not a presentation coordinate of the reference "
                                f"{source}{did_you_mean(entry.split, coords)}; its coordinates: {', '.join(coords)}; set "
                                f"ceiling: false to compare without ceilings", loc=(*loc, "split"))
        parts = _keys(ref[entry.split].values)[kept]
        levels = np.unique(parts)
        if len(levels) < 2:
            raise AnalysisError(f"{where}.split: expected at least 2 values of {entry.split!r} in the reference (independent "
                                f"parts for the RDM noise ceiling), found {len(levels)} ({_text(levels)}); set ceiling: "
                                f"false to compare without ceilings", loc=(*loc, "split"))
        for part in levels:
            missing = np.setdiff1d(shared, keys[kept][parts == part])
            if len(missing):
                raise AnalysisError(f"{where}.split: expected every shared condition in every part of the reference, found "
                                    f"{entry.split}={_text(np.array([part]))} without {by} {_text(missing)} "
                                    f"({len(missing)} conditions)", loc=(*loc, "split"))
