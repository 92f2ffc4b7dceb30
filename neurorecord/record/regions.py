"""Tapping regions: capture the outputs of named modules during one forward pass.

Plain modules are tapped with forward hooks; TorchScript modules (which take no hooks) are
run child by child along their ``nn.Sequential`` containers. Once every region is captured,
the rest of the forward pass is skipped: nothing downstream of the deepest region is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import RegionError, did_you_mean

__all__ = ["RegionTap", "check_regions", "RegionLayout", "reduce_output", "reduce_time_output", "region_layout"]

REDUCTIONS = ("mean", "max", "center", "none")


class _StopForward(Exception):
    """Raised from a hook once every region is captured, to skip the rest of the network."""


def _is_script(module: nn.Module) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


def _script_recordable(model: nn.Module) -> list[str]:
    """Names of the modules of a TorchScript model reachable through Sequential containers."""
    names: list[str] = []

    def walk(module: nn.Module, prefix: str) -> None:
        if getattr(module, "original_name", "") != "Sequential":
            return
        for name, child in module.named_children():
            full = prefix + name
            names.append(full)
            walk(child, full + ".")

    walk(model, "")
    return names


def check_regions(model: nn.Module, regions: list[str]) -> None:
    """Check that every name in ``regions`` can be tapped in ``model``; touches nothing.

    Raises
    ------
    RegionError
        ``record.regions: no region named ...``, with the closest name and the valid ones, and
        ``loc`` pointing at the bad entry.

    Examples
    --------
    >>> from neurorecord.subjects import digits_mlp
    >>> check_regions(digits_mlp(), ["fc1", "fc9"])
    Traceback (most recent call last):
    ...
    neurorecord.errors.RegionError: record.regions: no region named 'fc9' in the subject (did you mean 'fc3'?); valid regions: flatten, fc1, fc1.linear, ...
    >>> check_regions(digits_mlp(), ["fc1", "fc3.relu"])
    """
    script = _is_script(model)
    valid = _script_recordable(model) if script else [n for n, _ in model.named_modules() if n]
    for i, region in enumerate(regions):
        if region not in valid:
            raise RegionError(_unknown_region_message(model, region, valid, script), loc=("record", "regions", i))


class RegionTap:
    """Capture named regions' outputs while inside a ``with`` block: ``tap(x) -> {region: tensor}``.

    The hooks exist only inside the ``with`` block: entering checks the names and registers
    them, leaving removes them (also when the block raises), so the subject has the hooks it
    had before. TorchScript modules take no hooks and are run child by child instead.

    Parameters
    ----------
    model
        The subject's module (plain or TorchScript).
    regions
        Names from ``model.named_modules()``.

    Examples
    --------
    >>> import torch
    >>> from neurorecord.subjects import digits_mlp
    >>> model = digits_mlp().eval()
    >>> with RegionTap(model, ["fc1", "fc2"]) as tap:
    ...     outputs = tap(torch.zeros(3, 1, 8, 8))
    >>> {k: tuple(v.shape) for k, v in outputs.items()}, len(model.fc1._forward_hooks)
    ({'fc1': (3, 100), 'fc2': (3, 100)}, 0)
    """

    def __init__(self, model: nn.Module, regions: list[str]) -> None:
        self.model = model
        self.regions = regions

    def __enter__(self) -> "RegionTap":
        self._regions = list(self.regions)
        check_regions(self.model, self._regions)
        self._script = _is_script(self.model)
        self._captured: dict[str, torch.Tensor] = {}
        self._stop_early = True
        self.output_element: dict[str, int | None] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        if not self._script:
            try:
                for region in self._regions:
                    self._handles.append(self.model.get_submodule(region).register_forward_hook(self._hook(region)))
            except BaseException:
                self._remove()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, region: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            self._calls[region] = self._calls.get(region, 0) + 1
            if region not in self._captured:
                self._captured[region] = self._as_tensor(region, output)
            if self._stop_early and len(self._captured) == len(self._regions):
                raise _StopForward

        return hook

    def _as_tensor(self, region: str, output: object) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            self.output_element[region] = None
            return output
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
            self.output_element[region] = 0
            return output[0]
        raise RegionError(
            f"record.regions: region {region!r} outputs a {type(output).__name__}, expected a tensor "
            "(or a tuple whose first element is a tensor)"
        )

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The regions' outputs for input ``x``; the forward pass stops after the deepest region."""
        return self._run(x, stop_early=True)[0]

    def with_output(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], Any]:
        """The regions' outputs and the subject's own output for ``x`` (the whole forward pass)."""
        return self._run(x, stop_early=False)

    def _run(self, x: torch.Tensor, stop_early: bool) -> tuple[dict[str, torch.Tensor], Any]:
        if not hasattr(self, "_handles"):
            raise RuntimeError("RegionTap records only inside a `with RegionTap(model, regions) as tap:` block")
        self._captured = {}
        self._calls: dict[str, int] = {}
        self._stop_early = stop_early
        output = None
        try:
            output = self._run_sequential(self.model, "", x) if self._script else self.model(x)
        except _StopForward:
            pass
        for i, region in enumerate(self._regions):
            if region not in self._captured:
                raise RegionError(f"record.regions: region {region!r} was never called during the forward pass (the subject's "
                                  "forward does not use it); record a module the forward pass runs", loc=("record", "regions", i))
            if self._calls.get(region, 1) > 1:
                raise RegionError(
                    f"record.regions: region {region!r} is called {self._calls[region]} times in one forward pass (one module "
                    "used at several places), so its units would be only one of those calls; record the modules around it, "
                    "or give each use its own module", loc=("record", "regions", i))
        captured, self._captured = self._captured, {}
        return {r: captured[r] for r in self._regions}, output

    def _run_sequential(self, module: nn.Module, prefix: str, x: torch.Tensor) -> torch.Tensor:
        for name, child in module.named_children():
            full = prefix + name
            wanted_inside = any(r.startswith(full + ".") and r not in self._captured for r in self._regions)
            x = self._run_sequential(child, full + ".", x) if wanted_inside else child(x)
            if full in self._regions and full not in self._captured:
                self._captured[full] = self._as_tensor(full, x)
                if self._stop_early and len(self._captured) == len(self._regions):
                    raise _StopForward
        return x


def _unknown_region_message(model: nn.Module, region: str, valid: list[str], script: bool) -> str:
    shown = ", ".join(valid[:80]) + (f", ... ({len(valid) - 80} more)" if len(valid) > 80 else "")
    if script and not valid:
        return (
            f"record.regions: cannot record {region!r}: this TorchScript subject's top module is a compiled "
            f"{getattr(model, 'original_name', 'module')}, not an nn.Sequential, and TorchScript takes no hooks, so none of "
            "its modules can be tapped; give the model as an entry point (module:callable) instead"
        )
    if script and region in {n for n, _ in model.named_modules()}:
        return (
            f"record.regions: region {region!r} is inside a compiled TorchScript module and cannot be tapped "
            f"(TorchScript takes no hooks; only modules reached through nn.Sequential containers can be recorded); "
            f"recordable regions: {shown}"
        )
    return f"record.regions: no region named {region!r} in the subject{did_you_mean(region, valid)}; valid regions: {shown}"


def reduce_output(output: torch.Tensor, reduce: str) -> torch.Tensor:
    """Turn one region's batch output into (batch, neuroid) float32.

    2-D outputs (batch, units) are kept. Conv outputs (batch, channel, [height,] width) are reduced
    over space: ``mean``, ``max``, ``center`` (the middle position), or ``none`` (one neuroid per
    channel and position, in channel-major order).

    >>> import torch
    >>> reduce_output(torch.arange(8.).reshape(1, 2, 2, 2), "mean")
    tensor([[1.5000, 5.5000]])
    """
    if output.ndim == 2:
        out = output
    elif output.ndim in (3, 4):
        spatial = tuple(range(2, output.ndim))
        if reduce == "mean":
            out = output.mean(dim=spatial, dtype=torch.float32)  # a bfloat16 map (record.dtype) averaged in float32
        elif reduce == "max":
            out = output.amax(dim=spatial)
        elif reduce == "center":
            out = output[(slice(None), slice(None), *(s // 2 for s in output.shape[2:]))]
        elif reduce == "none":
            out = output.reshape(output.shape[0], -1)
        else:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, found {reduce!r}")
    else:
        raise RegionError(
            f"record.regions: output of shape {tuple(output.shape)} cannot be recorded: expected (batch, units) "
            "or a conv output (batch, channels, [height,] width)"
        )
    return out if out.dtype == torch.float32 else out.float()


def reduce_time_output(output: torch.Tensor, reduce: str, steps: int) -> torch.Tensor:
    """Turn a time-resolved region's batch output (batch, steps, ...) into (batch, neuroid, steps).

    What follows the time dim is treated as one step's output by :func:`reduce_output` (units, or a
    conv output reduced over space).

    >>> import torch
    >>> reduce_time_output(torch.arange(6.).reshape(1, 3, 2), "mean", steps=3)
    tensor([[[0., 2., 4.],
             [1., 3., 5.]]])
    """
    if output.ndim < 3 or output.shape[1] != steps:
        raise RegionError(
            f"record.regions: output of shape {tuple(output.shape)} has no time dim: with record.time every recorded "
            f"region must output (batch, steps={steps}, ...), time second (batch_first for recurrent layers)"
        )
    batch = output.shape[0]
    flat = reduce_output(output.reshape(batch * steps, *output.shape[2:]), reduce)
    return flat.reshape(batch, steps, -1).transpose(1, 2)


@dataclass
class RegionLayout:
    """What one region's recording looks like: its neuroid coordinates and where it came from."""

    region: str
    module_type: str
    output_shape: tuple[int, ...]
    reduce: str
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    output_element: int | None = None

    @property
    def n_neuroid(self) -> int:
        return len(self.coords["neuroid_id"])


def region_layout(region: str, module: nn.Module, output: torch.Tensor, reduce: str, output_element: int | None = None) -> RegionLayout:
    """Neuroid coordinates for a region given one batch of its output.

    ``neuroid_id`` is ``region.channel`` or, with ``reduce: none`` on conv outputs,
    ``region.channel.y.x`` (``region.channel.x`` for 1-D convs).
    """
    shape = tuple(int(s) for s in output.shape[1:])
    coords: dict[str, np.ndarray] = {}
    if output.ndim == 2 or reduce != "none":
        channel = np.arange(shape[0], dtype=np.int64)
        coords["channel"] = channel
        if output.ndim >= 3 and reduce == "center":
            if output.ndim == 4:
                coords["channel_y"] = np.full(shape[0], shape[1] // 2, dtype=np.int64)
            coords["channel_x"] = np.full(shape[0], shape[-1] // 2, dtype=np.int64)
        ids = np.char.add(f"{region}.", channel.astype(str))
    else:
        grid = np.indices(shape).reshape(len(shape), -1).astype(np.int64)
        coords["channel"] = grid[0]
        ids = np.char.add(f"{region}.", grid[0].astype(str))
        if output.ndim == 4:
            coords["channel_y"] = grid[1]
            ids = np.char.add(np.char.add(ids, "."), grid[1].astype(str))
        coords["channel_x"] = grid[-1]
        ids = np.char.add(np.char.add(ids, "."), grid[-1].astype(str))
    coords = {"neuroid_id": ids.astype(object), "region": np.full(len(ids), region, dtype=object), **coords}
    return RegionLayout(region, type(module).__name__ if not _is_script(module) else str(getattr(module, "original_name", "ScriptModule")),
                        shape, reduce, coords, output_element)
