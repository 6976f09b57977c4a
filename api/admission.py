"""Admission control: at most `limit` writes (POST, PUT, PATCH, DELETE under /v1) run at once,
and uploads (`POST /v1/datasets`) in a lane of their own, so that slow uploads (a body trickling
in for up to EPOCHAL_UPLOAD_TIMEOUT_SECONDS) can never hold the slots that submissions need.

One more waits for a slot up to `wait` seconds, on the event loop (no thread held), then is
answered 503 with Retry-After, before its body is read, instead of waiting for a thread behind
hundreds of others; reads are never counted, so they keep answering during a burst of
submissions (the API's threads outnumber the writes let in). A pure ASGI middleware: the slot is
held until the response has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import RETRY_AFTER, problem

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UPLOADS = "/v1/datasets"


class Lane:
    """`limit` slots; a request waits up to `wait` seconds for one."""

    def __init__(self, what: str, limit: int, wait: float):
        self.what, self.limit, self.wait = what, limit, wait
        self.in_flight = 0  # only touched on the event loop's thread
        self._freed: asyncio.Condition | None = None  # made on the loop, at the first request

    async def run(
        self, call: Callable[[], Awaitable[None]], refuse: Callable[[str], Awaitable[None]]
    ) -> None:
        if self._freed is None:
            self._freed = asyncio.Condition()
        if self.in_flight >= self.limit and self.wait > 0:
            async with self._freed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._freed.wait_for(lambda: self.in_flight < self.limit), self.wait
                    )
        if self.in_flight >= self.limit:
            await refuse(f"{self.limit} {self.what} are in progress")
            return
        self.in_flight += 1
        try:
            await call()
        finally:
            self.in_flight -= 1
            async with self._freed:
                self._freed.notify()


class WriteGate:
    def __init__(self, app: ASGIApp, limit: int, wait: float = 0.0, upload_limit: int = 4):
        self.app = app
        self.writes = Lane("writes", limit, wait)
        self.uploads = Lane("uploads", upload_limit, wait)

    @property
    def in_flight(self) -> int:
        return self.writes.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] in WRITES
            and scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"].rstrip("/") == UPLOADS
        lane = self.uploads if upload else self.writes

        async def call() -> None:
            await self.app(scope, receive, send)

        async def refuse(why: str) -> None:
            detail = f"{why}; nothing was stored; try again shortly"
            await problem("overloaded", detail, headers=RETRY_AFTER)(scope, receive, send)

        await lane.run(call, refuse)
