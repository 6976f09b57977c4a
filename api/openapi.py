"""The OpenAPI document is the contract: every status a route can answer is declared, with the
problem+json body it carries, so schema-driven tools (schemathesis, generated clients) agree with
the API.

The statuses come from one place: `ROUTE_CODES` names the error codes (api/problems.py's
`STATUS_OF`) each route can raise itself; `COMMON` adds the ones every /v1 route answers
(the caller's key, its role, the store or broker down), the ones every route with a body answers
(size, content type, validation) and the ones submissions answer (quota). `document(app)` writes
them into the document as FastAPI first builds it.

`allow_header` gives the methods a path accepts across all its operations, for `Allow` on a 405.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.problems import MEDIA_TYPE, STATUS_OF, problem
from api.routes.models import PredictIn


class ProblemIssue(BaseModel):
    loc: list[str | int] = Field(description="where: a path into the request (body, query, …)")
    msg: str = Field(description="what was expected, and what was received")
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 application/problem+json."""

    type: str = Field(description="urn:epochal:problem:<code>")
    title: str
    status: int
    detail: str
    errors: list[ProblemIssue] | None = Field(
        None, description="each problem found in the request (validation errors)"
    )


# Codes every /v1 route can answer, by kind of route.
V1 = ("unauthorized", "forbidden", "store_unavailable", "store_busy")
WRITES = ("overloaded",)  # a write past EPOCHAL_MAX_INFLIGHT_WRITES
BODY = ("malformed_body", "too_large", "unsupported_media_type", "invalid_request")
PARAMS = ("invalid_request",)
SUBMISSION = ("quota_exceeded", "request_in_progress")  # a quota; a repeated Idempotency-Key

# A POST without a body still says it is JSON (api/browsers.py: a web page could send a POST
# without a Content-Type, or as text/plain, from any site): `{}`, which the route ignores.
# Bodies a route reads itself (to take other types too): their schemas join the components.
BODIES_READ_BY_HAND: tuple[type[BaseModel], ...] = (PredictIn,)
EMPTY_JSON_BODY = {
    "required": True,
    "description": "no content: send `{}` as application/json",
    "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
}

# Statuses of codes raised outside api/problems.py's table.
EXTRA_STATUS: dict[str, tuple[int, str]] = {
    "malformed_body": (400, "The body cannot be parsed"),  # FastAPI's own, for broken JSON
}

# (method, path) -> the error codes the route itself can raise.
ROUTE_CODES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/readyz"): ("not_ready",),
    ("GET", "/metrics"): ("unauthorized", "forbidden"),
    ("GET", "/v1/workers"): (),
    ("GET", "/v1/queues"): (),
    ("POST", "/v1/jobs"): ("invalid_spec", "unknown_name", "broker_unavailable", *SUBMISSION),
    ("GET", "/v1/jobs"): PARAMS,
    ("GET", "/v1/jobs/{job_id}"): ("not_found",),
    ("DELETE", "/v1/jobs/{job_id}"): ("not_found", "conflict"),
    ("POST", "/v1/jobs/{job_id}/cancel"): ("not_found", "conflict"),
    ("GET", "/v1/jobs/{job_id}/metrics"): ("not_found", *PARAMS),
    ("GET", "/v1/jobs/{job_id}/events"): ("not_found", *PARAMS),
    ("GET", "/v1/jobs/{job_id}/model"): ("not_found", "conflict", "not_exportable", *PARAMS),
    ("POST", "/v1/jobs/{job_id}/predict"): ("not_found", "conflict"),
    ("POST", "/v1/jobs/{job_id}/evaluate"): ("not_found", "conflict", "invalid_upload"),
    ("POST", "/v1/jobs/{job_id}/resume"): (
        "not_found",
        "conflict",
        "invalid_spec",
        "broker_unavailable",
        *SUBMISSION,
    ),
    ("POST", "/v1/jobs/{job_id}/clone"): (
        "not_found",
        "conflict",
        "invalid_spec",
        "broker_unavailable",
        *SUBMISSION,
    ),
    ("GET", "/v1/datasets"): (),
    ("GET", "/v1/datasets/{name}"): ("not_found",),
    ("POST", "/v1/datasets"): (
        "invalid_upload",
        "unsupported_format",
        "timed_out",
        "invalid_argument",
        *SUBMISSION,
    ),
    ("DELETE", "/v1/datasets/{name}"): ("not_found", "conflict"),
    ("GET", "/v1/compare"): ("not_found", *PARAMS),
    ("POST", "/v1/sweeps"): ("invalid_sweep", "broker_unavailable", *SUBMISSION),
    ("GET", "/v1/sweeps"): PARAMS,
    ("GET", "/v1/sweeps/{sweep_id}"): ("not_found",),
    ("DELETE", "/v1/sweeps/{sweep_id}"): ("not_found", "conflict"),
    ("POST", "/v1/keys"): ("invalid_argument",),
    ("GET", "/v1/keys"): (),
    ("DELETE", "/v1/keys/{key_id}"): ("not_found",),
    ("GET", "/v1/sweeps/{sweep_id}/leaderboard"): ("not_found", *PARAMS),
    ("POST", "/v1/sweeps/{sweep_id}/pause"): ("not_found", "conflict"),
    ("POST", "/v1/sweeps/{sweep_id}/resume"): ("not_found", "conflict", *SUBMISSION),
    ("POST", "/v1/sweeps/{sweep_id}/cancel"): ("not_found", "conflict"),
    ("POST", "/v1/specs/from-keras"): ("invalid_spec", "unknown_name"),
}


def status_of(code: str) -> tuple[int, str]:
    return STATUS_OF.get(code) or EXTRA_STATUS[code]


def codes_for(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """Every error code the operation can answer: its own, then the common ones for its kind."""
    codes = list(ROUTE_CODES.get((method, path), ()))
    if path.startswith("/v1/"):
        codes += V1
        if method != "GET":
            codes += WRITES
        if "requestBody" in operation:
            codes += BODY
    return codes


def problem_responses(codes: list[str]) -> dict[str, dict[str, Any]]:
    """OpenAPI `responses` entries: each status once, its titles listed, as problem+json."""
    titles: dict[int, list[str]] = {}
    for code in codes:
        status, title = status_of(code)
        titles.setdefault(status, [])
        if title not in titles[status]:
            titles[status].append(title)
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        str(status): {"description": "; ".join(names), "content": content}
        for status, names in sorted(titles.items())
    }


def document(app: FastAPI) -> None:
    """Declare each operation's error statuses in the app's OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            defs = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(defs.pop("$defs", {}))
            schemas["Problem"] = defs
            for model in BODIES_READ_BY_HAND:
                schemas[model.__name__] = model.model_json_schema()
            for path, item in schema.get("paths", {}).items():
                for method, operation in item.items():
                    if method == "post" and path.startswith("/v1/"):
                        operation.setdefault("requestBody", EMPTY_JSON_BODY)
                    responses = operation.setdefault("responses", {})
                    # FastAPI's own 422 names its HTTPValidationError body; ours is a problem.
                    responses.pop("422", None)
                    codes = codes_for(method.upper(), path, operation)
                    if "parameters" in operation:
                        codes += PARAMS
                    responses.update(problem_responses(codes))
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def allow_header(app: FastAPI, path: str) -> str:
    """The methods every operation at this path accepts (Starlette names only one route's)."""
    methods = {
        method.upper()
        for template, item in app.openapi().get("paths", {}).items()
        if _template(template).match(path)
        for method in item
    }
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Declare the statuses, and answer a 405 with the path's whole `Allow`."""
    document(app)

    async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
        allow = allow_header(app, request.url.path)
        return problem(
            "method_not_allowed",
            f"{request.method} is not allowed here; allowed: {allow}",
            headers={"Allow": allow},
        )

    app.add_exception_handler(405, method_not_allowed)
