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

import itertools
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode

from ..errors import RegionError

__all__ = ["Split", "split_at", "downstream_regions", "UnsplittableModelWarning", "Edit"]

#: ``edit(region_output) -> lesioned output``: takes the region's output for ``S`` stimuli (or, in a
#: ``"full"`` split, ``n_copies * S`` rows) and returns ``n_copies * S`` rows, lesion-major.
Edit = Callable[[torch.Tensor], torch.Tensor]

KINDS = ("sequential", "fx", "full")


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
    #: measurements that hold as long as the model is unchanged (the sweep keeps the frontier's
    #: layout and its bytes per downstream row here); shared by every split of the same model, region and stimulus shape
    #: that :func:`split_at` returns while the model's structure stays the same (see its ``example``)
    measured: dict[Any, Any] = field(default_factory=dict, repr=False)

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
    full network (warning once with :class:`UnsplittableModelWarning`). Nothing is changed on the
    model; the caller sets eval mode and ``torch.inference_mode`` as it needs.

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
        ``example_frontier``, ``upstream_bytes``). The outcome of that check is remembered for
        the model (without keeping it alive) while its modules (and their train/eval flags),
        their parameters and buffers (identity, shape, dtype, device; their values do not
        matter), its forward hooks and forward methods are the same: a later call with stimuli of the same shape, dtype and device builds the split
        that passed (or falls back to ``"full"``) without checking again, and its
        ``example_frontier`` is then ``None``. Without an example, the fx split assumes the
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
    return _split(model, region, example, keep)


def _split(model: nn.Module, region: str, example: torch.Tensor | None, keep: Sequence[str]) -> Split:
    """:func:`split_at` for a region already checked."""
    builders = {"sequential": _sequential_split, "fx": partial(_fx_split, keep=tuple(keep))}
    key = None if example is None else (id(model), region, tuple(keep), tuple(example.shape[1:]), example.dtype, example.device)
    known = _VERIFIED.get(model, key)
    if known is None:
        reasons: list[str] = []
        for kind, build in builders.items():
            try:
                split = build(model, region, example)
                if example is not None:
                    _verify(split, model, example)
                    _VERIFIED.put(model, key, _Verified(kind, None, split.upstream_bytes, split.measured))
                return split
            except _CannotSplit as exc:
                reasons.append(str(exc))
        known = _Verified("full", "; ".join(r for r in reasons if r), 0.0, {})
        if key is not None:
            _VERIFIED.put(model, key, known)
    elif known.kind != "full":  # checked before, for this model as it is now
        split = builders[known.kind](model, region, example)
        split.upstream_bytes, split.measured = known.upstream_bytes, known.measured
        return split
    warnings.warn(
        f"lesion: the model ({type(model).__name__}) cannot be split at region {region!r} ({known.reason}); "
        "lesions will rerun the full network for every lesion",
        UnsplittableModelWarning,
        stacklevel=3,
    )
    return Split("full", region, None, reason=known.reason, model=model, measured=known.measured)


def downstream_regions(model: nn.Module, region: str, example: torch.Tensor) -> list[str]:
    """The modules downstream of ``region``: those whose output depends on the region's output.

    Found from the autograd graph of one forward pass of ``example`` in eval mode (with
    gradients, on a copy of the stimuli; the model is left in the train/eval mode it had, with no
    hook): a module is downstream when its output's graph reaches the region's output. The
    region itself, its ancestors (which contain it) and modules whose output is not a tensor are
    left out. A model that detaches values inside its forward hides the dependencies that run
    through them.

    Parameters
    ----------
    model
        The subject's module.
    region
        A name from ``model.named_modules()``.
    example
        One or a few stimuli (stimulus, ...).

    Returns
    -------
    list[str]
        Module names, in ``model.named_modules()`` order.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> downstream_regions(digits_mlp(), "fc2", torch.zeros(1, 1, 8, 8))
    ['fc3', 'fc3.linear', 'fc3.relu', 'out']
    """
    status = _downstream_status(model, region, example)
    return [name for name, (depends, output) in status.items() if depends and output == "Tensor"]


def _downstream_status(model: nn.Module, region: str, example: torch.Tensor) -> dict[str, tuple[bool, str]]:
    """For every module called in a forward pass of ``example`` (but ``region`` and its
    ancestors): (whether its output depends on the region's output, the output's type name)."""
    _check_region(model, region)
    target = _module(model, region)
    leaves: list[torch.Tensor] = []
    graphs: dict[str, tuple[list[Any], str]] = {}

    def region_hook(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        leaf = _check_output(region, output).detach().requires_grad_(True)
        leaves.append(leaf)
        return leaf.clone()  # not the leaf itself: a later in-place operation must not write into it

    def record(name: str, module: nn.Module, inputs: Any, output: Any) -> None:
        found = graphs.setdefault(name, ([], type(output).__name__))[0]
        values = output if isinstance(output, (tuple, list)) else (output,)
        found.extend(v.grad_fn for v in values if isinstance(v, torch.Tensor))

    candidates = [(n, m) for n, m in model.named_modules() if n and m is not target and not region.startswith(n + ".")]
    modes = [(m, m.training) for m in model.modules()]
    handles = [target.register_forward_hook(region_hook)]
    handles += [m.register_forward_hook(partial(record, n)) for n, m in candidates]
    try:
        model.eval()
        with torch.inference_mode(False), torch.enable_grad():
            model(example.clone())
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
    reached: dict[int, bool] = {}
    targets = {id(leaf) for leaf in leaves}

    def depends(node: Any) -> bool:
        # iterative depth-first search with memo: does the graph below ``node`` reach a leaf?
        stack = [(node, False)]
        while stack:
            current, expanded = stack.pop()
            if current is None or id(current) in reached:
                continue
            children = [c for c, _ in current.next_functions if c is not None]
            if expanded:
                variable = getattr(current, "variable", None)
                reached[id(current)] = (variable is not None and id(variable) in targets) or any(reached.get(id(c), False) for c in children)
            else:
                stack.append((current, True))
                stack.extend((c, False) for c in children if id(c) not in reached)
        return node is not None and reached[id(node)]

    return {n: (any(depends(g) for g in graphs[n][0]), graphs[n][1]) for n, _ in candidates if n in graphs}


# ---------------------------------------------------------------- verified splits


@dataclass
class _Verified:
    """What checking a split found for one model state, region and stimulus shape."""

    kind: str
    reason: str | None
    upstream_bytes: float
    measured: dict[Any, Any]


class _VerifiedSplits:
    """The last ``size`` checks of :func:`split_at`, each valid while its model is unchanged.

    An entry holds a weak reference to its model (so it keeps no model alive) and a fingerprint
    of the model's state; a lookup whose model is gone or whose fingerprint differs misses.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.entries: OrderedDict[Any, tuple[weakref.ref[nn.Module], tuple[Any, ...], _Verified]] = OrderedDict()

    def get(self, model: nn.Module, key: Any) -> _Verified | None:
        entry = self.entries.get(key) if key is not None else None
        if entry is None:
            return None
        ref, fingerprint, verified = entry
        if ref() is not model or fingerprint != _fingerprint(model):
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return verified

    def put(self, model: nn.Module, key: Any, verified: _Verified) -> None:
        self.entries[key] = (weakref.ref(model), _fingerprint(model), verified)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


def _fingerprint(model: nn.Module) -> tuple[Any, ...]:
    """What decides where and whether a network can be cut: every module (identity, type,
    train/eval flag, forward hooks, a forward set on the instance), every parameter and buffer
    (identity, shape, dtype, device: not their values, which change what the network computes
    but not how its parts connect) and the global forward hooks."""
    from torch.nn.modules import module as torch_module

    modules, tensors = [], []
    for m in every_module(model):
        modules.append((id(m), type(m), m.training, tuple(m._forward_hooks), tuple(m._forward_pre_hooks), id(m.__dict__.get("forward"))))
        tensors.extend((id(t), t.shape, t.dtype, t.device) for t in itertools.chain(m._parameters.values(), m._buffers.values()) if t is not None)
    hooks = (tuple(torch_module._global_forward_hooks), tuple(torch_module._global_forward_pre_hooks))
    return tuple(modules), tuple(tensors), hooks


_VERIFIED = _VerifiedSplits()


# ---------------------------------------------------------------- helpers


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
    return sum(1 for m in every_module(model) if m is target)


def every_module(model: nn.Module) -> list[nn.Module]:
    """Every module of ``model``, itself first, depth first, once per path that reaches it (as
    ``named_modules(remove_duplicate=False)``, without the names; several times faster, which
    counts in calls that take a millisecond)."""
    out: list[nn.Module] = []
    stack = [model]
    while stack:
        m = stack.pop()
        out.append(m)
        stack.extend(reversed([c for c in m._modules.values() if c is not None]))
    return out


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


# ---------------------------------------------------------------- torch.fx


class _RegionTracer(fx.Tracer):
    """Keeps the region (and the modules in ``keep``) as one ``call_module`` node each, and traces
    into the region's ancestors."""

    def __init__(self, region: str, region_module: nn.Module, keep: tuple[nn.Module, ...] = ()) -> None:
        super().__init__()
        self.region = region
        self.region_module = region_module
        self.keep = keep

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if m is self.region_module or any(m is k for k in self.keep):
            return True
        if self.region.startswith(module_qualified_name + ".") or any(sub is self.region_module for sub in m.modules()):
            return False
        return super().is_leaf_module(m, module_qualified_name)


class _Recorder(fx.Interpreter):
    """Runs a graph and keeps every node's value."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm, garbage_collect_values=False)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.values[n] = out
        return out


def _fx_split(model: nn.Module, region: str, example: torch.Tensor | None, keep: tuple[str, ...] = ()) -> Split:
    region_module = _module(model, region)
    tracer = _RegionTracer(region, region_module, tuple(_module(model, k) for k in keep))
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # noqa: BLE001 - tracing fails in many ways (data-dependent control flow, ...)
        raise _CannotSplit(f"torch.fx cannot trace it: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    gm = fx.GraphModule(model, graph)
    nodes = list(graph.nodes)
    region_nodes = [n for n in nodes if n.op == "call_module" and _safe_get(model, n.target) is region_module]
    if len(region_nodes) != 1:
        if not region_nodes:
            raise RegionError(f"lesion.region: region {region!r} is never called during the forward pass")
        raise _CannotSplit(f"region {region!r} is called {len(region_nodes)} times in the forward pass")
    rnode = region_nodes[0]

    on_input: set[fx.Node] = set()  # nodes whose value depends on the stimuli
    after: set[fx.Node] = set()  # nodes whose value depends on the region's output
    for n in nodes:
        ins = n.all_input_nodes
        if n.op == "placeholder" or any(i in on_input for i in ins):
            on_input.add(n)
        if any(i is rnode or i in after for i in ins):
            after.add(n)
    output = next(n for n in nodes if n.op == "output")
    downstream = set(after) | {output}

    batched = _batched_nodes(gm, example) if example is not None else None
    # the frontier: values that downstream nodes read and that are computed upstream; a value
    # that is not a per-stimulus tensor (``x.size(0)``, a batch statistic) moves downstream
    while True:
        frontier = {i for n in downstream for i in n.all_input_nodes if i not in downstream and i in on_input}
        frontier.add(rnode)
        movable = {f for f in frontier if f is not rnode and batched is not None and f not in batched}
        if not movable:
            break
        if any(f.op == "placeholder" for f in movable):
            raise _CannotSplit("the model's input is not a per-stimulus tensor")
        downstream |= movable
    if batched is not None and rnode not in batched:
        raise RegionError(f"lesion.region: region {region!r} does not output one row per stimulus; it cannot be lesioned per stimulus")
    order = {n: i for i, n in enumerate(nodes)}
    frontier_nodes = sorted(frontier, key=order.__getitem__)
    keys = [n.name for n in frontier_nodes]

    # upstream graph: the original placeholders, then what the frontier needs
    needed: set[fx.Node] = set()
    stack = list(frontier_nodes)
    while stack:
        n = stack.pop()
        if n not in needed:
            needed.add(n)
            stack.extend(n.all_input_nodes)
    up_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in nodes:
        if n.op == "placeholder" or n in needed:
            env[n] = up_graph.node_copy(n, env.__getitem__)
    up_graph.output(tuple(env[n] for n in frontier_nodes))
    up_gm = fx.GraphModule(model, up_graph)

    # downstream graph: one placeholder per frontier value, then the downstream nodes (and the
    # constants, such as parameters read with get_attr, that they read)
    down_graph = fx.Graph()
    env = {}
    for n, key in zip(frontier_nodes, keys):
        env[n] = down_graph.placeholder(key)
    constants: set[fx.Node] = set()
    stack = [i for n in downstream for i in n.all_input_nodes if i not in downstream and i not in frontier]
    while stack:
        n = stack.pop()
        if n in on_input:  # pragma: no cover - guarded by the frontier construction
            raise _CannotSplit(f"internal: node {n.name} is neither upstream nor downstream")
        if n not in constants:
            constants.add(n)
            stack.extend(n.all_input_nodes)
    for n in nodes:
        if n in constants or (n in downstream and n is not output):
            env[n] = down_graph.node_copy(n, env.__getitem__)
    down_graph.output(fx.node.map_arg(output.args[0], env.__getitem__))
    down_gm = fx.GraphModule(model, down_graph)

    def up(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(keys, up_gm(x)))

    def down(values: dict[str, torch.Tensor]) -> torch.Tensor:
        return _check_logits(down_gm(*(values[k] for k in keys)))

    del gm
    return Split("fx", region, rnode.name, model=model, _up=up, _down=down)


def _safe_get(model: nn.Module, target: Any) -> nn.Module | None:
    try:
        return model.get_submodule(str(target))
    except AttributeError:
        return None


def _batched_nodes(gm: fx.GraphModule, example: torch.Tensor) -> set[fx.Node]:
    """Nodes whose value is a tensor with one row per stimulus (checked at two batch sizes)."""
    first = example[:1]
    shapes = []
    for n in (2, 3):
        rec = _Recorder(gm)
        try:
            rec.run(first.expand(n, *first.shape[1:]).contiguous())
        except Exception as exc:  # noqa: BLE001
            raise _CannotSplit(f"the traced graph fails on the example stimuli ({type(exc).__name__}: {exc})") from exc
        shapes.append({node: v.shape[0] for node, v in rec.values.items() if isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == n})
    return {node for node in shapes[0] if node in shapes[1]}
