"""Bounds on every request body but an upload's, enforced before any route reads one.

A body larger than `EPOCHAL_MAX_BODY_BYTES` answers 413 as soon as its Content-Length says so,
or as soon as the bytes received pass the limit (a chunked body), without reading the rest.
A JSON body is checked by api/json_body.py, a YAML body turned into JSON by api/yaml_body.py;
one that cannot be read answers 422 naming what is wrong and where. Any other type answers 415
naming the accepted ones (a predict route also takes raw rows as `text/csv`). Uploads
(`POST /v1/datasets`) stream to disk under their own, larger limit and pass through untouched.
Only the bodies of POST, PUT and PATCH under /v1 are read: any other request's body is left
unread (no route reads it). A body must arrive within EPOCHAL_BODY_TIMEOUT_SECONDS, or 408: a
client that trickles its body in cannot hold an admission slot for long.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.json_body import check_json
from api.problems import BodyError, body_problem, problem
from api.yaml_body import YAML_TYPES, yaml_to_json
from core.settings import Settings

READ_BODIES = frozenset({"POST", "PUT", "PATCH"})
CSV = "text/csv"
ACCEPTED = "application/json or application/yaml"
PREDICT = re.compile(r"^/v1/jobs/[^/]+/predict/?$")  # also takes raw rows as text/csv


def _takes_csv(path: str) -> bool:
    return bool(PREDICT.match(path))


def _unsupported(path: str, content_type: str) -> ASGIApp:
    """415 for a body that is neither JSON nor YAML (nor CSV where raw rows are taken)."""
    accepted = f"{ACCEPTED} or {CSV} (raw rows)" if _takes_csv(path) else ACCEPTED
    error = {
        "loc": ["header", "content-type"],
        "msg": f"expected {accepted}; received {content_type!r}",
        "type": "content_type",
    }
    return problem(
        "unsupported_media_type", f"the body must be {accepted}; received {content_type!r}", [error]
    )


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its body ended: nothing to answer, nothing to run."""


class BodyLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings, raw_paths: Collection[str]):
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.max_depth = settings.max_body_depth
        self.max_yaml_nodes = settings.max_yaml_nodes
        self.raw_paths = {p.rstrip("/") for p in raw_paths}
        self.timeout = settings.body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in READ_BODIES
            or not scope["path"].startswith("/v1/")
            or not _has_body(scope)
            or scope["path"].rstrip("/") in self.raw_paths
        ):
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout):
                body = await read_body(scope, receive, self.max_bytes)
            content_type = _content_type(scope)
            if content_type in YAML_TYPES:
                body = await run_in_threadpool(
                    yaml_to_json, body, max_depth=self.max_depth, max_nodes=self.max_yaml_nodes
                )
                scope = _with_json_headers(scope, len(body))
            elif (
                not content_type
                or content_type == "application/json"
                or content_type.endswith("+json")
            ):
                await run_in_threadpool(check_json, body, max_depth=self.max_depth)
            elif not (content_type == CSV and _takes_csv(scope["path"])):
                refusal = _unsupported(scope["path"], content_type)
                await refusal(scope, receive, send)
                return
        except ClientGone:
            return
        except TimeoutError:  # only reading is timed: parsing is bounded by the limits
            refusal = problem(
                "timed_out",
                f"the body did not arrive within {self.timeout:g} s "
                "(EPOCHAL_BODY_TIMEOUT_SECONDS); nothing was stored",
            )
        except BodyTooLarge:
            refusal = problem(
                "too_large",
                f"the body is larger than {self.max_bytes:,} bytes (EPOCHAL_MAX_BODY_BYTES); "
                "nothing was stored",
            )
        except BodyError as e:
            refusal = body_problem(scope["method"], scope["path"], e)
        else:
            await self.app(scope, _replaying(body, receive), send)
            return
        await refusal(scope, receive, send)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The `receive` of the app behind: the body read here, then the client's own messages
    (a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def read_body(scope: Scope, receive: Receive, max_bytes: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to pass `max_bytes`: from its
    Content-Length before reading anything, else from the bytes received so far."""
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        if len(body) > max_bytes:
            raise BodyTooLarge
        if not message.get("more_body"):
            break
    return bytes(body)


def _has_body(scope: Scope) -> bool:
    declared = _header(scope, b"content-length")
    return bool(_header(scope, b"transfer-encoding")) or (declared != "" and declared != "0")


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1").strip()
    return ""


def _content_type(scope: Scope) -> str:
    return _header(scope, b"content-type").split(";")[0].strip().lower()


def _with_json_headers(scope: Scope, length: int) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    return {**scope, "headers": headers}
