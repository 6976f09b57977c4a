"""GET /v1/jobs/{id}/events: server-sent events for live charts.

The stream polls the store every `interval` seconds and sends

- `event: progress`, `{"status", "progress"}`, whenever either changes (always once at the start);
- `event: metrics`, `{"series": [{"name", "steps", "epochs", "values"}]}`, the points newer
  than those already sent, per series (NaN and infinities as "NaN"/"Infinity" strings);
- `: keep-alive`, a comment, after `HEARTBEAT_SECONDS` without an event, so proxies keep the
  connection open;
- `event: end`, the final job (as GET /v1/jobs/{id}), once it has succeeded, failed or been
  cancelled; every point written before it ended has been sent by then. The stream then closes.

Resuming: each metrics event carries an `id:` naming the last step sent per series
(`name:step,...`, names percent-encoded), so a client that reconnects with `Last-Event-ID`
(browsers' EventSource do this themselves) receives only newer points. A new series is picked
up from the slowest series' step on, and a point rewritten at a step already sent is not sent
again: the worker writes steps in order, so neither loses a point in practice.

Each poll is one read of the job and one query for the points from the slowest series' step
on, run in a worker thread so the event loop never waits on the store. (A series that stops
early, far behind the others, makes each poll reread the others' points since its last step.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.auth import CallerDep, key_still_valid
from api.schemas import JobOut, SeriesOut
from core.errors import InvalidArgumentError, NotFoundError
from core.store import jobs as job_store
from core.store.db import is_transient
from core.store.metrics import Series, read_series
from core.store.models import JobStatus

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

HEARTBEAT_SECONDS = 15.0
_ID_HELP = "Last-Event-ID: expected the id of an event from this stream"


class Cursor:
    """The last step sent per series. The store is asked for the points from the slowest
    series' step on; a series not seen yet is picked up from that step too (its first point
    often shares a step already sent for another series: epoch-end metrics at the epoch's
    last step)."""

    def __init__(self, steps: dict[str, int] | None = None):
        self.steps = dict(steps or {})

    @property
    def since(self) -> int:
        return min(self.steps.values(), default=0) - 1

    def newer(self, series: list[Series]) -> list[Series]:
        """The points not sent yet; the cursor moves past them."""
        since = self.since
        out = []
        for s in series:
            last = self.steps.get(s.name, since)
            fresh = Series(s.name)
            for step, epoch, value in zip(s.steps, s.epochs, s.values, strict=True):
                if step > last:
                    fresh.add(step, epoch, value)
            if fresh.steps:
                self.steps[s.name] = fresh.steps[-1]
                out.append(fresh)
        return out

    def encode(self) -> str:
        return ",".join(f"{quote(n, safe='')}:{s}" for n, s in sorted(self.steps.items()))

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            steps = {
                unquote(name): int(step)
                for name, step in (part.rsplit(":", 1) for part in text.strip().split(","))
            }
        except ValueError as e:
            raise InvalidArgumentError(f"{_ID_HELP}; received {text[:100]!r}") from e
        if any(step < 0 for step in steps.values()):
            raise InvalidArgumentError(f"{_ID_HELP}; received {text[:100]!r}")
        return cls(steps)


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'), allow_nan=False)}")
    return "\n".join(lines) + "\n\n"


def _read_job(sessions: sessionmaker[Session], job_id: str, project: str | None) -> JobOut:
    with sessions() as session:
        return JobOut.of(job_store.get_job(session, job_id=job_id, project=project))


def _poll(sessions: sessionmaker[Session], job_id: str, since: int) -> tuple[JobOut, list[Series]]:
    """The job first, then its points: every point written before it ended is in the second read.
    (The job's project was checked when the stream opened.)"""
    with sessions() as session:
        job = JobOut.of(job_store.get_job(session, job_id=job_id))
        return job, read_series(session, job_id=job_id, since_step=since)


async def _events(
    request: Request,
    sessions: sessionmaker[Session],
    job_id: str,
    cursor: Cursor,
    interval: float,
    allowed: Callable[[], bool],
) -> AsyncIterator[str]:
    sent_progress: dict[str, Any] | None = None
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        if not await run_in_threadpool(allowed):
            return  # the key was revoked while the stream was open
        try:
            job, series = await run_in_threadpool(_poll, sessions, job_id, cursor.since)
        except NotFoundError:
            return  # deleted while watched
        except Exception as e:
            if not is_transient(e):
                raise
            log.warning("job %s events: store unavailable: %s", job_id, e)
            job, series = None, []  # try again at the next poll
        chunks = []
        if job is not None and sent_progress != (progress := _progress(job)):
            sent_progress = progress
            chunks.append(sse("progress", progress))
        if fresh := cursor.newer(series):
            data = {"series": [SeriesOut.of(s).model_dump(exclude_none=True) for s in fresh]}
            chunks.append(sse("metrics", data, cursor.encode()))
        ended = job is not None and JobStatus(job.status).finished
        if ended:
            chunks.append(sse("end", job.model_dump(mode="json")))
        if chunks:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            chunks.append(": keep-alive\n\n")
            quiet_since = time.monotonic()
        for chunk in chunks:
            yield chunk
        if ended:
            return
        await asyncio.sleep(interval)


def _progress(job: JobOut) -> dict[str, Any]:
    return {"status": job.status, "progress": job.progress}


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job_id: str,
    request: Request,
    me: CallerDep,
    interval: Annotated[float, Query(ge=0.1, le=10, description="seconds between polls")] = 1.0,
    last_event_id: Annotated[
        str,
        Header(
            max_length=10_000,
            pattern=r"^[A-Za-z0-9%._~-]*:[0-9]{1,18}(,[A-Za-z0-9%._~-]*:[0-9]{1,18})*$",
            description="the id of the last event received: name:step,... (percent-encoded names)",
        ),
    ] = "",
) -> StreamingResponse:
    cursor = Cursor.decode(last_event_id) if last_event_id else Cursor()
    sessions = request.app.state.sessions
    await run_in_threadpool(_read_job, sessions, job_id, me.project)  # 404 before the stream starts
    return StreamingResponse(
        _events(request, sessions, job_id, cursor, interval, key_still_valid(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
