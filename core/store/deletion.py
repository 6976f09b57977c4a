"""Deleting what has ended: a job with its metric points, checkpoints, exports and model files,
and a sweep with its trials.

First the job is marked (`deleted_at`, set only while it has ended): from then on every reader
and writer finds no such job, so a resume, clone or download racing the deletion gets 404, and a
resume that got there first makes the deletion a 409. Then its points go in batches, each its
own short transaction, so a job with millions of points never holds a long lock; then its files;
then its row (tags, trial and rollups follow by cascade). A deletion interrupted half-way leaves
the marked row, and deleting it again finishes the work: nothing is left without a row that
names it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import Table, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from core.artifacts import Artifacts
from core.errors import ConflictError
from core.store import jobs as job_store
from core.store import sweeps as sweep_store
from core.store.base import utcnow
from core.store.models import (
    IdempotencyRecord,
    Job,
    JobStatus,
    MetricPoint,
    MetricRollup,
    Sweep,
    SweepStatus,
    SweepTrial,
)

Sessions = Callable[[], AbstractContextManager[Session]]
BATCH = 20_000  # metric points per transaction


def delete_job(
    sessions: Sessions, artifacts: Artifacts, *, job_id: str, project: str | None
) -> None:
    """ConflictError while the job is queued or running, or when it is a sweep's trial."""
    with sessions() as session:
        job = job_store.get_job(session, job_id=job_id, project=project, deleting=True)
        if job.trial is not None:
            raise ConflictError(
                f"job {job_id} is a trial of sweep {job.trial.sweep_id}; a sweep's trials are "
                "deleted with their sweep (DELETE /v1/sweeps/{id})"
            )
        _mark(session, [job_id])
    _remove_job(sessions, artifacts, job_id)


def _mark(session: Session, job_ids: list[str]) -> None:
    """Mark ended jobs deleted and commit; ConflictError (nothing marked) when one has not
    ended, or is being resumed."""
    ended = [s.value for s in JobStatus if s.finished]
    marked = session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.status.in_(ended))
        .values(deleted_at=func.coalesce(Job.deleted_at, utcnow()))
    ).rowcount
    if marked != len(job_ids):
        session.rollback()
        busy = session.scalars(
            select(Job.id).where(Job.id.in_(job_ids), Job.status.not_in(ended))
        ).all()
        raise ConflictError(
            f"job {', '.join(busy[:3]) or job_ids[0]} is queued or running; cancel it first "
            "(POST /v1/jobs/{id}/cancel), then delete it once it has ended"
        )
    session.commit()


def delete_sweep(
    sessions: Sessions, artifacts: Artifacts, *, sweep_id: str, project: str | None
) -> list[str]:
    """An ended sweep and all its trials; ConflictError while it runs, is paused, or a trial
    of it has not stopped yet. Returns the deleted trials' ids."""
    with sessions() as session:
        sweep = sweep_store.get_sweep(session, sweep_id=sweep_id, project=project)
        if not SweepStatus(sweep.status).ended:
            raise ConflictError(
                f"sweep {sweep_id} is {sweep.status}; cancel it first "
                f"(POST /v1/sweeps/{sweep_id}/cancel), then delete it"
            )
        trials = list(
            session.execute(
                select(Job.id, Job.status)
                .join(SweepTrial, SweepTrial.job_id == Job.id)
                .where(SweepTrial.sweep_id == sweep_id)
            )
        )
    if busy := [job_id for job_id, status in trials if not JobStatus(status).finished]:
        raise ConflictError(
            f"sweep {sweep_id} still has {len(busy)} trial(s) stopping ({', '.join(busy[:3])}); "
            "try again in a few seconds"
        )
    if trials:
        with sessions() as session:
            _mark(session, [job_id for job_id, _ in trials])
    for job_id, _ in trials:
        _remove_job(sessions, artifacts, job_id)
    with sessions() as session:
        session.execute(delete(Sweep).where(Sweep.id == sweep_id))
        session.commit()
    return [job_id for job_id, _ in trials]


def _remove_job(sessions: Sessions, artifacts: Artifacts, job_id: str) -> None:
    for model in (MetricPoint, MetricRollup):
        _delete_in_batches(sessions, model.__table__, job_id)
    artifacts.delete_prefix(f"jobs/{job_id}/")
    with sessions() as session:
        # A stored answer that names the job would replay a job that is gone.
        answer = IdempotencyRecord.response["id"].as_string()
        session.execute(delete(IdempotencyRecord).where(answer == job_id))
        session.execute(delete(Job).where(Job.id == job_id))
        session.commit()


def _delete_in_batches(sessions: Sessions, table: Table, job_id: str) -> None:
    """The job's rows of `table` (primary key: job_id, then the rest), BATCH per transaction."""
    of_job = table.c.job_id == job_id
    rest = [c for c in table.primary_key.columns if c.name != "job_id"]
    while True:
        with sessions() as session:
            batch = select(*rest).where(of_job).limit(BATCH)
            deleted = session.execute(
                delete(table).where(of_job, tuple_(*rest).in_(batch))
            ).rowcount
            session.commit()
        if deleted < BATCH:
            return
