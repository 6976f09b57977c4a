"""Job repository: create, read, list, cancel, and the worker's claim/lease/finish protocol.

Every state change is one conditional UPDATE, so two processes racing on the same job (a
redelivered message, a reaper and a worker) cannot both win. A claim returns the attempt
number; the worker's later writes name it, so a worker whose lease was taken over (it went
silent, the job was requeued and claimed again) can no longer write to the job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, func, null, select, update
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError
from core.store import job_queries
from core.store.base import utcnow
from core.store.job_queries import JobOrder, ParamFilter
from core.store.models import DEFAULT_PROJECT, Job, JobStatus, JobTag, SweepTrial
from core.store.projects import in_project


def new_job_id() -> str:
    return str(uuid.uuid4())


def create_job(
    session: Session,
    *,
    spec: dict[str, Any],
    name: str,
    tags: list[str],
    queue: str,
    summary: dict[str, Any],
    epochs: int,
    source_job_id: str | None = None,
    init_from: dict[str, Any] | None = None,
    job_id: str | None = None,
    project: str = DEFAULT_PROJECT,
    created_by: str | None = None,
) -> Job:
    job = Job(
        id=job_id or new_job_id(),
        project=project,
        created_by=created_by,
        source_job_id=source_job_id,
        init_from=init_from,
        name=name,
        status=JobStatus.QUEUED.value,
        queue=queue,
        spec=spec,
        progress={"epoch": 0, "epochs": epochs, "step": 0},
        summary=summary,
        tags=[JobTag(tag=t, position=i) for i, t in enumerate(dict.fromkeys(tags))],
        trial=None,  # known now: reading it after the commit must not need a connection
    )
    session.add(job)
    session.flush()
    return job


def get_job(
    session: Session, *, job_id: str, project: str | None = None, deleting: bool = False
) -> Job:
    """The job; NotFoundError when there is none, it belongs to another project than
    `project` (None: any), so that another project's ids look exactly like unknown ones, or
    it is being deleted (unless `deleting`: the deletion's own look-up)."""
    job = session.get(Job, job_id)
    if not in_project(job, project) or (job.deleted_at is not None and not deleting):
        raise NotFoundError(f"no job with id {job_id!r}")
    return job


def delete_job(session: Session, *, job_id: str) -> None:
    session.execute(delete(Job).where(Job.id == job_id))


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    tag: str | None = None,
    sweep_id: str | None = None,
    params: Sequence[ParamFilter] = (),
    order: JobOrder | None = None,
    limit: int = 50,
    cursor: str | None = None,
    project: str | None = None,
) -> tuple[list[Job], str | None]:
    """Newest first unless `order` says otherwise, keyset-paginated on ([metric], created_at,
    id); `params` keep the jobs whose spec holds each value (see core.store.job_queries);
    `sweep_id` keeps a sweep's trials."""
    order = order or JobOrder()
    key = job_queries.final_value(order.metric) if order.metric else None
    query = select(Job, key.label("key") if key is not None else null())
    query = query.where(Job.deleted_at.is_(None))
    if project is not None:
        query = query.where(Job.project == project)
    if status:
        query = query.where(Job.status == status)
    if tag:
        query = query.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    if sweep_id:
        trials = select(SweepTrial.job_id).where(SweepTrial.sweep_id == sweep_id)
        query = query.where(Job.id.in_(trials))
    dialect = session.get_bind().dialect.name
    for spec_filter in params:
        query = query.where(job_queries.param_condition(dialect, spec_filter))
    if cursor:
        query = query.where(job_queries.after_cursor(order, key, cursor))
    rows = session.execute(query.order_by(*job_queries.order_clauses(order, key)).limit(limit + 1))
    page = [(job, value) for job, value in rows]
    next_cursor = None
    if len(page) > limit:
        last, value = page[limit - 1]
        next_cursor = job_queries.encode_cursor(order, value, last)
    return [job for job, _ in page[:limit]], next_cursor


def request_cancel(session: Session, *, job_id: str, project: str | None = None) -> Job:
    """A queued job is cancelled at once; a running one is flagged and its worker stops it."""
    get_job(session, job_id=job_id, project=project)
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.CANCELLED.value,
            cancel_requested=True,
            finished_at=utcnow(),
            error=None,  # a lost worker's warning: the cancellation is what ended it
        )
    ).rowcount
    changed += session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(cancel_requested=True)
    ).rowcount
    job = get_job(session, job_id=job_id)
    session.refresh(job)
    if not changed:
        raise ConflictError(
            f"job {job_id} already ended ({job.status}); only a queued or running job can be cancelled"
        )
    return job


RESUMABLE = (JobStatus.CANCELLED.value, JobStatus.FAILED.value)


class Reopened(NamedTuple):
    """What `reopen_job` changed, so that `undo_reopen` can put it back."""

    status: str
    error: dict[str, Any] | None
    cancel_requested: bool
    finished_at: Any
    enqueued_at: Any
    attempts: int


def reopen_job(
    session: Session, *, job_id: str, project: str | None = None
) -> tuple[Job, Reopened]:
    """A cancelled or failed job back to queued; its next attempt resumes from its `last`
    checkpoint if it has one. ConflictError for any other status."""
    job = get_job(session, job_id=job_id, project=project)
    before = Reopened(
        job.status,
        job.error,
        job.cancel_requested,
        job.finished_at,
        job.enqueued_at,
        job.attempts,
    )
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(RESUMABLE))
        .values(
            status=JobStatus.QUEUED.value,
            error=None,
            cancel_requested=False,
            release_requested=False,
            worker=None,
            finished_at=None,
            enqueued_at=utcnow(),
        )
    ).rowcount
    session.refresh(job)
    if not changed:
        raise ConflictError(
            f"job {job_id} is {job.status}; only a cancelled or failed job can be resumed"
        )
    return job, before


def undo_reopen(session: Session, *, job_id: str, before: Reopened) -> None:
    """Undo `reopen_job` (its message could not be sent), unless a worker took the job since."""
    session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.QUEUED.value,
            Job.attempts == before.attempts,
        )
        .values(
            status=before.status,
            error=before.error,
            cancel_requested=before.cancel_requested,
            finished_at=before.finished_at,
            enqueued_at=before.enqueued_at,
        )
    )


# --- the worker's side ------------------------------------------------------------------


def store_now(session: Session) -> Any:
    """Leases are judged by one clock: the store's own where several machines share it
    (PostgreSQL's `now()`), so that no two hosts' clocks need agree. SQLite lives on one
    machine, whose clock it shares."""
    return func.now() if session.get_bind().dialect.name == "postgresql" else utcnow()


def claim_job(session: Session, *, job_id: str, worker: str, device: str) -> Job | None:
    """Move a queued job to running for this worker; None if another process has it or it ended.

    The claimed job's `attempts` is the token the worker's later writes must name.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.RUNNING.value,
            worker=worker,
            device=device,
            attempts=Job.attempts + 1,
            release_requested=False,
            started_at=now,
            heartbeat_at=store_now(session),
        )
    ).rowcount
    return session.get(Job, job_id, populate_existing=True) if claimed else None


def _held(job_id: str, attempt: int) -> Any:
    return (Job.id == job_id) & (Job.status == JobStatus.RUNNING.value) & (Job.attempts == attempt)


class LeaseState(NamedTuple):
    held: bool  # this attempt still holds the job
    cancel_requested: bool
    release_requested: bool  # its worker is shutting down


def request_release(session: Session, *, worker_prefix: str) -> int:
    """Ask the running jobs of a stopping worker (`worker` starting with the prefix) to step back."""
    return session.execute(
        update(Job)
        .where(Job.status == JobStatus.RUNNING.value, Job.worker.startswith(worker_prefix))
        .values(release_requested=True)
    ).rowcount


def release_job(session: Session, *, job_id: str, attempt: int) -> bool:
    """Back to queued, this attempt not counted: the worker stopped, the job did not fail."""
    return bool(
        session.execute(
            update(Job)
            .where(_held(job_id, attempt))
            .values(
                status=JobStatus.QUEUED.value,
                attempts=Job.attempts - 1,
                worker=None,
                release_requested=False,
                enqueued_at=utcnow(),
            )
        ).rowcount
    )


def touch(session: Session, *, job_id: str, attempt: int) -> LeaseState:
    """Renew the lease and read, in the same statement, what the worker must obey: a cancel
    request, its own shutdown, or (`held` False) another attempt holding the job."""
    row = session.execute(
        update(Job)
        .where(_held(job_id, attempt))
        .values(heartbeat_at=store_now(session))
        .returning(Job.cancel_requested, Job.release_requested)
    ).first()
    return LeaseState(row is not None, bool(row and row[0]), bool(row and row[1]))


def record_progress(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    progress: dict[str, Any],
    points: int = 0,
    steps_per_second: float | None = None,
) -> bool:
    """Progress doubles as a heartbeat; `points` written with it are counted, and the run's
    current speed kept (for /metrics). False: this attempt no longer holds the job."""
    values: dict[str, Any] = {"progress": progress, "heartbeat_at": store_now(session)}
    if points:
        values["points_written"] = Job.points_written + points
    if steps_per_second is not None:
        values["steps_per_second"] = steps_per_second
    return bool(
        session.execute(update(Job).where(_held(job_id, attempt)).values(**values)).rowcount
    )


def record_checkpoint(
    session: Session, *, job_id: str, attempt: int, checkpoint: dict[str, Any]
) -> bool:
    """Publish checkpoint pointers (their files fully written). False: this attempt no longer
    holds the job, and its checkpoints are not the job's."""
    return bool(
        session.execute(
            update(Job).where(_held(job_id, attempt)).values(checkpoint=checkpoint)
        ).rowcount
    )


def finish_job(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    status: JobStatus,
    summary: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "error": error}
    if summary is not None:
        values["summary"] = summary
    return bool(
        session.execute(update(Job).where(_held(job_id, attempt)).values(**values)).rowcount
    )


# --- recovery (the reaper) -----------------------------------------------------------------

WORKER_LOST = "worker_lost"  # the error type of a job whose worker went silent


def worker_losses(error: dict[str, Any] | None) -> int:
    """How many attempts in a row lost their worker: counted on the job's `error` until the
    job ends (a finished attempt overwrites it) or is resumed by hand."""
    return int(error.get("lost", 0)) if error and error.get("type") == WORKER_LOST else 0


@dataclass(frozen=True)
class JobWarning:
    code: str
    message: str


def warnings_of(job: Job) -> list[JobWarning]:
    """What a reader should know about a job that has not ended: a queued job whose last
    worker was lost is waiting for another one to take it."""
    if job.status == JobStatus.QUEUED.value and worker_losses(job.error):
        return [JobWarning(WORKER_LOST, str(job.error["message"]))]  # type: ignore[index]
    return []


def requeue_stale_jobs(
    session: Session, *, lease_seconds: float, max_attempts: int
) -> list[tuple[str, str]]:
    """Running jobs whose heartbeat is older than the lease (by the store's clock): their
    worker died, hangs, or is cut off. Cancelled if asked; failed once `max_attempts`
    attempts in a row lost their worker (one that keeps killing its workers, out of memory
    say); otherwise back to queued, marked `worker_lost` until a worker takes it. Returns (id,
    queue) of the requeued; the caller sends them. Each job moves by one conditional UPDATE,
    so that several reapers at once move it once."""
    now = utcnow()
    stale = (Job.status == JobStatus.RUNNING.value) & (
        Job.heartbeat_at < store_now(session) - timedelta(seconds=lease_seconds)
    )
    session.execute(
        update(Job)
        .where(stale, Job.cancel_requested.is_(True))
        .values(status=JobStatus.CANCELLED.value, finished_at=now)
    )
    rows = session.execute(
        select(Job.id, Job.queue, Job.worker, Job.attempts, Job.error).where(stale)
    ).all()
    requeued = []
    for job_id, queue, worker, attempt, error in rows:
        lost = worker_losses(error) + 1
        if lost >= max_attempts:
            message = (
                f"its worker was lost {lost} times in a row, each time without a word (no "
                f"heartbeat for {lease_seconds:g}s; likely killed for running out of memory); "
                f"gave up after EPOCHAL_MAX_ATTEMPTS={max_attempts}, last on {worker}"
            )
            values: dict[str, Any] = {"status": JobStatus.FAILED.value, "finished_at": now}
        else:
            message = (
                f"attempt {attempt} stopped: its worker ({worker}) sent no heartbeat for "
                f"{lease_seconds:g}s (killed, out of memory, or cut off from the store); "
                "queued again, to resume from its last checkpoint"
            )
            values = {
                "status": JobStatus.QUEUED.value,
                "worker": None,
                "release_requested": False,
                "enqueued_at": now,
            }
        values["error"] = {
            "type": WORKER_LOST,
            "message": message,
            "lost": lost,
            "attempt": attempt,
            "worker": worker,
        }
        moved = session.execute(
            update(Job).where(Job.id == job_id, Job.attempts == attempt, stale).values(**values)
        ).rowcount
        if moved and values["status"] == JobStatus.QUEUED.value:
            requeued.append((job_id, queue))
    return requeued


def waiting_jobs(session: Session, *, sent_before_seconds: float) -> list[tuple[str, str]]:
    """Queued jobs whose last message was sent more than this long ago, as (id, queue), in
    the order they entered their queue (`enqueued_at`, then creation). Redelivery
    (core.running.redelivery) checks that the broker still holds a message for each."""
    sent_before = utcnow() - timedelta(seconds=sent_before_seconds)
    rows = session.execute(
        select(Job.id, Job.queue)
        .where(Job.status == JobStatus.QUEUED.value, Job.enqueued_at < sent_before)
        .order_by(Job.enqueued_at, Job.created_at, Job.id)
    ).all()
    return [(job_id, queue) for job_id, queue in rows]
