"""YAML request bodies: a spec may be sent as `application/yaml` as well as JSON.

The body is turned into the equivalent JSON before routing (see api/body_limits.py), so every
route, its validation and its OpenAPI schema stay JSON-only.

Only what JSON can say is accepted. A first pass over the parser's events, which builds
nothing, refuses anchors and aliases (a spec never needs them, and nested aliases expand
exponentially: "billion laughs"), nesting deeper than the limit and more values than the limit;
only then is the document built, by libyaml's safe loader where it is installed.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from api.problems import BodyError

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}

_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Parser):  # type: ignore[misc,valid-type]
    """The safe loader, with YAML 1.1 timestamps (`2024-01-01`) kept as the text they are."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _int(loader: Any, node: Any) -> int:
    """YAML 1.1 integers, without base 60 (`1:2:3`, whose conversion is quadratic in its
    length) and without more digits than Python converts."""
    text = str(node.value)
    if ":" in text or len(text) > 4300:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            "expected an integer of at most 4,300 digits, in base 10, 16, 8 or 2 (not base 60)",
            node.start_mark,
        )
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int)


def yaml_to_json(body: bytes, *, max_depth: int, max_nodes: int) -> bytes:
    """The JSON text of the YAML document `body` (empty for an empty document), or BodyError."""
    _check_events(body, max_depth=max_depth, max_nodes=max_nodes)
    try:
        document: Any = yaml.load(body, Loader=_Loader)  # _Loader is a safe loader
    except yaml.YAMLError as e:
        raise _malformed(e) from e
    except ValueError as e:  # e.g. an integer longer than Python converts
        raise BodyError(f"malformed YAML: {e}", "yaml_invalid") from e
    if document is None:
        return b""
    try:
        return json.dumps(document, default=_not_json).encode()
    except (TypeError, ValueError) as e:
        raise BodyError(f"malformed YAML: {e}", "yaml_invalid") from e


def _check_events(body: bytes, *, max_depth: int, max_nodes: int) -> None:
    depth = nodes = 0
    try:
        for event in yaml.parse(body, Loader=_Parser):
            if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                raise _refused(
                    f"YAML anchors and aliases are not accepted (found {sign}{event.anchor}); "
                    "write each value out in full",
                    "yaml_alias",
                    event,
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise _refused(_too_deep(max_depth), "body_too_deep", event)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > max_nodes:
                    raise _refused(
                        f"the body holds more than {max_nodes:,} values (EPOCHAL_MAX_YAML_NODES)",
                        "yaml_too_many_nodes",
                        event,
                    )
    except yaml.YAMLError as e:
        error = _malformed(e)
        if "maximum nesting depth" in error.msg:  # libyaml's own limit, met while reading ahead
            error = BodyError(_too_deep(max_depth), "body_too_deep", error.line, error.column)
        raise error from e


def _too_deep(max_depth: int) -> str:
    return f"the body is nested deeper than {max_depth} levels (EPOCHAL_MAX_BODY_DEPTH)"


def _refused(msg: str, type: str, event: yaml.Event) -> BodyError:
    mark = event.start_mark
    return BodyError(msg, type, mark.line + 1, mark.column + 1)


def _malformed(e: yaml.YAMLError) -> BodyError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = (mark.line + 1, mark.column + 1) if mark is not None else ()
    problem = getattr(e, "problem", None) or str(e)
    if isinstance(e, yaml.reader.ReaderError):  # not UTF-8, or a control character
        problem, where = str(e).splitlines()[0], ()
    return BodyError(f"malformed YAML: {problem}", "yaml_invalid", *where)


def _not_json(value: Any) -> Any:
    raise TypeError(f"a {type(value).__name__} value has no JSON equivalent")
