"""Paths into a spec's JSON: `model.layers[0].units` names one value.

Comparison flattens specs into such paths, job filters read values at them, and clone overrides
and sweep parameters write values at them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_STEP = re.compile(rf"\.({_KEY})|\[(\d+)\]|\.(\d+)")
_FIRST = re.compile(_KEY)

Path = tuple[str | int, ...]


def parse_path(text: str) -> Path:
    """`model.layers[0].units` (or `model.layers.0.units`) -> ("model", "layers", 0, "units").

    Raises ValueError on anything else."""
    first = _FIRST.match(text)
    if first is None:
        raise ValueError(text)
    path: list[str | int] = [first.group()]
    at = first.end()
    while at < len(text):
        step = _STEP.match(text, at)
        if step is None:
            raise ValueError(text)
        key, index, dotted = step.groups()
        path.append(key if key is not None else int(index if index is not None else dotted))
        at = step.end()
    return tuple(path)


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves by path: nested keys joined with ".", list items as "[i]". An empty dict or list
    is a leaf, so `[]` against `["accuracy"]` still shows as a difference."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and value:
        flat = {}
        for i, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}[{i}]"))
        return flat
    return {prefix: value}


def with_values(spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `spec` with each `path: value` of `values` set.

    A path may add a key to an object (a spec written by hand leaves defaults out) but not an
    item to a list, and may not pass through a scalar. Raises ValueError naming the path."""
    result = copy.deepcopy(dict(spec))
    for text, value in values.items():
        try:
            path = parse_path(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a spec path; expected one such as "
                "training.optimizer.learning_rate or model.layers[0].units"
            ) from None
        _set(result, path, copy.deepcopy(value), text)
    return result


def _set(node: Any, path: Path, value: Any, text: str) -> None:
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = format_path(path[:depth]) or "the spec"
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ValueError(f"{text}: {where} is not a list")
            if part >= len(node):
                raise ValueError(f"{text}: {where} has {len(node)} items, no [{part}]")
        elif not isinstance(node, dict):
            raise ValueError(f"{text}: {where} is not an object")
        if last:
            node[part] = value
        elif isinstance(part, str) and part not in node:
            node[part] = {}
            node = node[part]
        else:
            node = node[part]
