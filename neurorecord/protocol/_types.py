"""What a schema annotation accepts, in words: ``integer > 0``, ``'mean' or 'max'``, ``list of strings``.

Shared by the error messages of :mod:`.load` (what was expected) and the generated reference of
:mod:`.reference` (the type column).

>>> from neurorecord.protocol.schema import LesionSpec
>>> describe_type(LesionSpec.model_fields["method"].annotation)
"'zero', 'mean', 'noise' or 'clamp'"
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, WithJsonSchema
from pydantic.fields import FieldInfo

__all__ = ["describe_type", "union_members", "is_model", "model_kinds", "mapping_form", "join_words"]

_SIMPLE = {bool: "boolean", int: "integer", float: "number", str: "string", Any: "any value"}


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, m1, m2]`` -> ``(T, [m1, m2])``, through nested Annotated."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata = [*extra, *metadata]
    return annotation, metadata


def union_members(annotation: Any) -> list[Any]:
    """The members of a union other than None (each unwrapped), or ``[annotation]``.

    >>> union_members(int | list[int] | None)
    [<class 'int'>, list[int]]
    """
    annotation, _ = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [_unwrap(a)[0] for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def is_model(annotation: Any) -> bool:
    """Whether ``annotation`` is a schema section (a pydantic model class)."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def model_kinds(model: type[BaseModel]) -> tuple[Any, ...]:
    """The ``kind`` values a stimulus or analysis model stands for (empty for other models)."""
    field = model.model_fields.get("kind")
    return get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()


def _constraints(metadata: Iterable[Any], code: bool) -> tuple[str, list[str]]:
    """A bound (``> 0``, ``in (0, 1]``) and other constraints (lengths, pattern) from field metadata."""
    found: dict[str, Any] = {}
    for m in metadata:
        for item in (m.metadata if isinstance(m, FieldInfo) else [m]):
            for attr in ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern"):
                if getattr(item, attr, None) is not None:
                    found.setdefault(attr, getattr(item, attr))
    low = next(((k, found[k]) for k in ("gt", "ge") if k in found), None)
    high = next(((k, found[k]) for k in ("lt", "le") if k in found), None)
    bound = ""
    if low and high:
        bound = f"in {'(' if low[0] == 'gt' else '['}{low[1]:g}, {high[1]:g}{')' if high[0] == 'lt' else ']'}"
    elif low or high:
        key, value = low or high  # type: ignore[misc]
        bound = f"{ {'gt': '>', 'ge': '>=', 'lt': '<', 'le': '<='}[key]} {value:g}"
    others = [f"at least {found['min_length']}"] if found.get("min_length") else []
    others += [f"at most {found['max_length']}"] if found.get("max_length") is not None else []
    others += [f"matching {_quote(found['pattern'], code, literal=False)}"] if "pattern" in found else []
    return bound, others


def _quote(value: Any, code: bool, literal: bool = True) -> str:
    if code:
        return f"`{value}`"
    return repr(value) if literal else str(value)


def join_words(words: Sequence[str]) -> str:
    """``a, b or c``.

    >>> join_words(["mean", "max", "none"]), join_words(["all"])
    ('mean, max or none', 'all')
    """
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def mapping_form(model: type[BaseModel]) -> str:
    """A mapping shown by its required keys: ``{each: ...}``."""
    keys = [k for k, f in model.model_fields.items() if f.is_required()]
    return "{" + ", ".join(f"{k}: ..." for k in keys) + "}" if keys else "mapping"


def describe_type(
    annotation: Any,
    metadata: Iterable[Any] = (),
    code: bool = False,
    link: Callable[[type[BaseModel]], str] | None = None,
) -> str:
    """What a value of ``annotation`` may be, in words (``integer > 0``, ``'mean' or 'max'``).

    ``metadata`` adds a field's constraints; ``code`` puts literal values and patterns in
    markdown backticks; ``link(model)`` renders a nested section (default: its required keys).

    >>> from typing import Literal
    >>> from pydantic import PositiveInt
    >>> describe_type(PositiveInt | list[float] | Literal["all"])
    "integer > 0, list of numbers or 'all'"
    """
    annotation, inner = _unwrap(annotation)
    given = next((m.json_schema for m in [*inner, *metadata] if isinstance(m, WithJsonSchema) and m.json_schema), None)
    if given is not None:  # the field reads its own input format (a validator before the type): describe that
        return _describe_json(given, code)
    options = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, types.UnionType) else []
    if len(options) == 1:  # X | None: None is the default, not a value to write
        return describe_type(options[0], [*inner, *metadata], code, link)
    bound, others = _constraints([*inner, *metadata], code)
    members = union_members(annotation)
    if len(members) > 1:
        if all(is_model(m) and model_kinds(m) for m in members):
            return "mapping with a `kind`: " + join_words([link(m) if link else mapping_form(m) for m in members]) if code else "a mapping with a 'kind'"
        words = []
        for m in options:  # with their own Annotated constraints
            bare = _unwrap(m)[0]
            words += [_quote(v, code) for v in get_args(bare)] if get_origin(bare) is Literal else [describe_type(m, (), code, link)]
        return join_words(words) + (f" {bound}" if bound else "") + "".join(f", {w}" for w in others)
    if get_origin(annotation) is Literal:
        text = join_words([_quote(v, code) for v in get_args(annotation)])
    elif get_origin(annotation) is list or get_origin(annotation) is tuple and get_args(annotation)[-1:] == (Ellipsis,):
        least = next((int(w.split()[-1]) for w in others if w.startswith("at least")), 0)
        others = [w for w in others if not w.startswith("at least")]
        text = _list_of(least) + _plural(describe_type((get_args(annotation) or (Any,))[0], (), code, link))
    elif get_origin(annotation) is tuple:
        text = "[" + ", ".join(describe_type(a, (), code, link) for a in get_args(annotation)) + "]"
    elif get_origin(annotation) is dict or annotation is dict:
        text = "mapping"
    elif is_model(annotation):
        text = link(annotation) if link else mapping_form(annotation)
    else:
        text = _SIMPLE.get(annotation, getattr(annotation, "__name__", str(annotation)))
        if annotation is str:
            others = ["non-empty" if w == "at least 1" else w + " characters" if w.startswith("at ") else w for w in others]
    return text + (f" {bound}" if bound else "") + "".join(f", {w}" for w in others)


def _describe_json(schema: dict[str, Any], code: bool) -> str:
    """Words for a JSON Schema fragment (what a field given ``WithJsonSchema`` accepts)."""
    if "anyOf" in schema or "oneOf" in schema:
        return join_words([_describe_json(s, code) for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"])
    if "enum" in schema or "const" in schema:
        return join_words([_quote(v, code) for v in schema.get("enum", [schema.get("const")])])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        if "enum" in items:
            what = "/".join(_quote(v, code) for v in items["enum"])
        elif "anyOf" in items:
            what = join_words([_plural(_describe_json(s, code)) for s in items["anyOf"]])
        else:
            what = _plural(_describe_json(items, code))
        return _list_of(schema.get("minItems", 0)) + what
    if kind == "object" and schema.get("properties"):
        form = "{" + ", ".join(f"{k}: ..." for k in schema["properties"]) + "}"
        return f"`{form}`" if code else form
    return {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean", "object": "mapping"}.get(kind, "any value")


def _list_of(least: int) -> str:
    return "non-empty list of " if least == 1 else f"list of at least {least} " if least else "list of "


def _plural(text: str) -> str:
    if text.startswith("[mapping]"):
        return "[mappings]" + text[len("[mapping]"):]
    for word in ("integer", "number", "string", "boolean", "mapping"):
        if text.startswith(word):
            return word + "s" + text[len(word):]
    return f"({text})"
