"""Errors as `application/problem+json` (RFC 9457): one table from error codes to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from api.auth import UnauthenticatedError
from api.queue import BrokerUnavailable
from core.artifacts import ArtifactsUnavailable
from core.errors import (
    EpochalError,
    IdempotencyKeyReusedError,
    QuotaExceededError,
    SpecError,
    SpecIssue,
    UploadError,
)
from core.spec.issues import clean_loc, message, telling
from core.store.db import is_transient
from core.sweeps.spec import SweepError

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

# code -> (HTTP status, title). A problem type always has the same title.
STATUS_OF: dict[str, tuple[int, str]] = {
    "invalid_spec": (422, "The job spec cannot run"),
    "invalid_sweep": (422, "The sweep spec cannot run"),
    "no_suggestion": (422, "The learning-rate finder found no rate to suggest"),
    "invalid_request": (422, "The request is not valid"),
    "unknown_name": (422, "Unknown name"),
    "invalid_upload": (422, "The data set cannot be used"),
    "unsupported_format": (415, "Unsupported data set format"),
    "too_large": (413, "Too large"),
    "timed_out": (408, "Request timeout"),
    "invalid_argument": (422, "Invalid argument"),
    "not_found": (404, "Not found"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "quota_exceeded": (429, "Quota exceeded"),
    "idempotency_key_reused": (422, "Idempotency key reused"),
    "conflict": (409, "Conflict"),
    "request_in_progress": (409, "Request still in progress"),
    "not_exportable": (422, "The model cannot be exported in this format"),
    "broker_unavailable": (503, "Queue unavailable"),
    "store_unavailable": (503, "Store unavailable"),
    "artifacts_unavailable": (503, "Artifacts store unavailable"),
    "not_ready": (503, "Not ready"),
    "store_busy": (503, "Store busy"),
    "overloaded": (503, "Too many requests in flight"),
    "method_not_allowed": (405, "Method not allowed"),
    "internal_error": (500, "Internal error"),
    # A stored checkpoint that cannot be read (corrupt, or another format): the request is
    # sound but conflicts with what is stored; another checkpoint (or job) can serve it.
    "invalid_checkpoint": (409, "The checkpoint cannot be read"),
    # Raised while training (worker side); mapped so that no code of core answers a bare 500.
    "divergence": (422, "Training diverged"),
    "cancelled": (409, "The job was cancelled"),
    "lease_lost": (409, "The job moved to another worker"),
    "released": (503, "The worker is shutting down"),
    # Browsers (api/browsers.py).
    "unsupported_media_type": (415, "Unsupported media type"),
    "forbidden_origin": (403, "Origin not allowed"),
}


# Back-pressure: every 503 for a busy or unreachable dependency says when to try again.
RETRY_AFTER = {"Retry-After": "2"}


def problem(
    code: str,
    detail: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    *,
    status: int | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    if code in STATUS_OF:
        default_status, default_title = STATUS_OF[code]
    else:
        # tests/api/test_problem_codes.py fails for any code of core without a row; should one
        # slip through, say so loudly rather than pass it off as an ordinary 500.
        default_status, default_title = 500, "Unmapped error"
        if status is None:
            log.error("problem code %r has no row in api/problems.STATUS_OF; answering 500", code)
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


class BodyError(Exception):
    """A request body that cannot be read at all (too deep, malformed, YAML aliases): what is
    wrong and, where known, where (1-based line and column)."""

    def __init__(self, msg: str, type: str, line: int | None = None, column: int | None = None):
        super().__init__(msg)
        self.msg, self.type, self.line, self.column = msg, type, line, column

    def as_dict(self) -> dict[str, Any]:
        where = {"line": self.line, "column": self.column} if self.line is not None else {}
        return {"loc": [], "msg": self.msg, "type": self.type, **where}


def body_problem(method: str, path: str, error: BodyError) -> JSONResponse:
    """422 for an unreadable body, with the code its route gives any problem in its body."""
    submission = SUBMISSIONS.get(path.rstrip("/"))
    code, what = submission if method == "POST" and submission else ("invalid_request", "the body")
    return problem(code, f"{what} cannot be read: {error.msg}", [error.as_dict()])


YAML_TYPE = "application/yaml"


def _looks_like_yaml(body: Any) -> bool:
    """Not JSON from its first character, and a `key:` line: a YAML spec sent as JSON. (`body`:
    the document a JSON decode error failed on.)"""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return False
    text = body.lstrip()[:4096]
    return bool(text) and text[:1] not in '{["' and ":" in text


def _count(n: int, what: str) -> str:
    return f"{n} problem{'s' if n != 1 else ''} in {what}"


def spec_issues_response(issues: list[SpecIssue]) -> JSONResponse:
    return problem("invalid_spec", _count(len(issues), "the spec"), [i.as_dict() for i in issues])


def _headers(exc: EpochalError) -> dict[str, str] | None:
    if isinstance(exc, UnauthenticatedError):
        return {"WWW-Authenticate": 'Bearer realm="epochal"'}
    if isinstance(exc, QuotaExceededError) and exc.retry_after is not None:
        return {"Retry-After": str(exc.retry_after)}
    return None


def _idempotency_issue(exc: IdempotencyKeyReusedError) -> list[dict[str, Any]]:
    return [{"loc": ["header", "Idempotency-Key"], "msg": str(exc), "type": exc.code}]


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        errors = [
            {"loc": clean_loc(e["loc"], exc.body), "msg": message(e), "type": e["type"]}
            for e in telling(raw)
        ]
        if any(e["type"] == "json_invalid" for e in raw) and _looks_like_yaml(exc.body):
            for e in errors:
                if e["type"] == "json_invalid":
                    e["msg"] += f"; it looks like YAML: send it as Content-Type: {YAML_TYPE}"
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

    @app.exception_handler(IdempotencyKeyReusedError)
    async def idempotency_reused(request: Request, exc: IdempotencyKeyReusedError) -> JSONResponse:
        return problem(exc.code, str(exc), _idempotency_issue(exc))

    @app.exception_handler(SweepError)
    async def sweep_error(request: Request, exc: SweepError) -> JSONResponse:
        issues = [i.as_dict() for i in exc.issues]
        return problem("invalid_sweep", _count(len(issues), "the sweep"), issues)

    @app.exception_handler(EpochalError)
    async def domain(request: Request, exc: EpochalError) -> JSONResponse:
        return problem(exc.code, str(exc), headers=_headers(exc))

    @app.exception_handler(BrokerUnavailable)
    async def broker(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        return problem("broker_unavailable", f"{exc}; nothing was stored", headers=RETRY_AFTER)

    @app.exception_handler(ArtifactsUnavailable)
    async def artifacts(request: Request, exc: ArtifactsUnavailable) -> JSONResponse:
        log.warning("%s on %s %s", exc, request.method, request.url.path)
        return problem("artifacts_unavailable", f"{exc}; try again shortly", headers=RETRY_AFTER)

    @app.exception_handler(PoolTimeout)
    async def store_busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("no database connection in time on %s %s", request.method, request.url.path)
        return problem(
            "store_busy",
            "every database connection is in use; nothing was stored; try again shortly",
            headers=RETRY_AFTER,
        )

    @app.exception_handler(DBAPIError)
    async def store_error(request: Request, exc: DBAPIError) -> JSONResponse:
        """Answered here, by class: the catch-all below is Starlette's last resort, which
        re-raises after answering, and the server then drops the client's connection."""
        if is_transient(exc):
            log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
            return problem(
                "store_unavailable",
                "the store is unreachable; try again shortly",
                headers=RETRY_AFTER,
            )
        log.error("store error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem("internal_error", "an unexpected error occurred; it has been logged")

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
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem("internal_error", "an unexpected error occurred; it has been logged")
