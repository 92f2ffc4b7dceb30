"""The ``"fx"`` cut: a model with a general ``forward``, traced by ``torch.fx`` with the region kept whole.

Upstream is every value that does not depend on the region's output; the frontier is those of
them that a node depending on it reads (a skip connection's input, for example). Values that are
not per-stimulus tensors (``x.size(0)``, a batch statistic) are recomputed downstream instead of
cached. See :func:`~neurorecord.lesion.split.split_at`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from ..errors import RegionError
from .split import Split, _CannotSplit, _check_logits, _module

__all__ = ["fx_split"]


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


def fx_split(model: nn.Module, region: str, example: torch.Tensor | None, keep: tuple[str, ...] = ()) -> Split:
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
