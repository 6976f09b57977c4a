"""YAML request bodies: a spec may be sent as `application/yaml` as well as JSON.

A small ASGI middleware turns a YAML body into the equivalent JSON before routing, so every
route, its validation and its OpenAPI schema stay JSON-only.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


class YamlBodyMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = 10 * 1024 * 1024):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _content_type(scope) not in YAML_TYPES:
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await problem("invalid_request", "the body is too large")(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        try:
            document: Any = yaml.safe_load(body) if body.strip() else None
        except yaml.YAMLError as e:
            error = {"loc": ["body"], "msg": f"malformed YAML: {e}", "type": "yaml_invalid"}
            await problem("invalid_spec", "1 problem in the spec", [error])(scope, receive, send)
            return
        converted = json.dumps(document).encode() if document is not None else b""
        headers = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")
        ]
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(converted)).encode()),
        ]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": converted, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def _content_type(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""
