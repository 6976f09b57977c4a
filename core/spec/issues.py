"""Pydantic's validation errors as what a user can act on: a JSON path into what they sent
(`["model", "layers", 0, "units"]`) and a plain message. The API's 422s and the sweep checks
both speak this way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from core.errors import SpecIssue
from core.registry import squash


def clean_loc(loc: Sequence[Any], body: Any) -> list[Any]:
    """Drop FastAPI's 'body' prefix and pydantic's union-tag segments, so `loc` is a JSON path
    into `body` (`model.layers.0.dense.units` -> `model.layers.0.units`)."""
    parts = list(loc[1:]) if loc and loc[0] == "body" else list(loc)
    clean: list[Any] = []
    node = body
    for part in parts:
        tag = node.get("type", node.get("class_name")) if isinstance(node, dict) else None
        if (
            isinstance(node, dict)
            and isinstance(part, str)
            and part not in node
            and isinstance(tag, str)
            and squash(part) == squash(tag)
        ):
            continue  # the discriminator's tag, e.g. "dense" in model.layers.0.dense.units
        if (
            isinstance(node, dict)
            and "type" not in node
            and isinstance(node.get("config"), dict)
            and part not in node
            and part in node["config"]
        ):  # an argument inside Keras's serialized form {"class_name": ..., "config": {...}}
            clean.append("config")
            node = node["config"]
        clean.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return clean


def message(error: Mapping[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return f"malformed JSON: {error.get('ctx', {}).get('error', 'could not parse the body')}"
    if error["type"] == "missing":
        return "field required"
    if error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown type {ctx.get('tag')!r}; expected one of: {ctx.get('expected_tags')}"
    if error["type"] == "extra_forbidden":
        return "unknown field; check its spelling and the documented fields of this object"
    return str(error["msg"]).removeprefix("Value error, ")


def telling(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pydantic's errors less the fields of an object whose `type` is refused (an unknown loss,
    say): with no known type, it has no known fields, so they are not called unknown one by
    one; the refusal of its type says it all. An object with no `type` keeps them: one of its
    fields may be the misspelled `type` (`typ`)."""
    untyped = {
        tuple(e["loc"][:-1])
        for e in errors
        if tuple(e["loc"][-1:]) == ("type",) and e["type"] != "missing"
    }
    return [
        e
        for e in errors
        if not (e["type"] == "extra_forbidden" and tuple(e["loc"][:-1]) in untyped)
    ]


def issues_of(error: ValidationError, body: Any) -> list[SpecIssue]:
    """Every telling error of a pydantic validation of `body`, located in `body`."""
    return [
        SpecIssue(tuple(clean_loc(e["loc"], body)), message(e), e["type"])
        for e in telling(error.errors())
    ]
