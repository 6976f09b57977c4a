"""Spec values set by path: `model.layers.0.units=64` (or `model.layers[0].units`), as the
API's clone overrides and sweep parameters name them: the server's `core/spec/paths.py` imports
these, so the rules and the messages are the same on both sides.

A path may add a key to a mapping (a spec written by hand leaves defaults out), but not an
item to a list, and may not pass through a scalar.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_STEP = re.compile(rf"\.({_KEY})|\[(\d+)\]|\.(\d+)")
_FIRST = re.compile(_KEY)
EXAMPLE = "training.optimizer.learning_rate or model.layers.0.units"

Path = tuple[str | int, ...]


def parse_path(text: str) -> Path:
    """`model.layers.0.units` -> ("model", "layers", 0, "units"); ValueError on anything else."""
    first = _FIRST.match(text)
    if first is None:
        raise ValueError(f"{text!r} is not a spec path; expected one such as {EXAMPLE}")
    path: list[str | int] = [first.group()]
    at = first.end()
    while at < len(text):
        step = _STEP.match(text, at)
        if step is None:
            raise ValueError(f"{text!r} is not a spec path; expected one such as {EXAMPLE}")
        key, index, dotted = step.groups()
        path.append(key if key is not None else int(index if index is not None else dotted))
        at = step.end()
    return tuple(path)


def parse_assignment(text: str) -> tuple[str, Any]:
    """`path=value` -> (path, value), the value read as YAML: `3` is a number, `true` a bool,
    `[a, b]` a list, `adam` a string. ValueError naming what is wrong."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ValueError(f"expected path=value such as training.epochs=5; received {text!r}")
    parse_path(path)
    try:
        value = yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{path}: the value {raw!r} is not YAML: {problem}") from None
    return path, value


def parse_assignments(texts: Iterable[str]) -> dict[str, Any]:
    """Each `path=value`, in order (a later one for the same path wins)."""
    return dict(parse_assignment(t) for t in texts)


def with_values(spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `spec` with each `path: value` set. ValueError naming the path."""
    result = copy.deepcopy(dict(spec))
    for text, value in values.items():
        _set(result, parse_path(text), copy.deepcopy(value), text)
    return result


def format_path(path: Path) -> str:
    """("model", "layers", 0, "units") -> `model.layers[0].units`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _set(node: Any, path: Path, value: Any, text: str) -> None:
    for depth, part in enumerate(path):
        where = format_path(path[:depth]) or "the spec"
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ValueError(f"{text}: {where} is not a list")
            if part >= len(node):
                raise ValueError(f"{text}: {where} has {len(node)} items, no [{part}]")
        elif not isinstance(node, dict):
            raise ValueError(f"{text}: {where} is not an object")
        if depth == len(path) - 1:
            node[part] = value
        elif isinstance(part, str) and part not in node:
            node[part] = {}
            node = node[part]
        else:
            node = node[part]
