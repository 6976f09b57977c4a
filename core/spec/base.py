"""Shared pieces of the spec models: the frozen base and `type` normalisation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from core.registry import squash


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def normalize_type(value: Any, names: list[str]) -> Any:
    """Accept `"adam"` for `{"type": "adam"}` and Keras's class spelling (`Conv2D` → `conv2d`).

    Unknown names are left for the discriminated union to refuse with the list of known tags.
    """
    if isinstance(value, str):
        value = {"type": value}
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        name = value["type"]
        if name not in names and name[:1].isupper() and "_" not in name:
            match = [n for n in names if squash(n) == name.lower()]
            if match:
                value = {**value, "type": match[0]}
    return value
