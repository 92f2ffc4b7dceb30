"""The protocol format described from its schema: JSON Schema for editors, markdown for the docs.

Both are generated from the pydantic models of :mod:`.schema`, so they cannot drift from what
:func:`~neurorecord.protocol.load_protocol` accepts. ``docs/protocol.md`` holds the markdown
reference between two markers; regenerate it after changing the schema with::

    python -m neurorecord.protocol.reference --write docs/protocol.md

>>> schema = json_schema()
>>> schema["title"], schema["properties"]["neurorecord"]["const"]
('neurorecord protocol, format version 1', 1)
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from ._types import describe_type, is_model, join_words, mapping_form, model_kinds, union_members
from .schema import FORMAT_VERSION, Protocol

__all__ = ["JSON_SCHEMA_DIALECT", "START", "END", "json_schema", "render_reference", "write_reference", "main"]

#: The JSON Schema dialect pydantic generates (tuples are ``prefixItems``).
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Markers around the generated reference in a markdown file.
START = "<!-- reference:start -->"
END = "<!-- reference:end -->"
#: The command that regenerates the reference in the docs.
REGENERATE = "python -m neurorecord.protocol.reference --write docs/protocol.md"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the protocol format (``neurorecord schema`` prints it).

    Editors use it to complete and check protocol files; the format version is both in the title
    and in ``x-neurorecord-format``.
    """
    body = Protocol.model_json_schema()
    body.pop("title", None)
    body.pop("description", None)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"neurorecord protocol, format version {FORMAT_VERSION}",
        "description": "An experiment on a PyTorch network: subject, stimulus sets, recorded regions, analyses and "
        "lesions. Read by neurorecord's `load_protocol` and `neurorecord run`.",
        "x-neurorecord-format": FORMAT_VERSION,
        **body,
    }


def _doc(text: str | None) -> str:
    """A docstring as one markdown paragraph per blank-line-separated block (rst roles to code)."""
    text = inspect.cleandoc(text or "")
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    blocks = [block for block in text.split("\n\n") if block.strip() and not block.lstrip().startswith(">>>")]
    return "\n\n".join(" ".join(block.split()) for block in blocks)


def _cell(text: str) -> str:
    """Text for a table cell: one line, ``|`` escaped, ``<`` shown as text (not a tag) outside code."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None:
        return "none"
    return f"`{value if isinstance(value, str) else json.dumps(to_jsonable_python(value), separators=(', ', ': '))}`"


class _Section:
    """One mapping of the format: its model, key path, heading, link text and anchor."""

    def __init__(self, model: type[BaseModel], path: str, union: bool, owner: "_Section | None") -> None:
        self.model = model
        self.path = path
        self.owner = owner
        kinds = model_kinds(model)
        if owner is None:
            self.title, self.short = "Top level", "top level"
        elif kinds:
            self.title = f"`{path}`, kind " + join_words([f"`{k}`" for k in kinds])
            self.short = "/".join(f"`{k}`" for k in kinds)
        elif union:
            self.title, self.short = f"`{path}` as `{mapping_form(model)}`", f"`{mapping_form(model)}`"
        else:
            self.title, self.short = f"`{path}`", "mapping"

    def qualify(self) -> None:
        """Name the owner's kind in the heading, for a path that several kinds give different mappings."""
        if self.owner is not None and model_kinds(self.owner.model):
            self.title += " of kind " + join_words([f"`{k}`" for k in model_kinds(self.owner.model)])

    @property
    def anchor(self) -> str:
        return "ref-" + (re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "top")


def _nested(annotation: Any, path: str) -> list[tuple[type[BaseModel], str, bool]]:
    """Models reachable from a field's annotation: (model, key path, part of a union of several)."""
    found: list[tuple[type[BaseModel], str, bool]] = []
    members = union_members(annotation)
    for m in members:
        if is_model(m):
            found.append((m, path, len(members) > 1))
        elif get_origin(m) is list:
            found += _nested(get_args(m)[0], path + "[]")
        elif get_origin(m) is dict:
            found += _nested(get_args(m)[1], path + ".*")
    return found


def _sections() -> list[_Section]:
    """Every model of the schema, breadth-first from the top level, each once (at its first path)."""
    sections = [_Section(Protocol, "", False, None)]
    seen = {Protocol}
    i = 0
    while i < len(sections):
        parent = sections[i]
        for key, field in parent.model.model_fields.items():
            for model, path, union in _nested(field.annotation, f"{parent.path}.{key}".lstrip(".")):
                if model not in seen:
                    seen.add(model)
                    sections.append(_Section(model, path, union, parent))
        i += 1
    titles = [s.title for s in sections]
    for section in sections:
        if titles.count(section.title) > 1:
            section.qualify()
    return sections


def render_reference() -> str:
    """The protocol reference in markdown: one section per mapping of the format, one row per key."""
    sections = _sections()
    by_model = {s.model: s for s in sections}

    def link(model: type[BaseModel]) -> str:
        section = by_model[model]
        return f"[{section.short}](#{section.anchor})"

    out = [
        f"Generated from the schema of protocol format version {FORMAT_VERSION} (`neurorecord/protocol/schema.py`); "
        f"do not edit by hand, regenerate with `{REGENERATE}`. Each section is one mapping of a protocol file, "
        "named by its key path (`[]` marks a list entry); each row is one key. Unknown keys are errors everywhere. "
        "`neurorecord schema` prints the same format as JSON Schema.",
    ]
    for s in sections:
        out += ["", f'<a id="{s.anchor}"></a>', "", f"### {s.title}", ""]
        doc = _doc(s.model.__doc__) if s.model is not Protocol else "The keys of a protocol file."
        if doc:
            out += [doc, ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for key, field in s.model.model_fields.items():
            kind = describe_type(field.annotation, field.metadata, code=True, link=link)
            out.append(f"| `{key}` | {_cell(kind)} | {_cell(_default(field))} | {_cell(_doc(field.description))} |")
    return "\n".join(out) + "\n"


def _region(text: str, path: Path) -> tuple[int, int]:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"error: {path}: no reference region: expected a line {START} before a line {END}")
    return start + len(START), end


def write_reference(path: str | Path) -> bool:
    """Replace the reference between the markers of a markdown file; return whether it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = _region(text, path)
    new = text[:start] + "\n" + render_reference() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m neurorecord.protocol.reference [--write FILE]``: print or write the reference."""
    parser = argparse.ArgumentParser(prog="python -m neurorecord.protocol.reference", description=main.__doc__)
    parser.add_argument("--write", metavar="FILE", help=f"replace the text between {START} and {END} in FILE")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render_reference())
        return 0
    if not Path(args.write).is_file():
        raise SystemExit(f"error: {args.write}: no such file")
    changed = write_reference(args.write)
    print(f"{args.write}: protocol reference {'updated' if changed else 'already up to date'}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
