"""Job repository: create, read, list, cancel, and the worker's claim/finish/lease protocol.

Every state change is one conditional UPDATE, so two processes racing on the same job (a
redelivered message, a reaper and a worker) cannot both win.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.errors import ConflictError, InvalidArgumentError, NotFoundError
from core.store.base import utcnow
from core.store.models import Job, JobStatus, JobTag

ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def create_job(
    session: Session,
    *,
    spec: dict[str, Any],
    name: str,
    tags: list[str],
    queue: str,
    summary: dict[str, Any],
    epochs: int,
) -> Job:
    job = Job(
        id=str(uuid.uuid4()),
        name=name,
        status=JobStatus.QUEUED.value,
        queue=queue,
        spec=spec,
        progress={"epoch": 0, "epochs": epochs, "step": 0},
        summary=summary,
        tags=[JobTag(tag=t, position=i) for i, t in enumerate(dict.fromkeys(tags))],
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}")
    return job


def _encode_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(
            "cursor: expected a next_cursor value from a previous page"
        ) from e


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Job)
    if status:
        query = query.where(Job.status == status)
    if tag:
        query = query.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    if cursor:
        created, job_id = _decode_cursor(cursor)
        query = query.where(
            (Job.created_at < created) | ((Job.created_at == created) & (Job.id < job_id))
        )
    jobs = list(
        session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))
    )
    next_cursor = _encode_cursor(jobs[limit - 1]) if len(jobs) > limit else None
    return jobs[:limit], next_cursor


def request_cancel(session: Session, *, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one is flagged and its worker stops it."""
    now = utcnow()
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.CANCELLED.value, cancel_requested=True, finished_at=now)
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


def claim_job(session: Session, *, job_id: str, worker: str, device: str) -> Job | None:
    """Move a queued job to running for this worker; None if another process has it or it ended."""
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.RUNNING.value,
            worker=worker,
            device=device,
            attempts=Job.attempts + 1,
            started_at=now,
            heartbeat_at=now,
        )
    ).rowcount
    return session.get(Job, job_id, populate_existing=True) if claimed else None


def is_cancel_requested(session: Session, *, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def touch(session: Session, *, job_id: str) -> None:
    """Renew a running job's lease."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(heartbeat_at=utcnow())
    )


def record_progress(session: Session, *, job_id: str, progress: dict[str, Any]) -> None:
    """Progress doubles as the lease's heartbeat."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(progress=progress, heartbeat_at=utcnow())
    )


def finish_job(
    session: Session,
    *,
    job_id: str,
    status: JobStatus,
    summary: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "error": error}
    if summary is not None:
        values["summary"] = summary
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING.value).values(**values)
    )


def requeue_stale_jobs(session: Session, *, lease_seconds: float, max_attempts: int) -> list[str]:
    """Jobs whose worker went silent: back to queued (to be re-sent), or failed after max attempts.

    Returns the ids moved back to queued; the caller sends their messages after committing.
    """
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    stale = (Job.status == JobStatus.RUNNING.value) & (Job.heartbeat_at < cutoff)
    session.execute(
        update(Job)
        .where(stale, Job.cancel_requested.is_(True))
        .values(status=JobStatus.CANCELLED.value, finished_at=utcnow())
    )
    session.execute(
        update(Job)
        .where(stale, Job.attempts >= max_attempts)
        .values(
            status=JobStatus.FAILED.value,
            finished_at=utcnow(),
            error={"type": "WorkerLost", "message": f"the worker was lost {max_attempts} times"},
        )
    )
    ids = list(session.scalars(select(Job.id).where(stale)))
    requeued = []
    for job_id in ids:
        moved = session.execute(
            update(Job)
            .where(Job.id == job_id, stale)
            .values(status=JobStatus.QUEUED.value, worker=None)
        ).rowcount
        if moved:
            requeued.append(job_id)
    return requeued


def delete_job(session: Session, *, job_id: str) -> None:
    session.execute(delete(Job).where(Job.id == job_id))
