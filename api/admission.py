"""Admission control: at most `limit` writes (POST, PUT, PATCH, DELETE under /v1) run at once.

One more is answered 503 with Retry-After at once, before its body is read, instead of waiting
for a thread behind hundreds of others; reads are never counted, so they keep answering during a
burst of submissions (the API's threads outnumber the writes let in). A pure ASGI middleware:
the slot is held until the response has been sent.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import RETRY_AFTER, problem

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WriteGate:
    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit
        self.in_flight = 0  # only touched on the event loop's thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] in WRITES
            and scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = problem(
                "overloaded",
                f"{self.limit} writes are in progress; nothing was stored; try again shortly",
                headers=RETRY_AFTER,
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
