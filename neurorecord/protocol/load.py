"""Reading protocol files: YAML (``yaml.safe_load``) checked against :mod:`.schema`.

Errors name the file, the line and column, the key path (``stimuli[0].split``), what was
expected and what was found, with a did-you-mean for misspelt keys.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ProtocolError, did_you_mean
from .positions import position as _position
from .schema import (
    ANALYSIS_KINDS,
    FORMAT_VERSION,
    STIMULUS_KINDS,
    EachUnits,
    FractionUnits,
    LesionSpec,
    PopulationUnits,
    Protocol,
    RecordSpec,
    SubjectSpec,
)

__all__ = ["load_protocol", "protocol_from_text"]


def load_protocol(path: str | os.PathLike[str]) -> Protocol:
    """Read and validate a protocol file.

    Parameters
    ----------
    path
        A YAML protocol file.

    Returns
    -------
    Protocol
        The validated protocol; ``protocol.text`` and ``protocol.sha256`` identify it.

    Raises
    ------
    ProtocolError
        The file is missing, is not valid YAML, or does not match the schema.

    Examples
    --------
    >>> import neurorecord
    >>> p = neurorecord.load_protocol(neurorecord.default_protocol_path())
    >>> p.subject.zoo, p.record.regions
    ('digits-mlp', ['fc1', 'fc2', 'fc3'])
    """
    path = Path(path)
    if not path.exists():
        raise ProtocolError(f"{path}: protocol file not found")
    if path.is_dir():
        raise ProtocolError(f"{path}: is a folder, expected a protocol file (.yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{path}: cannot read protocol file: {exc}") from None
    return protocol_from_text(text, path=path.resolve())


def protocol_from_text(text: str, path: Path | None = None) -> Protocol:
    """Validate protocol text; ``path`` (if given) is used in messages and for relative paths."""
    where = str(path) if path is not None else "<protocol>"
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProtocolError(f"{where}{pos}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ProtocolError(f"{where}: expected a mapping of protocol keys at the top level, found {found}")
    version = data.get("neurorecord")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ProtocolError(
            f"{where}{_position(root, ('neurorecord',))}: neurorecord: protocol format version {version} is newer "
            f"than this neurorecord supports ({FORMAT_VERSION}); upgrade neurorecord to run it"
        )
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        lines = sorted((_describe(err, data, root) for err in exc.errors()), key=_line_number)
        head = f"{where}: {len(lines)} problem{'s' if len(lines) > 1 else ''} in the protocol"
        raise ProtocolError(head + "\n" + "\n".join(f"  {where}{line}" for line in lines)) from None
    protocol._path = path
    protocol._text = text
    protocol._root = root
    return protocol


def _line_number(message: str) -> int:
    head = message.split(":", 2)
    return int(head[1]) if len(head) > 2 and head[1].isdigit() else 0


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _strip_tags(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop the discriminator tags pydantic inserts into locations (``stimuli.0.digits.x``)."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and node.get("kind") == part:
            continue
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(out)


def _model_at(loc: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    """The schema class describing the mapping at ``loc`` (to list its valid keys)."""
    if loc == ():
        return Protocol
    if loc == ("subject",):
        return SubjectSpec
    if loc == ("record",):
        return RecordSpec
    if len(loc) == 2 and loc[0] == "lesions" and isinstance(loc[1], int):
        return LesionSpec
    if len(loc) == 3 and loc[0] == "lesions" and loc[2] == "units":
        units = data["lesions"][loc[1]].get("units") if isinstance(data.get("lesions"), list) else None
        forms = {"each": EachUnits, "population": PopulationUnits, "fraction": FractionUnits}
        key = next((k for k in (units or {}) if k in forms), None) if isinstance(units, dict) else None
        return forms.get(key) if key else None
    if len(loc) == 2 and loc[0] in ("stimuli", "analyses") and isinstance(loc[1], int):
        entries = data.get(loc[0]) if isinstance(data, dict) else None
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
        kinds = STIMULUS_KINDS if loc[0] == "stimuli" else ANALYSIS_KINDS
        return kinds.get(entry.get("kind")) if isinstance(entry, dict) else None
    return None


def _describe(err: dict[str, Any], data: Any, root: yaml.Node) -> str:
    loc = _strip_tags(tuple(err["loc"]), data)
    path = _key_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1], data)
        valid = sorted(parent.model_fields) if parent is not None else []
        hint = did_you_mean(str(loc[-1]), valid)
        return f"{_position(root, loc, key=True)}: {path}: unknown key{hint}; valid keys here: {', '.join(valid)}"
    pos = _position(root, loc)
    if kind == "missing":
        return f"{pos or _position(root, loc[:-1])}: {path}: required key is missing"
    kinds, what = (ANALYSIS_KINDS, "analysis") if loc[:1] == ("analyses",) else (STIMULUS_KINDS, "stimulus")
    if kind == "union_tag_invalid":
        found = err.get("ctx", {}).get("tag")
        valid = ", ".join(sorted(kinds))
        return f"{_position(root, loc + ('kind',))}: {path}.kind: unknown {what} kind {found!r}{did_you_mean(str(found), kinds)}; valid kinds: {valid}"
    if kind == "union_tag_not_found":
        return f"{pos}: {path}: an entry of {loc[0]} needs 'kind' (one of: {', '.join(sorted(kinds))})"
    found = err.get("input")
    msg = err["msg"]
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        if loc == ("neurorecord",):
            return f"{pos}: neurorecord: protocol format version must be {FORMAT_VERSION}, found {found!r}"
        hint = did_you_mean(str(found), [e.strip(" '") for e in str(expected).replace(" or ", ",").split(",")])
        return f"{pos}: {path}: expected one of {expected}, found {found!r}{hint}"
    if kind == "too_short":
        return f"{pos}: {path}: expected at least {err.get('ctx', {}).get('min_length', 1)} item(s), found none"
    if kind == "string_pattern_mismatch":
        return f"{pos}: {path}: expected only letters, digits, '_', '.' and '-' (no spaces), found {found!r}"
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        inner = re.match(r"([A-Za-z_]+)\[(\d+)\]\.([A-Za-z_]+): ", msg)  # a check on the whole protocol naming its key
        if not path and inner:
            key = (inner.group(1), int(inner.group(2)), inner.group(3))
            return f"{_position(root, key)}: {msg}"
        return f"{pos}: {path or '(top level)'}: {msg}"
    shown = found if not isinstance(found, (dict, list)) else type(found).__name__
    return f"{pos}: {path or '(top level)'}: {msg[0].lower() + msg[1:]}, found {shown!r}"
