"""Sweep repository: create, read, list, lock, and the trials' states and metric values."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.errors import ConflictError, InvalidArgumentError, NotFoundError
from core.store import jobs as job_store
from core.store.base import utcnow
from core.store.metrics import decode_value
from core.store.models import (
    DEFAULT_PROJECT,
    Job,
    JobStatus,
    MetricPoint,
    Sweep,
    SweepStatus,
    SweepTrial,
)
from core.store.projects import in_project


def create_sweep(
    session: Session,
    *,
    name: str,
    method: str,
    spec: dict[str, Any],
    base: dict[str, Any],
    run_cap: int,
    max_parallel: int,
    project: str = DEFAULT_PROJECT,
    created_by: str | None = None,
) -> Sweep:
    sweep = Sweep(
        id=str(uuid.uuid4()),
        project=project,
        created_by=created_by,
        name=name,
        status=SweepStatus.RUNNING.value,
        method=method,
        spec=spec,
        base=base,
        run_cap=run_cap,
        max_parallel=max_parallel,
        trials=0,
    )
    session.add(sweep)
    session.flush()
    return sweep


def get_sweep(session: Session, *, sweep_id: str, project: str | None = None) -> Sweep:
    """The sweep; NotFoundError also when it belongs to another project than `project`."""
    sweep = session.get(Sweep, sweep_id)
    if not in_project(sweep, project):
        raise NotFoundError(f"no sweep with id {sweep_id!r}")
    return sweep


def lock_sweep(session: Session, *, sweep_id: str) -> Sweep:
    """Take the sweep's row for this transaction: a write first, so that on PostgreSQL the row
    is locked and on SQLite the database's write lock is held. A second process calling this
    waits, then reads what the first committed."""
    changed = session.execute(
        update(Sweep).where(Sweep.id == sweep_id).values(updated_at=utcnow())
    ).rowcount
    if not changed:
        raise NotFoundError(f"no sweep with id {sweep_id!r}")
    return session.get(Sweep, sweep_id, populate_existing=True)  # type: ignore[return-value]


def delete_sweep(session: Session, *, sweep_id: str) -> None:
    """Remove a sweep and its trial jobs (a submission whose first trials could not be sent)."""
    jobs = select(SweepTrial.job_id).where(SweepTrial.sweep_id == sweep_id)
    session.execute(delete(Job).where(Job.id.in_(jobs)))
    session.execute(delete(Sweep).where(Sweep.id == sweep_id))


def running_sweep_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Sweep.id).where(Sweep.status == SweepStatus.RUNNING.value)))


def sweep_of_job(session: Session, *, job_id: str) -> str | None:
    return session.scalar(select(SweepTrial.sweep_id).where(SweepTrial.job_id == job_id))


def list_sweeps(
    session: Session,
    *,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    project: str | None = None,
) -> tuple[list[Sweep], str | None]:
    """Newest first, keyset-paginated on (created_at, id); `project` None: every project's."""
    query = select(Sweep)
    if project is not None:
        query = query.where(Sweep.project == project)
    if status:
        query = query.where(Sweep.status == status)
    if cursor:
        created, sweep_id = _decode_cursor(cursor)
        query = query.where(
            (Sweep.created_at < created) | ((Sweep.created_at == created) & (Sweep.id < sweep_id))
        )
    rows = list(
        session.scalars(query.order_by(Sweep.created_at.desc(), Sweep.id.desc()).limit(limit + 1))
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        text = json.dumps([last.created_at.isoformat(), last.id])
        next_cursor = base64.urlsafe_b64encode(text.encode()).decode()
    return rows[:limit], next_cursor


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, sweep_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        at = datetime.fromisoformat(created)
        if not isinstance(sweep_id, str) or at.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidArgumentError(
            "cursor: expected a next_cursor value from a previous page"
        ) from None
    return at, sweep_id


# --- trials -------------------------------------------------------------------------------------


def add_trial(
    session: Session, *, sweep: Sweep, job: Job, number: int, params: dict[str, Any]
) -> SweepTrial:
    trial = SweepTrial(job_id=job.id, sweep_id=sweep.id, number=number, params=params, told=False)
    session.add(trial)
    job.trial = trial
    session.flush()
    return trial


def fail_job(session: Session, *, job_id: str, error: dict[str, Any]) -> None:
    """A trial whose spec cannot run ends failed at once, never queued."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status=JobStatus.FAILED.value, finished_at=utcnow(), error=error)
    )


def counts(session: Session, *, sweep_id: str) -> dict[str, int]:
    """Trials per job status, every status present (zeros included)."""
    found = dict(
        session.execute(
            select(Job.status, func.count())
            .join(SweepTrial, SweepTrial.job_id == Job.id)
            .where(SweepTrial.sweep_id == sweep_id)
            .group_by(Job.status)
        ).all()
    )
    return {status.value: int(found.get(status.value, 0)) for status in JobStatus}


def trials(session: Session, *, sweep_id: str) -> list[tuple[SweepTrial, Job]]:
    return list(
        session.execute(
            select(SweepTrial, Job)
            .join(Job, Job.id == SweepTrial.job_id)
            .where(SweepTrial.sweep_id == sweep_id)
            .order_by(SweepTrial.number)
        ).all()
    )


def untold_finished(session: Session, *, sweep_id: str) -> list[tuple[SweepTrial, str]]:
    """Bayes: finished trials whose result Optuna has not been told yet, with their status."""
    finished = [s.value for s in JobStatus if s.finished]
    return list(
        session.execute(
            select(SweepTrial, Job.status)
            .join(Job, Job.id == SweepTrial.job_id)
            .where(
                SweepTrial.sweep_id == sweep_id,
                SweepTrial.told.is_(False),
                Job.status.in_(finished),
            )
            .order_by(SweepTrial.number)
        ).all()
    )


def mark_told(session: Session, *, job_id: str) -> None:
    session.execute(update(SweepTrial).where(SweepTrial.job_id == job_id).values(told=True))


def cancel_trials(session: Session, *, sweep_id: str) -> int:
    """Cancel every queued or running trial (a running one stops within a step or two)."""
    live = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
    ids = session.scalars(
        select(Job.id)
        .join(SweepTrial, SweepTrial.job_id == Job.id)
        .where(SweepTrial.sweep_id == sweep_id, Job.status.in_(live))
    ).all()
    for job_id in ids:
        with contextlib.suppress(ConflictError):  # it ended meanwhile: nothing to cancel
            job_store.request_cancel(session, job_id=job_id)
    return len(ids)


def best_values(
    session: Session, *, sweep_id: str, name: str, maximize: bool
) -> dict[str, tuple[float, int]]:
    """Per trial job, the best finite value of a series over its points, and the epoch of the
    first point with that value."""
    rows = session.execute(
        select(MetricPoint.job_id, MetricPoint.epoch, MetricPoint.value, MetricPoint.kind)
        .join(SweepTrial, SweepTrial.job_id == MetricPoint.job_id)
        .where(SweepTrial.sweep_id == sweep_id, MetricPoint.name == name)
        .order_by(MetricPoint.job_id, MetricPoint.step)
    )
    best: dict[str, tuple[float, int]] = {}
    for job_id, epoch, value, kind in rows:
        v = decode_value(value, kind)
        if not math.isfinite(v):
            continue
        held = best.get(job_id)
        if held is None or (v > held[0] if maximize else v < held[0]):
            best[job_id] = (v, epoch)
    return best
