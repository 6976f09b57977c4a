"""Admission control: at most `limit` writes (POST, PUT, PATCH, DELETE under /v1) run at once.

One more waits for a slot up to `wait` seconds, on the event loop (no thread held), then is
answered 503 with Retry-After, before its body is read, instead of waiting for a thread behind
hundreds of others; reads are never counted, so they keep answering during a burst of
submissions (the API's threads outnumber the writes let in). A pure ASGI middleware: the slot is
held until the response has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import RETRY_AFTER, problem

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WriteGate:
    def __init__(self, app: ASGIApp, limit: int, wait: float = 0.0):
        self.app = app
        self.limit = limit
        self.wait = wait
        self.in_flight = 0  # only touched on the event loop's thread
        self._freed: asyncio.Condition | None = None  # made on the loop, at the first write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] in WRITES
            and scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        if self._freed is None:
            self._freed = asyncio.Condition()
        if self.in_flight >= self.limit and self.wait > 0:
            async with self._freed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._freed.wait_for(lambda: self.in_flight < self.limit), self.wait
                    )
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
            async with self._freed:
                self._freed.notify()
