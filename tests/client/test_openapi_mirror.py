"""The light client's models (client/src/epochal_client/models.py) mirror the API's response
schemas by hand, since the client never imports the server. This compares them with the API's own
OpenAPI document: every field of a response schema must be a field of its client model, a field
the client requires must be one the API sends, and what the API may send in a field the client
must accept, at a coarse level (string, integer, number, boolean, array, object, null: a client
`float` accepts an integer, a client `Any` anything). Nested schemas are followed through the
fields (JobPage.items -> JobOut -> JobWarningOut), so only the top-level pairs are listed here.
"""

from __future__ import annotations

import datetime
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import epochal_client as c
from api.app import create_app
from tests.conftest import make_settings

# client model -> the API's response schema (components/schemas) that it mirrors
MIRRORS: dict[type[BaseModel], str] = {
    c.Job: "JobOut",
    c.Page: "JobPage",
    c.Series: "SeriesOut",
    c.Comparison: "ComparisonOut",
    c.Worker: "WorkerOut",
    c.Queue: "QueueOut",
    c.Sweep: "SweepOut",
    c.SweepPage: "SweepPage",
    c.Leaderboard: "LeaderboardOut",
    c.Dataset: "DatasetOut",
    c.Evaluation: "EvaluateOut",
    c.Prediction: "PredictOut",
}


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    # Never connected to: the document is built from the routes alone.
    settings = make_settings(f"sqlite:///{tmp / 'x.db'}", "redis://127.0.0.1:1/0", tmp)
    return create_app(settings).openapi()["components"]["schemas"]


def refs(schema: dict[str, Any]) -> set[str]:
    """The component names a property's schema refers to (through anyOf, items, maps)."""
    found: set[str] = set()
    if "$ref" in schema:
        found.add(schema["$ref"].rsplit("/", 1)[-1])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            found |= refs(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found |= refs(schema[key])
    return found


def models_in(annotation: Any) -> set[type[BaseModel]]:
    """The pydantic models an annotation holds (list[Job] | None -> {Job})."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    found: set[type[BaseModel]] = set()
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found |= models_in(arg)
    return found


KINDS = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
PYTHON_KINDS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
    type(None): "null",
    datetime.datetime: "string",  # sent as an ISO 8601 string
}


def schema_kinds(schema: dict[str, Any], schemas: dict[str, Any]) -> frozenset[str]:
    """What JSON a property's schema allows, coarsely; every kind for an unconstrained one."""
    if "$ref" in schema:
        return schema_kinds(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            kinds = frozenset().union(*(schema_kinds(sub, schemas) for sub in schema[key]))
            # `float | str`: the API's number with NaN and infinities as "NaN"/"Infinity"
            # (api.schemas.json_float), which a client float parses.
            return kinds - {"string"} if {"number", "string"} <= kinds else kinds
    if "allOf" in schema:
        return frozenset.intersection(*(schema_kinds(sub, schemas) for sub in schema["allOf"]))
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        return frozenset(PYTHON_KINDS[type(v)] for v in values)
    kind = schema.get("type")
    if kind is None:
        return frozenset({"object"}) if "properties" in schema else KINDS
    return frozenset(kind if isinstance(kind, list) else [kind])


def annotation_kinds(annotation: Any) -> frozenset[str]:
    """What JSON a client field's annotation accepts, coarsely (a float also takes integers)."""
    if annotation is Any:
        return KINDS
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return frozenset({"object"})
    origin = typing.get_origin(annotation)
    if isinstance(annotation, types.UnionType) or origin is typing.Union:
        return frozenset().union(*(annotation_kinds(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return frozenset(PYTHON_KINDS[type(v)] for v in typing.get_args(annotation))
    kind = PYTHON_KINDS[origin or annotation]
    return frozenset({kind, "integer"}) if kind == "number" else frozenset({kind})


def drift(model: type[BaseModel], name: str, schemas: dict[str, Any]) -> list[str]:
    """What the client's `model` lacks or requires beyond the API's schema `name`, recursively."""
    problems: list[str] = []
    seen: set[tuple[type[BaseModel], str]] = set()
    todo = [(model, name)]
    while todo:
        model, name = todo.pop()
        if (model, name) in seen:
            continue
        seen.add((model, name))
        schema = schemas[name]
        properties = schema.get("properties", {})
        fields = model.model_fields
        problems += [
            f"{model.__name__} lacks {name}.{field}"
            for field in sorted(set(properties) - set(fields))
        ]
        problems += [
            f"{model.__name__}.{field} is required, but {name} has no such field"
            for field, info in sorted(fields.items())
            if info.is_required() and field not in properties
        ]
        for field in sorted(set(properties) & set(fields)):
            sent = schema_kinds(properties[field], schemas)
            if unaccepted := sent - annotation_kinds(fields[field].annotation):
                problems.append(
                    f"{model.__name__}.{field} does not accept {sorted(unaccepted)} "
                    f"that {name}.{field} may hold"
                )
            nested_schemas = refs(properties[field])
            nested_models = models_in(fields[field].annotation)
            if nested_schemas and not nested_models:
                problems.append(f"{model.__name__}.{field} is untyped; {name} has {nested_schemas}")
            if len(nested_schemas) == 1 and len(nested_models) == 1:
                todo.append((next(iter(nested_models)), next(iter(nested_schemas))))
    return problems


@pytest.mark.parametrize("model", list(MIRRORS), ids=lambda m: m.__name__)
def test_the_client_model_has_every_field_of_the_api_schema(
    model: type[BaseModel], schemas: dict[str, Any]
) -> None:
    assert drift(model, MIRRORS[model], schemas) == []


def test_a_field_the_api_adds_is_drift(schemas: dict[str, Any], tmp_path: Path) -> None:
    """The check can fail: a JobOut with one more field, nested in a page, is reported."""
    changed = {**schemas, "JobOut": {**schemas["JobOut"]}}
    changed["JobOut"]["properties"] = {
        **schemas["JobOut"]["properties"],
        "owner": {"type": "string"},
    }
    assert drift(c.Page, "JobPage", changed) == ["Job lacks JobOut.owner"]


def test_every_job_field_of_the_issue_is_mirrored() -> None:
    """The fields the client once lacked (issue 13)."""
    assert {"checkpoint", "init_from", "sweep_params", "source_job_id"} <= set(c.Job.model_fields)


def test_a_type_the_client_does_not_accept_is_drift(schemas: dict[str, Any]) -> None:
    """The check can fail: an integer field the API turns into a string, and a field it makes
    nullable, are reported."""
    changed = {**schemas, "JobOut": {**schemas["JobOut"]}}
    changed["JobOut"]["properties"] = {
        **schemas["JobOut"]["properties"],
        "attempts": {"type": "string"},
        "status": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    }
    assert sorted(drift(c.Job, "JobOut", changed)) == [
        "Job.attempts does not accept ['string'] that JobOut.attempts may hold",
        "Job.status does not accept ['null'] that JobOut.status may hold",
    ]
