"""/v1/sweeps: submit a sweep, read it and its leaderboard, pause, resume and cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from api.deps import EnqueuerDep, SessionDep, SettingsDep, UploadsDep
from api.queue import BrokerUnavailable
from api.sweep_schemas import LeaderboardOut, MetricOut, SweepOut, SweepPage, TrialOut
from core.store import sweeps as sweep_store
from core.store.models import Sweep, SweepStatus
from core.sweeps import optuna_sampler
from core.sweeps.controller import advance, set_status
from core.sweeps.leaderboard import leaderboard
from core.sweeps.plan import plan_sweep
from core.sweeps.spec import SweepSpec

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


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
) -> SweepOut:
    """Every trial spec the sweep can produce is checked first (grid: each point; otherwise each
    parameter's choices and bounds): a sweep that cannot run is refused with nothing stored."""
    plan = plan_sweep(spec, settings, uploads)
    sweep = sweep_store.create_sweep(
        session,
        name=spec.name or spec.base.name or f"{spec.base.dataset.name}-sweep",
        method=spec.method,
        spec=plan.spec.model_dump(mode="json"),
        base=plan.base,
        run_cap=plan.run_cap,
        max_parallel=spec.max_parallel,
    )
    try:
        advance(session, sweep_id=sweep.id, settings=settings, send=queue.send_train)
    except BrokerUnavailable:
        # Nothing half-written: remove the sweep and its trials again.
        session.rollback()
        sweep_store.delete_sweep(session, sweep_id=sweep.id)
        session.commit()
        if spec.method == "bayes":
            optuna_sampler.delete(settings.database_url, sweep.id)
        raise
    return sweep_out(session, sweep_store.get_sweep(session, sweep_id=sweep.id))


@router.get("", response_model=SweepPage)
def list_sweeps(
    session: SessionDep,
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
        session, status=status_.value if status_ else None, limit=limit, cursor=cursor
    )
    return SweepPage(items=[sweep_out(session, s) for s in sweeps], next_cursor=next_cursor)


@router.get("/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: str, session: SessionDep) -> SweepOut:
    return sweep_out(session, sweep_store.get_sweep(session, sweep_id=sweep_id))


@router.get("/{sweep_id}/leaderboard", response_model=LeaderboardOut)
def get_leaderboard(
    sweep_id: str,
    session: SessionDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> LeaderboardOut:
    sweep = sweep_store.get_sweep(session, sweep_id=sweep_id)
    board = leaderboard(session, sweep)[:limit]
    return LeaderboardOut(
        sweep_id=sweep.id,
        metric=MetricOut(**sweep.spec["metric"]),
        trials=[TrialOut.of(e) for e in board],
    )


def _change(session: Session, sweep_id: str, action: str) -> Sweep:
    sweep = set_status(session, sweep_id=sweep_id, action=action)
    session.commit()
    return sweep


@router.post("/{sweep_id}/pause", response_model=SweepOut)
def pause_sweep(sweep_id: str, session: SessionDep) -> SweepOut:
    """No new trials start; the running ones go on."""
    return sweep_out(session, _change(session, sweep_id, "pause"))


@router.post("/{sweep_id}/resume", response_model=SweepOut)
def resume_sweep(
    sweep_id: str, session: SessionDep, settings: SettingsDep, queue: EnqueuerDep
) -> SweepOut:
    _change(session, sweep_id, "resume")
    # Should sending fail here, the trials stay queued and the workers' reaper sends them.
    advance(session, sweep_id=sweep_id, settings=settings, send=queue.send_train)
    return sweep_out(session, sweep_store.get_sweep(session, sweep_id=sweep_id))


@router.post("/{sweep_id}/cancel", response_model=SweepOut)
def cancel_sweep(sweep_id: str, session: SessionDep) -> SweepOut:
    """Queued trials are cancelled at once, running ones stop within a step or two."""
    return sweep_out(session, _change(session, sweep_id, "cancel"))
