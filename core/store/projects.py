"""Projects: the tenants that own jobs, sweeps and data sets, and their quotas.

A submission checks its project's quota and stores its rows in one transaction that first takes
the project's lock (a write to its row: a row lock on PostgreSQL, the database's write lock on
SQLite), so two submissions racing for the last free place cannot both take it.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.errors import QuotaExceededError
from core.store.base import upsert_insert, utcnow
from core.store.models import Dataset, Job, JobStatus, Project, Sweep, SweepStatus

ACTIVE_JOBS = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def in_project(row: Job | Sweep | Dataset | None, project: str | None) -> bool:
    """Whether `row` exists for a caller of `project` (None: every project). Another project's
    row is answered exactly as a missing one, so that existence never leaks."""
    return row is not None and (project is None or row.project == project)


def ensure_project(session: Session, project: str) -> None:
    """The project's row, made if it is missing (a concurrent maker is not an error)."""
    insert = upsert_insert(session)
    session.execute(insert(Project).values(name=project).on_conflict_do_nothing())


def lock_project(session: Session, project: str) -> None:
    """Hold the project's lock until the transaction ends. Must be the transaction's first
    statement on SQLite (a read before it would pin an old snapshot): it ends any open one."""
    session.rollback()
    changed = session.execute(
        update(Project).where(Project.name == project).values(locked_at=utcnow())
    ).rowcount
    if not changed:
        ensure_project(session, project)
        session.execute(update(Project).where(Project.name == project).values(locked_at=utcnow()))


def active_jobs(session: Session, project: str) -> int:
    query = select(func.count()).where(Job.project == project, Job.status.in_(ACTIVE_JOBS))
    return session.scalar(query) or 0


def running_sweeps(session: Session, project: str) -> int:
    query = select(func.count()).where(
        Sweep.project == project, Sweep.status == SweepStatus.RUNNING.value
    )
    return session.scalar(query) or 0


def upload_bytes(session: Session, project: str) -> int:
    query = select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(Dataset.project == project)
    return int(session.scalar(query) or 0)


def check_active_jobs(session: Session, project: str, limit: int, adding: int = 1) -> None:
    if (n := active_jobs(session, project)) + adding > limit:
        raise QuotaExceededError(
            f"project {project!r} has {n} queued or running jobs, its limit "
            f"(EPOCHAL_PROJECT_MAX_ACTIVE_JOBS={limit}); wait for some to end or cancel them; "
            "nothing was stored",
            retry_after=30,
        )


def check_running_sweeps(session: Session, project: str, limit: int) -> None:
    if (n := running_sweeps(session, project)) >= limit:
        raise QuotaExceededError(
            f"project {project!r} has {n} running sweeps, its limit "
            f"(EPOCHAL_PROJECT_MAX_RUNNING_SWEEPS={limit}); pause, cancel or finish one; "
            "nothing was stored",
            retry_after=60,
        )


def check_upload_bytes(session: Session, project: str, limit: int, adding: int) -> None:
    if (used := upload_bytes(session, project)) + adding > limit:
        raise QuotaExceededError(
            f"project {project!r} stores {used:,} bytes of uploaded data; {adding:,} more would "
            f"pass its limit (EPOCHAL_PROJECT_MAX_UPLOAD_BYTES={limit:,}); delete data sets "
            "first; nothing was stored"
        )
