"""Reading protocol files: YAML (``yaml.safe_load``) checked against :mod:`.schema`.

Errors name the file, the line and column, the key path (``stimuli[0].split``), what was
expected and what was found, with a did-you-mean for misspelt keys.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import ValidationError

from ..errors import ProtocolError, did_you_mean
from ._base import SET_NAME_PATTERN
from .positions import position as _position
from ._types import describe_type, is_model, model_kinds, union_members
from .schema import ANALYSIS_KINDS, FORMAT_VERSION, STIMULUS_KINDS, Protocol

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
    except RecursionError:
        raise ProtocolError(f"{where}: the YAML is nested too deeply to read (lists or mappings inside each other "
                            "hundreds of levels deep); a protocol needs a few levels") from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else _shown(data)
        raise ProtocolError(f"{where}: expected a mapping of protocol keys at the top level, found {found}")
    twice = _key_given_twice(root)
    if twice:
        raise ProtocolError(f"{where}{twice}")
    version = data.get("neurorecord")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ProtocolError(
            f"{where}{_position(root, ('neurorecord',))}: neurorecord: protocol format version {version} is newer "
            f"than this neurorecord supports ({FORMAT_VERSION}); upgrade neurorecord to run it"
        )
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        lines = sorted(_describe_all(exc.errors(), data, root), key=_line_number)
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


def _key_given_twice(node: yaml.Node, loc: tuple[Any, ...] = ()) -> str:
    """``:line:col: path: ...`` for the first key written twice in a mapping (YAML silently keeps the last)."""
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if (key.tag, key.value) in first:
                    return (
                        f":{key.start_mark.line + 1}:{key.start_mark.column + 1}: {_key_path(loc + (key.value,))}: "
                        f"key given twice in one mapping (first on line {first[key.tag, key.value]}); YAML would keep only the last"
                    )
                first[key.tag, key.value] = key.start_mark.line + 1
            found = _key_given_twice(value, loc + (key.value,))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            found = _key_given_twice(value, loc + (i,))
            if found:
                return found
    return ""


@dataclass
class _Union:
    """A union pydantic tried each member of: where it is, the member an error is about, what was written."""

    loc: tuple[Any, ...]
    tag: str
    annotation: Any
    node: Any


@dataclass
class _Resolved:
    """An error location read against the schema: the key path without pydantic's union tags, the
    section (model) holding its last key, and the unions passed through."""

    loc: tuple[Any, ...]
    owner: Any
    unions: list[_Union]


def _is_member(member: Any, tag: Any) -> bool:
    """Whether pydantic's location tag (``EachUnits``, ``list[int]``, a kind) names this union member."""
    if is_model(member):
        return tag == member.__name__ or tag in model_kinds(member)
    origin = get_origin(member)
    name = {list: "list", tuple: "tuple", dict: "dict", Literal: "literal"}.get(origin, "") if origin else getattr(member, "__name__", "")
    return str(tag).split("[")[0].lower() == name.lower()


def _child(annotation: Any, part: Any) -> Any:
    """The annotation of the value at key or index ``part`` of a value of ``annotation`` (None if unknown)."""
    if is_model(annotation) and isinstance(part, str):
        field = annotation.model_fields.get(part)
        return field.annotation if field is not None else None
    args = get_args(annotation)
    if get_origin(annotation) is list or get_origin(annotation) is tuple and args[-1:] == (Ellipsis,):
        return args[0]
    if get_origin(annotation) is tuple and isinstance(part, int) and part < len(args):
        return args[part]
    if get_origin(annotation) is dict:
        return args[1]
    return None


def _resolve(loc: tuple[Any, ...], data: Any) -> _Resolved:
    annotation: Any = Protocol
    node, owner = data, None
    out: list[Any] = []
    unions: list[_Union] = []
    for part in loc:
        members = union_members(annotation) if annotation is not None else []
        if len(members) > 1:  # pydantic's location names the member it tried: not a key of the file
            unions.append(_Union(tuple(out), str(part), annotation, node))
            annotation = next((m for m in members if _is_member(m, part)), None)
            continue
        owner = members[0] if members else None
        annotation = _child(owner, part)
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return _Resolved(tuple(out), owner, unions)


def _fitting_member(union: _Union) -> Any:
    """The member of a union that what was written is evidently meant as (by its keys, or being a list)."""
    members = union_members(union.annotation)
    if isinstance(union.node, dict):
        scores = [(len(set(union.node) & set(m.model_fields)), m) for m in members if is_model(m)]
        best = max((score for score, _ in scores), default=0)
        fits = [m for score, m in scores if score == best]
        return fits[0] if best and len(fits) == 1 else None
    lists = [m for m in members if get_origin(m) in (list, tuple)]
    return lists[0] if isinstance(union.node, list) and len(lists) == 1 else None


def _describe_all(errors: list[dict[str, Any]], data: Any, root: yaml.Node) -> list[str]:
    """One line per problem; the attempts on every member of a union become one line, unless what was
    written evidently means one member (then that member's problems are shown)."""
    resolved = [(err, _resolve(tuple(err["loc"]), data)) for err in errors]
    tags: dict[tuple[Any, ...], set[str]] = {}
    for _, r in resolved:
        for u in r.unions:
            tags.setdefault(u.loc, set()).add(u.tag)
    lines: list[str] = []
    collapsed: set[tuple[Any, ...]] = set()
    for err, r in resolved:
        union = next((u for u in r.unions if len(tags[u.loc]) > 1), None)
        if union is not None:
            fit = _fitting_member(union)
            if fit is not None and any(_is_member(fit, t) for t in tags[union.loc]):
                if not _is_member(fit, union.tag):
                    continue
            else:
                if union.loc not in collapsed:
                    collapsed.add(union.loc)
                    lines.append(_describe_union(union, root))
                continue
        lines.append(_describe(err, r, root))
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)


def _describe_union(union: _Union, root: yaml.Node) -> str:
    """``expected 'all', 'region', list of integers or {each: ...}, found ...`` for a value no member accepts."""
    members = union_members(union.annotation)
    found = _shown(union.node)
    if isinstance(union.node, dict):
        keys = sorted({k for m in members if is_model(m) for k in m.model_fields})
        unknown = [k for k in union.node if k not in keys]
        if unknown:
            found += f" with unknown key {unknown[0]!r}{did_you_mean(str(unknown[0]), keys)}"
    elif isinstance(union.node, str):
        found += did_you_mean(union.node, [str(v) for m in members if get_origin(m) is Literal for v in get_args(m)])
    return f"{_position(root, union.loc)}: {_key_path(union.loc)}: expected {describe_type(union.annotation)}, found {found}"


#: Patterns of the schema in words, for their mismatch messages.
_PATTERN_WORDS = {
    SET_NAME_PATTERN: "only letters, digits, '_', '.' and '-' (no spaces)",
    r"^(auto|cpu|cuda(:\d+)?)$": "auto, cpu, cuda or cuda:N",
}


def _describe(err: dict[str, Any], resolved: _Resolved, root: yaml.Node) -> str:
    loc = resolved.loc
    path = _key_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = resolved.owner
        valid = sorted(owner.model_fields) if is_model(owner) else []
        hint = did_you_mean(str(loc[-1]), valid)
        return f"{_position(root, loc, key=True)}: {path}: unknown key{hint}; valid keys here: {', '.join(valid)}"
    pos = _position(root, loc)
    if kind == "missing":
        what = f" (the protocol format version: write 'neurorecord: {FORMAT_VERSION}' as the first key)" if loc == ("neurorecord",) else ""
        return f"{pos or _position(root, loc[:-1])}: {path}: required key is missing{what}"
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
        return f"{pos}: {path}: expected one of {expected}, found {_shown(found)}{hint}"
    if kind == "too_short":
        return f"{pos}: {path}: expected at least {err.get('ctx', {}).get('min_length', 1)} item(s), found none"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return f"{pos}: {path}: expected {_PATTERN_WORDS.get(pattern, f'text matching {pattern}')}, found {found!r}"
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        inner = re.match(r"([A-Za-z_]+)\[(\d+)\]\.([A-Za-z_]+): ", msg)  # a check on the whole protocol naming its key
        if not path and inner:
            key = (inner.group(1), int(inner.group(2)), inner.group(3))
            return f"{_position(root, key)}: {msg}"
        return f"{pos}: {path or '(top level)'}: {msg}"
    return f"{pos}: {path or '(top level)'}: {msg[0].lower() + msg[1:]}, found {_shown(found)}"
