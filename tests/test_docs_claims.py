"""The docs say only what is so: claims a reader acts on are checked against the code."""

from __future__ import annotations

import re
import tomllib

import pytest

from neurorecord.protocol.schema import FunctionalPopulationsStudy, LesionSpec, Protocol, RecordSpec, SubjectSpec
from neurorecord.subjects.zoo import ZOO, load_zoo_subject
from tests.conftest import REPO

PROTOCOL_DOC = (REPO / "docs" / "protocol.md").read_text()


def _hand_table(section: str) -> dict[str, str]:
    """key -> default column of the hand-written key table under ``## <section>`` (before its first ``###``)."""
    body = PROTOCOL_DOC.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| [^|]*(?:\\\|[^|]*)* \| ([^|]+) \|", body, flags=re.M)
    assert rows, f"no key table under ## {section}"
    return {key: default.strip() for key, default in rows}


def _literal(default: str) -> object:
    """A table's default as a value: `true` -> True, `256` -> 256, required/none -> markers."""
    text = default.strip("`")
    return {"true": True, "false": False, "[]": [], "{}": {}}.get(text, text)


@pytest.mark.parametrize("section, model", [("subject", SubjectSpec), ("record", RecordSpec), ("lesions", LesionSpec),
                                            ("study", FunctionalPopulationsStudy)])
def test_hand_written_key_tables_list_every_key_with_its_default(section, model):
    table = _hand_table(section)
    assert set(table) == set(model.model_fields), f"## {section}: keys in the docs differ from the schema"
    for key, field in model.model_fields.items():
        if field.is_required():
            assert table[key] == "required", key
        elif field.default is None:
            assert table[key] == "none" or not table[key].startswith("`"), key
        elif isinstance(field.default, (bool, int, float, str)) and not table[key].startswith("the"):
            assert str(_literal(table[key])) == str(field.default), f"## {section}: {key} default {table[key]} in the docs, {field.default!r} in the schema"


def test_every_zoo_subject_is_documented_and_as_accurate_as_the_docs_say():
    zoo_row = next(line for line in PROTOCOL_DOC.splitlines() if line.startswith("| `zoo` |"))
    claimed = float(re.search(r"reaches ([\d.]+)% accuracy or more", PROTOCOL_DOC).group(1)) / 100
    for name in ZOO:
        assert f"`{name}`" in zoo_row, name
        assert re.search(rf"^\| `{re.escape(name)}` \|", PROTOCOL_DOC, flags=re.M), f"{name} has no row in the zoo table"
        assert load_zoo_subject(name).info["test_accuracy"] >= claimed, name


def test_python_version_in_the_docs_is_the_package_requirement():
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.fullmatch(r">=\s*(3\.\d+)", requires).group(1)
    for doc in ("docs/index.md", "README.md"):
        for found in re.findall(r"Python (3\.\d+) or newer", (REPO / doc).read_text()):
            assert found == version, doc
    assert f"Python {version} or newer" in (REPO / "docs" / "index.md").read_text()


def test_the_default_protocol_runs_the_lesion_shortcut_as_documented():
    assert LesionSpec.model_fields["shortcut"].default is True
    assert "the shortcut is the default" in (REPO / "docs" / "lesion.md").read_text().lower() or \
        "`shortcut` | boolean | `true`" in PROTOCOL_DOC


def test_top_level_keys_are_documented():
    body = PROTOCOL_DOC.split("\n## Top level\n", 1)[1].split("\n## ", 1)[0]
    for key in Protocol.model_fields:
        assert f"`{key}`" in body, key
