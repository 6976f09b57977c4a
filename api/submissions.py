"""What every creating POST shares: the project's quota, checked under the project's lock, and
the `Idempotency-Key` header, whose first answer is stored with what the request made and
replayed to its repeats (see core.store.idempotency)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, CallerDep
from api.queue import Enqueuer, create_and_send
from core.settings import Settings
from core.store import idempotency, projects
from core.store.idempotency import IdempotencyKey, Replay
from core.store.models import Job

REPLAYED = "Idempotent-Replayed"


async def idempotency_key(
    request: Request,
    me: CallerDep,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="a key of your choice: the same key with the same request within 24 h "
            "answers the first response again, and stores or queues nothing new",
        ),
    ] = None,
) -> IdempotencyKey | None:
    """The request's key, fingerprinted with what it asks. An upload's body is a stream: its
    route fingerprints it from the digest it computes (see `for_upload`)."""
    if key is None:
        return None
    if _is_upload(request):
        return _key(request, me, key, "")  # completed by the route (`for_upload`)
    idem = _key(request, me, key, hashlib.sha256(await request.body()).hexdigest())
    # A repeat is answered here, before the route looks at anything that may have changed since
    # (a deleted data set or source job would otherwise turn the stored 201 into an error).
    if (replay := await run_in_threadpool(_find, request, idem)) is not None:
        raise ReplayedError(replay)
    return idem


class ReplayedError(Exception):
    """Raised by the dependency to answer a repeated request with the stored response."""

    def __init__(self, replay: Replay):
        self.replay = replay


def _find(request: Request, idem: IdempotencyKey) -> Replay | None:
    with request.app.state.sessions() as session:
        return idempotency.find(session, idem)


def install(app: FastAPI) -> None:
    @app.exception_handler(ReplayedError)
    async def replay(request: Request, exc: ReplayedError) -> JSONResponse:
        return replayed(exc.replay)


def _is_upload(request: Request) -> bool:
    """By the matched route (a root path shifts the URL, not the route): an upload's body is
    never read into memory here."""
    return getattr(request.scope.get("route"), "path", None) == "/v1/datasets"


def _key(request: Request, me: Caller, key: str, body_sha256: str) -> IdempotencyKey:
    query = [(k, v) for k, v in request.query_params.multi_items()]
    fp = idempotency.fingerprint(request.method, request.url.path, query, body_sha256)
    return IdempotencyKey(me.owner, key, fp)


def for_upload(
    request: Request, me: Caller, idem: IdempotencyKey | None, sha256: str
) -> IdempotencyKey | None:
    return None if idem is None else _key(request, me, idem.key, sha256)


IdempotencyDep = Annotated[IdempotencyKey | None, Depends(idempotency_key)]


def replayed(replay: Replay) -> JSONResponse:
    return JSONResponse(replay.response, status_code=replay.status_code, headers={REPLAYED: "true"})


def find_replay(session: Session, idem: IdempotencyKey | None) -> JSONResponse | None:
    if idem is None:
        return None
    replay = idempotency.find(session, idem)
    return replayed(replay) if replay is not None else None


def admit(
    session: Session, idem: IdempotencyKey | None, project: str, check: Callable[[], None]
) -> JSONResponse | None:
    """Take the project's lock (held until the caller commits); the stored answer if a repeat
    committed meanwhile (one that committed before was answered by `idempotency_key`), else
    run the quota `check` (which raises QuotaExceededError) and return None: go on and create."""
    projects.lock_project(session, project)
    if (answer := find_replay(session, idem)) is not None:
        session.rollback()
        return answer
    check()
    return None


def submit_job(
    session: Session,
    enqueuer: Enqueuer,
    settings: Settings,
    me: Caller,
    idem: IdempotencyKey | None,
    *,
    render: Callable[[Job], BaseModel],
    status_code: int = 201,
    undo: Callable[[], None] | None = None,
    **fields: Any,
) -> JSONResponse:
    """Store a new job in the caller's project and queue it, once: quota checked under the
    project's lock; with an idempotency key, a repeat gets the first answer instead."""
    project = me.owner

    def check() -> None:
        projects.check_active_jobs(session, project, settings.project_max_active_jobs)

    body: dict[str, Any] = {}

    def record(job: Job) -> None:
        body.update(render(job).model_dump(mode="json"))
        if idem is not None:
            idempotency.remember(session, idem, status_code=status_code, response=body)

    def forget() -> None:
        if idem is not None:
            idempotency.forget(session, idem)

    kept = False  # whether a job was stored: else `undo` removes what was made for it
    try:
        if (answer := admit(session, idem, project, check)) is not None:
            return answer
        try:
            create_and_send(
                session,
                enqueuer,
                before_commit=record,
                on_refused=forget,
                project=project,
                created_by=me.key_id,
                **fields,
            )
        except IntegrityError:
            # A repeat of this request committed first: answer what it answered.
            session.rollback()
            if (answer := find_replay(session, idem)) is not None:
                return answer
            raise
        kept = True
    finally:
        if not kept and undo is not None:
            undo()
    return JSONResponse(body, status_code=status_code)
