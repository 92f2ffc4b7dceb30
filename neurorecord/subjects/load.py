"""Building a subject from a protocol's ``subject:`` entry."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SubjectError, did_you_mean
from ..protocol.schema import SubjectSpec
from .base import Subject
from .zoo import load_zoo_subject

__all__ = ["build_subject", "load_entry_point"]


def build_subject(spec: SubjectSpec, folder: Path) -> Subject:
    """Build the subject a protocol names; relative paths resolve against ``folder``.

    >>> from neurorecord.protocol.schema import SubjectSpec
    >>> build_subject(SubjectSpec(zoo="digits-mlp"), Path(".")).name
    'digits-mlp'
    """
    if spec.zoo is not None:
        return load_zoo_subject(spec.zoo)
    if spec.torchscript is not None:
        path = _existing(folder, spec.torchscript, "subject.torchscript")
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError/ValueError variants for bad archives
            raise SubjectError(f"{path}: subject.torchscript: not a loadable TorchScript file ({_first_line(exc)})") from None
        model.eval()
        return Subject(name=path.name, model=model, source={"torchscript": str(path)})
    assert spec.entry_point is not None
    where = folder
    if spec.python_path is not None:
        where = Path(spec.python_path).expanduser()
        where = where if where.is_absolute() else folder / where
        if not where.is_dir():
            raise SubjectError(f"{where}: subject.python_path: folder not found")
    model = load_entry_point(spec.entry_point, where, spec.kwargs)
    source: dict[str, Any] = {"entry_point": spec.entry_point, "kwargs": dict(spec.kwargs)}
    module_file = getattr(sys.modules.get(spec.entry_point.partition(":")[0]), "__file__", None)
    if module_file and Path(module_file).is_file():  # the code that builds the network is an input too
        source["module_file"] = str(module_file)
        source["module_sha256"] = hashlib.sha256(Path(module_file).read_bytes()).hexdigest()
    if spec.python_path is not None:
        source["python_path"] = str(where)
    if spec.state_dict is not None:
        path = _existing(folder, spec.state_dict, "subject.state_dict")
        _load_state_dict(model, path, spec.entry_point)
        source["state_dict"] = str(path)
    model.eval()
    return Subject(name=spec.entry_point, model=model, source=source)


def load_entry_point(entry_point: str, folder: Path, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Call ``module:callable`` (module looked up in ``folder`` first) and return its module."""
    module_name, sep, attr = entry_point.partition(":")
    if not sep or not module_name or not attr:
        raise SubjectError(f"subject.entry_point: expected 'module:callable' (e.g. 'mymodels:build'), found {entry_point!r}")
    module = _import_from(module_name, folder, entry_point)
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_") and callable(getattr(target, n, None))]
            raise SubjectError(
                f"subject.entry_point: {module_name!r} ({getattr(module, '__file__', '?')}) has no attribute {part!r}"
                f"{did_you_mean(part, names)}; callables there: {', '.join(names) or 'none'}"
            )
        target = getattr(target, part)
    if not callable(target):
        raise SubjectError(f"subject.entry_point: {entry_point!r} is a {type(target).__name__}, not a callable")
    try:
        model = target(**(kwargs or {}))
    except Exception as exc:
        raise SubjectError(f"subject.entry_point: calling {entry_point!r} failed: {type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise SubjectError(f"subject.entry_point: {entry_point!r} returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


def _import_from(module_name: str, folder: Path, entry_point: str) -> Any:
    top = module_name.split(".")[0]
    local = folder / f"{top}.py"
    local_pkg = folder / top / "__init__.py"
    loaded = sys.modules.get(top)
    if (local.exists() or local_pkg.exists()) and loaded is not None:
        where = Path(getattr(loaded, "__file__", "") or "").resolve()
        if where not in (local.resolve(), local_pkg.resolve()):
            # a same-named module from elsewhere is loaded: drop it so the protocol's own is used
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise SubjectError(
            f"subject.entry_point: cannot import module {module_name!r} for {entry_point!r} "
            f"(looked in {folder} first, then sys.path): {exc}"
        ) from None
    except Exception as exc:
        raise SubjectError(f"subject.entry_point: importing {module_name!r} raised {type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        try:
            sys.path.remove(str(folder))
        except ValueError:
            pass


def _load_state_dict(model: nn.Module, path: Path, entry_point: str) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Weights only load failed" in str(exc):
            raise SubjectError(
                f"{path}: subject.state_dict: the file holds pickled Python objects besides tensors (a whole saved model, or "
                "objects of other classes), which neurorecord does not unpickle (unpickling runs arbitrary code); save "
                "model.state_dict() instead, or build and load the model yourself in the entry point"
            ) from None
        raise SubjectError(
            f"{path}: subject.state_dict: cannot be read with torch.load(weights_only=True): {_first_line(exc)}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SubjectError(f"{path}: subject.state_dict: expected a mapping of parameter names to tensors, found a {type(state).__name__}")
    odd = [f"{k} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if odd:
        raise SubjectError(f"{path}: subject.state_dict: expected every value to be a tensor; not tensors: {', '.join(odd[:10])}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing from the file: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
        if unexpected:
            parts.append(f"not in the model: {', '.join(unexpected[:10])}{' ...' if len(unexpected) > 10 else ''}")
        if shapes:
            parts.append(f"shape mismatch: {'; '.join(shapes[:10])}")
        raise SubjectError(
            f"{path}: subject.state_dict: weights do not match the architecture built by {entry_point!r} ({' | '.join(parts)})"
        )
    model.load_state_dict(state, strict=True)


def _existing(folder: Path, relative: str, field: str) -> Path:
    path = Path(relative).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise SubjectError(f"{path}: {field}: file not found")
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
