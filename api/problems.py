"""Errors as `application/problem+json` (RFC 9457): one table from domain error codes to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.queue import BrokerUnavailable
from core.errors import EpochalError, SpecError, SpecIssue

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

# code -> (HTTP status, title)
STATUS_OF: dict[str, tuple[int, str]] = {
    "invalid_spec": (422, "The job spec cannot run"),
    "unknown_name": (422, "Unknown name"),
    "invalid_argument": (400, "Invalid argument"),
    "not_found": (404, "Not found"),
    "conflict": (409, "Conflict"),
    "broker_unavailable": (503, "Queue unavailable"),
}


def problem(
    status: int, code: str, title: str, detail: str, errors: Sequence[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:epochal:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _clean_loc(loc: Sequence[Any], body: Any) -> list[Any]:
    """Drop FastAPI's 'body' prefix and pydantic's union-tag segments, so `loc` is a JSON path
    into what the user sent (`["model", "layers", 0, "units"]`)."""
    parts = list(loc[1:]) if loc and loc[0] == "body" else list(loc)
    clean: list[Any] = []
    node = body
    for part in parts:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and "type" in node:
            continue  # the discriminator's tag, e.g. "dense" in model.layers.0.dense.units
        clean.append(part)
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (
                node[part]
                if isinstance(node, list) and isinstance(part, int) and part < len(node)
                else None
            )
        )
    return clean


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return f"malformed JSON: {error.get('ctx', {}).get('error', 'could not parse the body')}"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return "field required"
    if error["type"] == "extra_forbidden":
        return "unknown field; check its spelling and the documented fields of this object"
    return msg


def spec_issues_response(issues: list[SpecIssue]) -> JSONResponse:
    n = len(issues)
    return problem(
        422,
        "invalid_spec",
        STATUS_OF["invalid_spec"][1],
        f"{n} problem{'s' if n != 1 else ''} in the spec",
        [i.as_dict() for i in issues],
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": _clean_loc(e["loc"], exc.body), "msg": _message(e), "type": e["type"]}
            for e in exc.errors()
        ]
        in_body = any(e["loc"][:1] == ("body",) for e in exc.errors())
        what = "the spec" if in_body and request.method == "POST" else "the request"
        return problem(
            422,
            "invalid_request" if not in_body else "invalid_spec",
            "The request is not valid",
            f"{len(errors)} problem(s) in {what}",
            errors,
        )

    @app.exception_handler(SpecError)
    async def spec_error(request: Request, exc: SpecError) -> JSONResponse:
        return spec_issues_response(exc.issues)

    @app.exception_handler(EpochalError)
    async def domain(request: Request, exc: EpochalError) -> JSONResponse:
        status, title = STATUS_OF.get(exc.code, (500, "Internal error"))
        return problem(status, exc.code, title, str(exc))

    @app.exception_handler(BrokerUnavailable)
    async def broker(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        status, title = STATUS_OF["broker_unavailable"]
        return problem(status, "broker_unavailable", title, f"{exc}; nothing was stored")

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, "http_error", str(exc.detail), str(exc.detail))
