"""/v1/sweeps: submit a sweep, read it and its leaderboard, pause, resume and cancel it."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from api.auth import Caller, CallerDep
from api.deps import (
    ArtifactsDep,
    EnqueuerDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    UploadsDep,
)
from api.queue import BrokerUnavailable
from api.submissions import IdempotencyDep, admit, find_replay
from api.sweep_schemas import LeaderboardOut, MetricOut, SweepOut, SweepPage, TrialOut
from core.store import idempotency, projects
from core.store import sweeps as sweep_store
from core.store.deletion import delete_sweep as delete_ended_sweep
from core.store.models import Sweep, SweepStatus
from core.sweeps import optuna_sampler
from core.sweeps.controller import advance, set_status
from core.sweeps.leaderboard import leaderboard
from core.sweeps.plan import plan_sweep
from core.sweeps.spec import SweepSpec

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])
log = logging.getLogger(__name__)


def sweep_out(session: Session, sweep: Sweep) -> SweepOut:
    board = leaderboard(session, sweep)
    leader = board[0] if board and board[0].rank is not None else None
    return SweepOut.of(sweep, sweep_store.counts(session, sweep_id=sweep.id), leader)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepOut)
def submit_sweep(
    spec: SweepSpec,
    session: SessionDep,
    settings: SettingsDep,
    queue: EnqueuerDep,
    uploads: UploadsDep,
    me: CallerDep,
    idem: IdempotencyDep,
) -> SweepOut | JSONResponse:
    """Every trial spec the sweep can produce is checked first (grid: each point; otherwise each
    parameter's choices and bounds): a sweep that cannot run is refused with nothing stored.
    `429` past the project's running sweeps (EPOCHAL_PROJECT_MAX_RUNNING_SWEEPS). With an
    `Idempotency-Key`, a repeat answers the first response and starts nothing."""
    plan = plan_sweep(spec, settings, uploads)
    project = me.owner

    def check() -> None:
        projects.check_running_sweeps(session, project, settings.project_max_running_sweeps)

    if (answer := admit(session, idem, project, check)) is not None:
        return answer
    sweep = sweep_store.create_sweep(
        session,
        name=spec.name or spec.base.name or f"{spec.base.dataset.name}-sweep",
        method=spec.method,
        spec=plan.spec.model_dump(mode="json"),
        base=plan.base,
        run_cap=plan.run_cap,
        max_parallel=spec.max_parallel,
        project=project,
        created_by=me.key_id,
    )
    # The answer is made before the commit (and stored with the sweep under an idempotency
    # key), so a store that fails after the commit still gets the sweep its 201.
    first = sweep_out(session, sweep).model_dump(mode="json")
    if idem is not None:
        idempotency.remember(session, idem, status_code=201, response=first)
    try:
        advance(session, sweep_id=sweep.id, settings=settings, send=queue.send_train)
    except BrokerUnavailable:
        # Nothing half-written: remove the sweep and its trials (and the stored answer) again.
        session.rollback()
        sweep_store.delete_sweep(session, sweep_id=sweep.id)
        if idem is not None:
            idempotency.forget(session, idem)
        session.commit()
        if spec.method == "bayes":
            optuna_sampler.delete(settings.database_url, sweep.id)
        raise
    except IntegrityError:
        session.rollback()  # a repeat of this request committed first: answer what it answered
        if (answer := find_replay(session, idem)) is not None:
            return answer
        raise
    try:  # the answer once its first trials exist
        out = sweep_out(session, sweep_store.get_sweep(session, sweep_id=sweep.id))
        if idem is not None:
            idempotency.complete(session, idem, response=out.model_dump(mode="json"))
            session.commit()
    except SQLAlchemyError:
        log.warning("sweep %s: stored and started; answered as first made", sweep.id)
        return JSONResponse(first, status_code=status.HTTP_201_CREATED)
    return out


@router.get("", response_model=SweepPage)
def list_sweeps(
    session: SessionDep,
    me: CallerDep,
    status_: Annotated[SweepStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200, description="the previous page's next_cursor (422 for another value)"
        ),
    ] = None,
) -> SweepPage:
    sweeps, next_cursor = sweep_store.list_sweeps(
        session,
        status=status_.value if status_ else None,
        limit=limit,
        cursor=cursor,
        project=me.project,
    )
    return SweepPage(items=[sweep_out(session, s) for s in sweeps], next_cursor=next_cursor)


@router.get("/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: str, session: SessionDep, me: CallerDep) -> SweepOut:
    return sweep_out(session, sweep_store.get_sweep(session, sweep_id=sweep_id, project=me.project))


@router.delete("/{sweep_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sweep(
    sweep_id: str,
    sessions: SessionsDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    me: CallerDep,
) -> Response:
    """An ended (finished or cancelled) sweep with all its trials, their metric points and
    files. `409` while it runs or is paused (cancel it first)."""
    with sessions() as session:
        method = sweep_store.get_sweep(session, sweep_id=sweep_id, project=me.project).method
    delete_ended_sweep(sessions, artifacts, sweep_id=sweep_id, project=me.project)
    if method == "bayes":
        optuna_sampler.delete(settings.database_url, sweep_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{sweep_id}/leaderboard", response_model=LeaderboardOut)
def get_leaderboard(
    sweep_id: str,
    session: SessionDep,
    me: CallerDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> LeaderboardOut:
    sweep = sweep_store.get_sweep(session, sweep_id=sweep_id, project=me.project)
    board = leaderboard(session, sweep)[:limit]
    return LeaderboardOut(
        sweep_id=sweep.id,
        metric=MetricOut(**sweep.spec["metric"]),
        trials=[TrialOut.of(e) for e in board],
    )


def _change(session: Session, sweep_id: str, action: str, me: Caller) -> Sweep:
    sweep_store.get_sweep(session, sweep_id=sweep_id, project=me.project)  # 404 if not the caller's
    session.rollback()  # the lock is the transaction's first write
    sweep = set_status(session, sweep_id=sweep_id, action=action)
    session.commit()
    return sweep


@router.post("/{sweep_id}/pause", response_model=SweepOut)
def pause_sweep(sweep_id: str, session: SessionDep, me: CallerDep) -> SweepOut:
    """No new trials start; the running ones go on."""
    return sweep_out(session, _change(session, sweep_id, "pause", me))


@router.post("/{sweep_id}/resume", response_model=SweepOut)
def resume_sweep(
    sweep_id: str, session: SessionDep, settings: SettingsDep, queue: EnqueuerDep, me: CallerDep
) -> SweepOut:
    """Counts towards the project's running sweeps (`429` past its limit): checked and
    changed in one transaction under the project's lock."""
    project = sweep_store.get_sweep(session, sweep_id=sweep_id, project=me.project).project
    projects.lock_project(session, project)
    if sweep_store.lock_sweep(session, sweep_id=sweep_id).status == SweepStatus.PAUSED.value:
        projects.check_running_sweeps(session, project, settings.project_max_running_sweeps)
    set_status(session, sweep_id=sweep_id, action="resume")
    session.commit()
    # Should sending fail here, the trials stay queued and the workers' reaper sends them.
    advance(session, sweep_id=sweep_id, settings=settings, send=queue.send_train)
    return sweep_out(session, sweep_store.get_sweep(session, sweep_id=sweep_id))


@router.post("/{sweep_id}/cancel", response_model=SweepOut)
def cancel_sweep(sweep_id: str, session: SessionDep, me: CallerDep) -> SweepOut:
    """Queued trials are cancelled at once, running ones stop within a step or two."""
    return sweep_out(session, _change(session, sweep_id, "cancel", me))
