"""Paths into a spec's JSON: `model.layers[0].units` names one value.

Comparison flattens specs into such paths, job filters read values at them, and clone overrides
and sweep parameters write values at them. Parsing and setting them is the client's
(`epochal_client.overrides`, which `epochal --set` uses): one set of rules and messages.
"""

from __future__ import annotations

from typing import Any

from epochal_client.overrides import Path, format_path, parse_path, with_values

__all__ = ["Path", "flatten", "format_path", "parse_path", "with_values"]


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
