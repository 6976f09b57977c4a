"""NUL characters in a request's path or query: PostgreSQL cannot store nor compare text that
holds one, so they are refused here, before any route runs, on every store alike.

A path with a NUL names nothing that can exist (`404`); a query parameter with one is refused
with `422` naming it. Strings in a spec are checked by the spec models (core/spec/base.py).
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem
from core.text import NUL, nul_message


class NulBytesMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if NUL in scope["path"]:
                detail = "no such resource: the path holds a NUL (\\x00) character"
                await problem("not_found", detail)(scope, receive, send)
                return
            query = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query:
                errors = [
                    {
                        "loc": ["query", name],
                        "msg": nul_message(value if NUL in value else name),
                        "type": "nul",
                    }
                    for name, value in QueryParams(query).multi_items()
                    if NUL in name or NUL in value
                ]
                if errors:
                    s = "s" if len(errors) != 1 else ""
                    detail = f"{len(errors)} problem{s} in the request"
                    await problem("invalid_request", detail, errors)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
