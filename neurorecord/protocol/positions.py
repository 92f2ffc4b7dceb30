"""Line and column of a key path in a protocol's YAML text."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["position"]


def position(root: yaml.Node | None, loc: tuple[Any, ...], key: bool = False) -> str:
    """``:line:col`` of the YAML node at ``loc`` (of its key when ``key``), or ``""``."""
    node, key_node = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == part:
                    node, key_node = v, k
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node, key_node = node.value[part], None
        else:
            break
    target = key_node if key and key_node is not None else node
    if target is None:
        return ""
    return f":{target.start_mark.line + 1}:{target.start_mark.column + 1}"
