"""Neo annotations to recording coordinates: which object is which neuroid across trials, and
segment / neuroid annotations as ``presentation`` / ``neuroid`` coordinates.

Split from :mod:`neurorecord.interop.neo`, which bins the data; this module only labels it.
An annotation that is a one-value ``quantities.Quantity`` becomes a float coordinate in the
first value's unit, written to the coordinate's ``attrs["units"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import InteropError

#: Annotations of a neuroid with a fixed meaning; every other scalar one becomes a neuroid coordinate.
NEUROID_KEYS = ("neuroid_id", "region", "channel")
_SCALARS = (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)


def is_quantity(value: Any) -> bool:
    """Whether ``value`` is a ``quantities.Quantity`` (a number with units)."""
    import quantities as pq

    return isinstance(value, pq.Quantity)


def is_scalar(value: Any) -> bool:
    """A value that can be one entry of a coordinate: str, number, bool, or a one-value quantity."""
    return isinstance(value, _SCALARS) or (is_quantity(value) and value.size == 1)


def neuroids(segments: list, items: list[list], region: str, keep: Sequence[str] | None, noun: str = "spike train"
             ) -> tuple[list[str], dict[str, tuple[np.ndarray, dict]], list[list[int]]]:
    """Match the items of each segment (spike trains, or signal channels) across segments.

    Each item has ``annotations`` (a dict) and ``name``; ``noun`` names the items in messages
    (``"spike train"``, ``"signal channel"``). Returns the neuroid ids, the neuroid
    coordinates as ``(values, attrs)`` and, per segment, the neuroid index of each item.
    """
    by_id = all(it.annotations.get("neuroid_id") is not None for seg in items for it in seg)
    by_name = not by_id and all(it.name for seg in items for it in seg)
    if not (by_id or by_name):
        counts = {len(seg) for seg in items}
        if len(counts) > 1:
            raise InteropError(
                f"segments: {noun}s have no neuroid_id annotation or name to match them across segments, "
                f"and segments hold different numbers of them ({sorted(counts)}); annotate each with neuroid_id"
            )

    def region_of(it: Any) -> str:
        return str(it.annotations.get("region", region))

    def channel_of(it: Any, j: int) -> Any:
        return it.annotations.get("channel", j)

    def key_of(it: Any, j: int) -> str:
        if by_id:
            return str(it.annotations["neuroid_id"])
        if by_name:
            return str(it.name)
        return f"{region_of(it)}.{channel_of(it, j)}"

    ids: list[str] = []
    index: dict[str, int] = {}
    where: list[list[int]] = []
    for p, seg_items in enumerate(items):
        row: list[int] = []
        seen: set[str] = set()
        for j, it in enumerate(seg_items):
            key = key_of(it, j)
            if key in seen:
                raise InteropError(f"segments: segment {p}{label(segments[p])} holds neuroid {key!r} twice")
            seen.add(key)
            if key not in index:
                index[key] = len(ids)
                ids.append(key)
            row.append(index[key])
        where.append(row)
    for p, row in enumerate(where):
        if len(row) != len(ids):
            missing = [ids[n] for n in sorted(set(range(len(ids))) - set(row))]
            raise InteropError(
                f"segments: segment {p}{label(segments[p])} has no {noun} for neuroid(s) "
                f"{', '.join(map(repr, missing[:5]))}{' ...' if len(missing) > 5 else ''}; every trial must hold every neuroid"
            )

    # the annotations of each neuroid, checked to be the same in every segment
    found: list[dict[str, Any]] = [dict() for _ in ids]
    names: list[str] = []
    for p, seg_items in enumerate(items):
        for j, it in enumerate(seg_items):
            n = where[p][j]
            values = {"region": region_of(it), "channel": channel_of(it, j)}
            for k, v in it.annotations.items():
                if k in NEUROID_KEYS or (keep is None and not is_scalar(v)):
                    continue
                if keep is not None and k not in keep:
                    continue
                values[k] = v
            for k, v in values.items():
                if k not in names:
                    names.append(k)
                if k in found[n] and not _same(found[n][k], v):
                    raise InteropError(
                        f"segments: neuroid {ids[n]!r} has annotation {k!r} = {found[n][k]!r} in one segment and {v!r} "
                        f"in segment {p}{label(segments[p])}; a neuroid annotation must not change between trials "
                        "(choose the ones to keep with neuroid_annotations=...)"
                    )
                found[n].setdefault(k, v)
    for k in keep or ():
        if k not in names and k not in NEUROID_KEYS:
            raise InteropError(f"neuroid_annotations: no {noun} has the annotation {k!r}")
    coords = {"neuroid_id": (np.array(ids, dtype=object), {})}
    labels = [f"neuroid {i!r}" for i in ids]
    for k in names:
        coords[k] = column(f"neuroid annotation {k!r}", [f.get(k) for f in found], labels)
    return ids, coords, where


def presentations(segments: list, stimulus_key: str, keep: Sequence[str] | None) -> dict[str, tuple[np.ndarray, dict]]:
    """``stimulus_id``, ``repetition`` and the kept segment annotations, as ``(values, attrs)``."""
    stimulus_ids = []
    for p, seg in enumerate(segments):
        if seg.annotations.get(stimulus_key) is None:
            found = ", ".join(sorted(map(str, seg.annotations))) or "none"
            raise InteropError(
                f"segments: segment {p}{label(seg)} has no {stimulus_key!r} annotation naming its stimulus "
                f"(annotations found: {found}); annotate it, or pass stimulus_key="
            )
        stimulus_ids.append(str(seg.annotations[stimulus_key]))
    names: list[str] = []
    for seg in segments:
        for k, v in seg.annotations.items():
            if k in (stimulus_key, "stimulus_id") or k in names:
                continue
            if keep is None and not is_scalar(v):
                continue
            if keep is not None and k not in keep:
                continue
            names.append(k)
    for k in keep or ():
        if k not in names and k not in (stimulus_key, "stimulus_id", "repetition"):
            raise InteropError(f"parameters: no segment has the annotation {k!r}")
    coords: dict[str, tuple[np.ndarray, dict]] = {"stimulus_id": (np.array(stimulus_ids, dtype=object), {})}
    if "repetition" not in names:
        seen: dict[str, int] = {}
        repetition = np.empty(len(segments), dtype=np.int64)
        for p, sid in enumerate(stimulus_ids):
            repetition[p] = seen.get(sid, 0)
            seen[sid] = repetition[p] + 1
        coords["repetition"] = (repetition, {})
    labels = [f"segment {p}{label(seg)}" for p, seg in enumerate(segments)]
    for k in names:
        coords[k] = column(f"segment annotation {k!r}", [seg.annotations.get(k) for seg in segments], labels)
    return coords


def column(what: str, values: list[Any], labels: list[str]) -> tuple[np.ndarray, dict]:
    """Annotation values as one coordinate and its attrs: int64, float64, bool or str (object);
    missing values become NaN (numbers) or ``""`` (text). Quantities become float64 in the first
    one's unit (``attrs["units"]``); ``labels`` name where each value came from, for errors."""
    present = [(i, v) for i, v in enumerate(values) if v is not None]
    for i, v in present:
        if not is_scalar(v):
            found = f"Quantity of shape {v.shape}" if is_quantity(v) else f"{type(v).__name__} {v!r}"
            raise InteropError(f"{what}: expected scalar values (str, number, bool, or a quantity of one value), "
                               f"found {found} in {labels[i]}")
    quantities = [(i, v) for i, v in present if is_quantity(v)]
    if quantities:
        return _quantity_column(what, values, labels, quantities[0])
    plain = [v for _, v in present]
    text = [isinstance(v, (str, np.str_)) for v in plain]
    if any(text) and not all(text):
        raise InteropError(f"{what}: mixes text and numbers ({plain[text.index(True)]!r}, {plain[text.index(False)]!r})")
    if any(text):
        return np.array(["" if v is None else str(v) for v in values], dtype=object), {}
    missing = len(plain) < len(values)
    if plain and all(isinstance(v, (bool, np.bool_)) for v in plain) and not missing:
        return np.array(values, dtype=bool), {}
    if plain and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in plain) and not missing:
        return np.array(values, dtype=np.int64), {}
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64), {}


def _quantity_column(what: str, values: list[Any], labels: list[str], first: tuple[int, Any]) -> tuple[np.ndarray, dict]:
    i0, q0 = first
    unit = q0.dimensionality.string
    out = np.full(len(values), np.nan, dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            continue
        if not is_quantity(v):
            raise InteropError(f"{what}: {labels[i]} holds {v!r} without units, and {labels[i0]} a quantity in {unit}; "
                               "give every value with units, or none")
        try:
            out[i] = float(v.rescale(q0.units).magnitude.ravel()[0])
        except ValueError:
            raise InteropError(f"{what}: {labels[i]} has units {v.dimensionality.string}, which do not convert to "
                               f"{unit} (the units of {labels[i0]})") from None
    return out, {"units": unit}


def _same(a: Any, b: Any) -> bool:
    if is_quantity(a) or is_quantity(b):
        if not (is_quantity(a) and is_quantity(b)):
            return False
        try:
            return bool(np.all(a.rescale(b.units).magnitude == b.magnitude))
        except ValueError:
            return False
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return isinstance(a, str) == isinstance(b, str) and bool(a == b)


def label(seg: Any) -> str:
    """`` ('name')`` for a named segment, else nothing: to follow ``segment 3`` in messages."""
    return f" ({seg.name!r})" if getattr(seg, "name", None) else ""
