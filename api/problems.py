"""Errors as `application/problem+json` (RFC 9457): one table from error codes to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.queue import BrokerUnavailable
from core.errors import EpochalError, SpecError, SpecIssue, UploadError
from core.spec.issues import clean_loc, message
from core.store.db import is_transient
from core.sweeps.spec import SweepError

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

# code -> (HTTP status, title). A problem type always has the same title.
STATUS_OF: dict[str, tuple[int, str]] = {
    "invalid_spec": (422, "The job spec cannot run"),
    "invalid_sweep": (422, "The sweep spec cannot run"),
    "invalid_request": (422, "The request is not valid"),
    "unknown_name": (422, "Unknown name"),
    "invalid_upload": (422, "The data set cannot be used"),
    "unsupported_format": (415, "Unsupported data set format"),
    "too_large": (413, "Too large"),
    "invalid_argument": (422, "Invalid argument"),
    "not_found": (404, "Not found"),
    "conflict": (409, "Conflict"),
    "not_exportable": (422, "The model cannot be exported in this format"),
    "broker_unavailable": (503, "Queue unavailable"),
    "store_unavailable": (503, "Store unavailable"),
    "not_ready": (503, "Not ready"),
    "method_not_allowed": (405, "Method not allowed"),
    "internal_error": (500, "Internal error"),
}


def problem(
    code: str,
    detail: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    *,
    status: int | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    default_status, default_title = STATUS_OF.get(code, (500, "Internal error"))
    status = status or default_status
    body: dict[str, Any] = {
        "type": f"urn:epochal:problem:{code}",
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


# Bodies whose validation errors are problems with the submitted spec: (problem code, what).
SUBMISSIONS = {
    "/v1/jobs": ("invalid_spec", "the spec"),
    "/v1/sweeps": ("invalid_sweep", "the sweep"),
}


def _count(n: int, what: str) -> str:
    return f"{n} problem{'s' if n != 1 else ''} in {what}"


def spec_issues_response(issues: list[SpecIssue]) -> JSONResponse:
    return problem("invalid_spec", _count(len(issues), "the spec"), [i.as_dict() for i in issues])


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        errors = [
            {"loc": clean_loc(e["loc"], exc.body), "msg": message(e), "type": e["type"]}
            for e in raw
        ]
        submission = SUBMISSIONS.get(request.url.path.rstrip("/"))
        if request.method == "POST" and submission and any(e["loc"][:1] == ("body",) for e in raw):
            return problem(submission[0], _count(len(errors), submission[1]), errors)
        return problem("invalid_request", _count(len(errors), "the request"), errors)

    @app.exception_handler(SpecError)
    async def spec_error(request: Request, exc: SpecError) -> JSONResponse:
        return spec_issues_response(exc.issues)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        errors = [i.as_dict() for i in exc.issues]
        return problem(exc.code, _count(len(errors), "the upload") + f": {exc}", errors)

    @app.exception_handler(SweepError)
    async def sweep_error(request: Request, exc: SweepError) -> JSONResponse:
        issues = [i.as_dict() for i in exc.issues]
        return problem("invalid_sweep", _count(len(issues), "the sweep"), issues)

    @app.exception_handler(EpochalError)
    async def domain(request: Request, exc: EpochalError) -> JSONResponse:
        return problem(exc.code, str(exc))

    @app.exception_handler(BrokerUnavailable)
    async def broker(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        return problem("broker_unavailable", f"{exc}; nothing was stored")

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(
            "http_error",
            str(exc.detail),
            status=exc.status_code,
            title=str(exc.detail),
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            log.warning("store unavailable: %s", exc)
            return problem("store_unavailable", "the store is unreachable; try again shortly")
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem("internal_error", "an unexpected error occurred; it has been logged")
