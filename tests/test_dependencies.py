"""Dependencies point one way: reading stores and analysing recordings never import torch."""

from __future__ import annotations

import subprocess
import sys

import neurorecord


def test_analysis_and_store_reading_do_not_import_torch(tmp_path):
    store = tmp_path / "rec"
    neurorecord.run(neurorecord.default_protocol_path(), store, quiet=True)
    script = f"""
import sys
import neurorecord, neurorecord.analysis, neurorecord.interop
from neurorecord.analysis import anova, load_population
tree = neurorecord.open_recording({str(store)!r})
anova(tree["fc2"]["activity"], "label")
load_population({str(store)!r}, "fc2", "responsive")
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


#: The layers, lowest first: a module may import its own layer and those below, never one above.
#: cli -> session -> experiment -> report -> plot -> (record, lesion, analysis, compare, interop)
#:     -> (store, stimuli, subjects, protocol, cluster) -> (errors, _validation)
LAYERS = [
    {"errors", "_validation"},
    {"store", "stimuli", "subjects", "protocol", "cluster"},
    {"record", "lesion", "analysis", "compare", "interop"},
    {"plot"},
    {"report"},
    {"experiment"},
    {"session"},
    {"cli"},
]
#: Torch-free packages: they must not import the torch side even sideways.
TORCH_FREE = {"analysis", "compare", "plot", "report", "store", "protocol", "errors", "_validation", "cluster"}
TORCH_SIDE = {"record", "lesion", "subjects", "session", "experiment"}


def _package_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "neurorecord" else None


def _imports(path) -> set[str]:
    """neurorecord packages imported by a file (absolute or relative imports, at any depth)."""
    import ast

    tree = ast.parse(path.read_text())
    here = path.relative_to(REPO).with_suffix("").parts  # ("neurorecord", "lesion", "sweep")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level]) if path.name != "__init__.py" else list(here[: len(here) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            package = _package_of(name)
            if package is not None and ((REPO / "neurorecord" / package).is_dir() or (REPO / "neurorecord" / f"{package}.py").exists()):
                found.add(package)
    return found


from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_imports_run_one_way() -> None:
    level = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    wrong = []
    for path in sorted((REPO / "neurorecord").rglob("*.py")):
        rel = path.relative_to(REPO / "neurorecord").parts
        own = rel[0].removesuffix(".py")
        if own == "__init__":
            continue  # the package root re-exports the public API lazily
        for target in _imports(path) - {own}:
            if target not in level or own not in level:
                continue
            if level[target] > level[own]:
                wrong.append(f"{path.relative_to(REPO)} imports neurorecord.{target} (a higher layer)")
            if own in TORCH_FREE and target in TORCH_SIDE:
                wrong.append(f"{path.relative_to(REPO)} imports neurorecord.{target} (needs torch)")
    assert not wrong, "\n".join(wrong)


def test_every_optional_package_a_test_needs_is_installed_by_the_test_extra() -> None:
    """A test skipped for a missing package is not a test: whatever ``importorskip`` asks for is
    declared in ``pyproject.toml`` (the ``test`` extra or the dependencies), so CI runs it."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower()
                for req in project["dependencies"] + project["optional-dependencies"]["test"]}
    asked = set()
    for path in (REPO / "tests").rglob("*.py"):
        asked |= {m.split(".")[0].lower() for m in re.findall(r"importorskip\(\s*[\"']([\w.]+)[\"']", path.read_text())}
    assert asked, "the scan found no importorskip at all: is it still reading the tests?"
    missing = sorted(asked - declared)
    assert not missing, f"tests skip without {missing}; add them to the test extra in pyproject.toml"


def test_validate_imports_only_what_it_needs() -> None:
    """`neurorecord validate` of the default protocol builds the subject and the stimuli and checks
    every entry without the store's or the analyses' numerical stack (about a second of start-up)."""
    import subprocess
    import sys

    script = """
import sys
from neurorecord.cli.main import main
main(["validate", sys.argv[1]])
heavy = ("xarray", "dask", "zarr", "scipy", "pandas", "statsmodels", "sklearn", "distributed", "matplotlib")
print(sorted(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script, str(REPO / "neurorecord" / "protocols" / "digits.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_recording_without_analyses_imports_no_xarray(tmp_path) -> None:
    """`neurorecord run` of a protocol that only records writes its store through zarr alone:
    neither xarray, pandas nor dask is imported (about 0.8 s of start-up here); the store it
    writes is then read by xarray as usual."""
    import subprocess
    import sys

    import yaml

    protocol = yaml.safe_load((REPO / "neurorecord" / "protocols" / "digits.yaml").read_text())
    protocol = {k: v for k, v in protocol.items() if k not in ("analyses", "lesions", "study")}
    protocol["name"] = "recording-only"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(protocol))
    script = """
import sys
from neurorecord.cli.main import main
main(["run", sys.argv[1], "--out", sys.argv[2], "--quiet", "--no-report"])
heavy = ("xarray", "dask", "scipy", "pandas", "statsmodels", "sklearn", "distributed", "matplotlib")
print(sorted(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p.yaml"), str(tmp_path / "run")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    from neurorecord import open_recording

    tree = open_recording(tmp_path / "run")
    assert tree["fc1"]["activity"].shape == (454, 100) and not tree["fc1"]["activity"].isnull().any()


def test_the_reserved_node_names_are_the_stores() -> None:
    from neurorecord import session, store

    assert session.RESERVED_NODES == (store.BEHAVIOUR_NODE, store.ANALYSES_NODE, store.LESIONS_NODE, store.PROGRESS_NODE)
