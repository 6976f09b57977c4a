"""The light client's models (client/src/epochal_client/models.py) mirror the API's response
schemas by hand, since the client never imports the server. This compares them with the API's own
OpenAPI document: every field of a response schema must be a field of its client model, and a
field the client requires must be one the API sends. Nested schemas are followed through the
fields (JobPage.items -> JobOut -> JobWarningOut), so only the top-level pairs are listed here.
"""

from __future__ import annotations

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
