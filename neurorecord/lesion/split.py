"""Cutting a network at a region: run the part before it once, the part after it many times.

A lesion acts on a region's output, so everything computed before that output is the same for
every lesion. :func:`split_at` cuts the network there into an ``upstream`` part, which computes the
region's output together with every other value the rest of the network still needs (the
*frontier*: a skip connection's input, for example), and a ``downstream`` part, which starts from
the frontier with the region's output replaced (lesioned) and returns the logits.

Three kinds of split exist, tried in this order:

``"sequential"``
    The model is an ``nn.Sequential`` chain, and the region sits in it, possibly nested in
    ``nn.Sequential`` children. Children are run in order; the frontier is the region's output.
``"fx"``
    The model has a general ``forward`` that ``torch.fx`` can trace symbolically (with the
    region kept whole, as one node). Upstream is every value that does not depend on the
    region's output; the frontier is those of them that a node depending on it reads.
``"full"``
    The model cannot be split (data-dependent control flow, a region called several times,
    or a traced graph that does not reproduce the model): upstream keeps the input, downstream
    reruns the whole network with a forward hook that replaces the region's output. One
    :class:`UnsplittableModelWarning` says so.

The frontier holds per-stimulus tensors only (first dimension = stimuli), so ``downstream`` can run
many lesions at once on a packed batch of ``n_copies x stimuli`` rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import RegionError

__all__ = ["Edit", "Split", "UnsplittableModelWarning", "evaluating", "memory_format", "split_at"]

#: ``edit(region_output) -> lesioned output``: takes the region's output for ``S`` stimuli (or, in a
#: ``"full"`` split, ``n_copies * S`` rows) and returns ``n_copies * S`` rows, lesion-major.
Edit = Callable[[torch.Tensor], torch.Tensor]

class UnsplittableModelWarning(UserWarning):
    """The model cannot be cut at the region: lesions rerun the full network."""


class _CannotSplit(Exception):
    """Internal: why one way of splitting does not apply."""


class _Stop(Exception):
    """Internal: raised from a hook to end a forward pass early."""


@dataclass
class Split:
    """A network cut at one region (see the module docstring).

    Attributes
    ----------
    kind
        ``"sequential"``, ``"fx"`` or ``"full"``.
    region
        The region's name in ``model.named_modules()``.
    region_key
        The key of the region's output in the dict that :meth:`upstream` returns (``None`` for
        ``"full"``, whose upstream keeps only the input, under ``"input"``).
    reason
        Why the model could not be split (``"full"`` only), else ``None``.
    """

    kind: str
    region: str
    region_key: str | None
    reason: str | None = None
    model: nn.Module | None = field(default=None, repr=False)
    _up: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = field(default=None, repr=False)
    _down: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = field(default=None, repr=False)
    #: for ``"sequential"``: the modules run after the region, in order, nested chains flattened
    #: into their leaves (used by the linear shortcut)
    downstream_modules: list[nn.Module] = field(default_factory=list, repr=False)
    #: the frontier of the example stimuli, computed by the verification pass (``None`` without
    #: an example, and for ``"full"``)
    example_frontier: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    #: bytes the upstream part allocated per example stimulus in that pass (every tensor a torch
    #: function returned, views excluded: an upper bound); 0 without it
    upstream_bytes: float = 0.0

    def upstream(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compute the frontier for stimuli ``x`` (stimulus, ...): ``{key: (stimulus, ...)}``."""
        if self.kind == "full":
            return {"input": x}
        assert self._up is not None
        return self._up(x)

    def downstream(self, cached: dict[str, torch.Tensor], edit: Edit | None = None, n_copies: int = 1) -> torch.Tensor:
        """Logits from a frontier, with the region's output passed through ``edit``.

        Parameters
        ----------
        cached
            What :meth:`upstream` returned for ``S`` stimuli.
        edit
            Turns the region's output into ``n_copies * S`` lesioned rows (lesion-major); ``None``
            leaves it as it is.
        n_copies
            How many copies of the ``S`` stimuli run at once (the lesion pack size).

        Returns
        -------
        torch.Tensor
            Logits of shape (n_copies * S, n_classes), lesion-major.
        """
        if self.kind == "full":
            return self._full_downstream(cached["input"], edit, n_copies)
        assert self.region_key is not None
        n = next(iter(cached.values())).shape[0]
        values: dict[str, torch.Tensor] = {}
        for key, value in cached.items():
            if key == self.region_key:
                value = edit(value) if edit is not None else _repeat(value, n_copies)
                if value.shape[0] != n_copies * n:
                    raise ValueError(f"edit returned {value.shape[0]} rows, expected n_copies * stimuli = {n_copies * n}")
            else:
                value = _repeat(value, n_copies)
            values[key] = value
        return self.downstream_packed(values)

    def downstream_packed(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits from a frontier that is already packed: every value has the same number of rows
        (``n_copies * S``, lesion-major), the region's output already lesioned. Not for ``"full"``.

        Returns
        -------
        torch.Tensor
            Logits (rows, n_classes).
        """
        if self._down is None:
            raise ValueError(f"a {self.kind!r} split has no downstream part to run on a packed frontier; use downstream()")
        return self._down(values)

    def region_output(self, x: torch.Tensor) -> torch.Tensor:
        """The region's (unlesioned) output for stimuli ``x``."""
        if self.kind != "full":
            return self.upstream(x)[self.region_key]  # type: ignore[index]
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            captured.append(_check_output(self.region, output))
            raise _Stop

        handle = _module(self.model, self.region).register_forward_hook(hook)  # type: ignore[arg-type]
        try:
            self.model(x)  # type: ignore[misc]
        except _Stop:
            pass
        finally:
            handle.remove()
        if not captured:
            raise RegionError(f"lesion: region {self.region!r} was never called during the forward pass")
        return captured[0]

    def _full_downstream(self, x: torch.Tensor, edit: Edit | None, n_copies: int) -> torch.Tensor:
        x = _repeat(x, n_copies)
        if edit is None:
            return _check_logits(self.model(x))  # type: ignore[misc]

        def hook(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
            return edit(_check_output(self.region, output))

        handle = _module(self.model, self.region).register_forward_hook(hook)  # type: ignore[arg-type]
        try:
            return _check_logits(self.model(x))  # type: ignore[misc]
        finally:
            handle.remove()


def split_at(model: nn.Module, region: str, example: torch.Tensor | None = None, keep: Sequence[str] = ()) -> Split:
    """Cut ``model`` at ``region`` into an upstream and a downstream part.

    Tries an ``nn.Sequential`` split, then a ``torch.fx`` split, and falls back to rerunning the
    full network (warning once with :class:`UnsplittableModelWarning`). The checks run the model
    in eval mode under ``torch.inference_mode``; the model is left with the hooks, train/eval
    modes and parameter values it had, also when this raises. The returned split runs the
    model's own modules, in whatever mode the caller puts them.

    Parameters
    ----------
    model
        The subject's module; its forward takes one tensor and returns logits (batch, class).
    region
        A name from ``model.named_modules()``; its output must be a tensor (stimulus, channel, ...).
    example
        A few stimuli (stimulus, ...). With it, the fx split learns which shared values are
        per-stimulus (values such as ``x.size(0)`` are recomputed downstream instead of cached),
        and every split is checked: ``downstream(upstream(example))`` must equal
        ``model(example)`` exactly on the CPU, or the full fallback is used (that pass also
        keeps the example's frontier and measures the upstream part's bytes:
        ``example_frontier``, ``upstream_bytes``). Without an example, the fx split assumes the
        shared values are per-stimulus tensors and is not checked.
    keep
        Names of modules downstream of ``region`` that must stay whole modules in the downstream
        part (their forward hooks then fire there, once per call): the fx split keeps them as
        single nodes instead of tracing into them. The sequential split runs whole children
        anyway.

    Returns
    -------
    Split

    Raises
    ------
    RegionError
        If ``region`` names no module of ``model``.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> model = digits_mlp().eval()
    >>> split = split_at(model, "fc2")
    >>> split.kind, list(split.upstream(torch.zeros(3, 1, 8, 8)))
    ('sequential', ['fc2'])
    >>> x = torch.rand(3, 1, 8, 8)
    >>> torch.equal(split.downstream(split.upstream(x)), model(x))
    True
    """
    _check_region(model, region)
    with evaluating(model):
        return _split(model, region, example, keep)


def _split(model: nn.Module, region: str, example: torch.Tensor | None, keep: Sequence[str]) -> Split:
    """:func:`split_at` for a region already checked."""
    from .fx import fx_split  # the fx cut builds a Split: it imports this module

    reasons: list[str] = []
    for build in (_sequential_split, partial(fx_split, keep=tuple(keep))):
        try:
            split = build(model, region, example)
            if example is not None:
                _verify(split, model, example)
            return split
        except _CannotSplit as exc:
            reasons.append(str(exc))
    reason = "; ".join(r for r in reasons if r)
    warnings.warn(
        f"lesion: the model ({type(model).__name__}) cannot be split at region {region!r} ({reason}); "
        "lesions will rerun the full network for every lesion",
        UnsplittableModelWarning,
        stacklevel=3,
    )
    return Split("full", region, None, reason=reason, model=model)


# ---------------------------------------------------------------- helpers


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and ``torch.inference_mode`` inside the block; every module's train/eval flag
    as it was after it, also when the block raises (no gradient, no batch-norm update)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        if any(training for _, training in modes):
            model.eval()
        with torch.inference_mode():
            yield
    finally:
        for m, training in modes:
            m.training = training


def _check_region(model: nn.Module, region: str) -> None:
    try:
        found = bool(region) and isinstance(model.get_submodule(region), nn.Module)
    except AttributeError:  # no such module (or a region that is not a str)
        found = False
    if not found:
        names = [n for n, _ in model.named_modules() if n]
        from ..record.regions import _unknown_region_message

        raise RegionError(_unknown_region_message(model, region, names, isinstance(model, torch.jit.ScriptModule)).replace("record.regions", "lesion.region", 1))
    if isinstance(model, torch.jit.ScriptModule):
        raise RegionError(f"lesion.region: cannot lesion {region!r}: TorchScript subjects take no hooks; give the model as an entry point (module:callable) instead")


def _module(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name)


def _repeat(value: torch.Tensor, n_copies: int) -> torch.Tensor:
    if n_copies == 1:
        return value
    return same_layout(value.repeat(n_copies, *([1] * (value.ndim - 1))), value)


def memory_format(value: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D tensor laid out so (as CPU convolutions often return), else contiguous."""
    if value.ndim == 4 and not value.is_contiguous() and value.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def same_layout(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``value`` in ``like``'s memory format: the next layers then run the kernels (and the
    rounding) they run in the unsplit network."""
    fmt = memory_format(like)
    return value if fmt is torch.contiguous_format and value.is_contiguous() else value.contiguous(memory_format=fmt)


def _check_output(region: str, output: Any) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise RegionError(f"lesion.region: region {region!r} outputs a {type(output).__name__}; only a region whose output is a tensor can be lesioned")
    return output


def _check_logits(output: Any) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        found = f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise TypeError(f"lesion: the model must return logits of shape (stimulus, class); found {found}")
    return output


def _count_uses(model: nn.Module, region: str) -> int:
    target = _module(model, region)
    return sum(1 for _, m in model.named_modules(remove_duplicate=False) if m is target)


def _verify(split: Split, model: nn.Module, example: torch.Tensor) -> None:
    """Check the split against the model on ``example``; keep its frontier and measure its bytes."""
    want = _check_logits(model(example))
    try:
        with _ByteCounter() as counter:
            frontier = split.upstream(example)
        got = split.downstream({k: v.clone() for k, v in frontier.items()})  # clones: the downstream part may write into them
    except RegionError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the cut network means: do not cut
        raise _CannotSplit(f"the {split.kind} split fails on the example stimuli ({type(exc).__name__}: {exc})") from exc
    same = torch.equal(got, want) if got.device.type == "cpu" else (got.shape == want.shape and torch.allclose(got, want, rtol=1e-5, atol=1e-6))
    if not same:
        raise _CannotSplit(f"the {split.kind} split does not reproduce the model's output on the example stimuli")
    split.example_frontier, split.upstream_bytes = frontier, counter.total / example.shape[0]


def _is_chain(module: nn.Module) -> bool:
    """An ``nn.Sequential`` whose forward is the plain chain."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _flatten_chain(module: nn.Module) -> list[nn.Module]:
    if _is_chain(module):
        return [leaf for child in module._modules.values() if child is not None for leaf in _flatten_chain(child)]
    return [module]


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _storage(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - tensors without storage
        return None


class _ByteCounter(TorchFunctionMode):
    """Adds up the bytes of every new tensor that torch functions return (views not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if isinstance(out, (torch.Tensor, list, tuple, dict)):  # not sizes, dtypes, ...: nothing allocated
            outputs = list(_tensors(out))
            if outputs:
                inputs = {_storage(t) for t in _tensors((args, kwargs or {}))}
                self.total += sum(t.numel() * t.element_size() for t in outputs if _storage(t) not in inputs)
        return out


# ---------------------------------------------------------------- sequential


def _sequential_split(model: nn.Module, region: str, example: torch.Tensor | None) -> Split:
    parts = region.split(".")
    containers: list[nn.Module] = []
    m = model
    for name in parts:
        if not _is_chain(m):
            raise _CannotSplit("")  # not a chain: the fx split is tried next, silently
        containers.append(m)
        m = m._modules[name]  # type: ignore[assignment]
    if _count_uses(model, region) > 1:
        raise _CannotSplit(f"region {region!r} appears more than once in the model")
    region_module = m
    before: list[nn.Module] = []
    after: list[nn.Module] = []
    for container, name in zip(containers, parts):
        children = [(k, c) for k, c in container._modules.items() if c is not None]
        i = [k for k, _ in children].index(name)
        before += [c for _, c in children[:i]]
        after = [c for _, c in children[i + 1 :]] + after

    def up(x: torch.Tensor) -> dict[str, torch.Tensor]:
        for child in before:
            x = child(x)
        return {region: _check_output(region, region_module(x))}

    def down(values: dict[str, torch.Tensor]) -> torch.Tensor:
        h = values[region]
        for child in after:  # whole children, so that hooks on them still run
            h = child(h)
        return _check_logits(h)

    return Split("sequential", region, region, model=model, _up=up, _down=down,
                 downstream_modules=[leaf for c in after for leaf in _flatten_chain(c)])
