"""Aggregates of the jobs table for GET /v1/queues and /metrics: each one a grouped query over
`jobs` (never over `metric_points`), cheap enough to run on every request or scrape.

Durations are a finished job's `finished_at - started_at`: its last attempt's run (a resumed
or requeued job starts again), bucketed in SQL so no job is read one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, case, cast, extract, func, select
from sqlalchemy.orm import Session

from core.store.models import Job, JobStatus

# Upper bounds (seconds) of the job duration histogram: ten seconds to a day.
DURATION_BUCKETS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def _live(project: str | None) -> Any:
    condition = Job.deleted_at.is_(None)
    return condition if project is None else condition & (Job.project == project)


@dataclass(frozen=True)
class QueueDepth:
    queued: int
    oldest_id: str | None = None
    oldest_enqueued_at: datetime | None = None


def queue_depths(session: Session, *, project: str | None) -> dict[str, QueueDepth]:
    """Per queue with queued jobs: how many (of `project`, None: every project) and the
    one waiting longest (since it entered the queue: a requeued job since its requeue)."""
    queued = _live(project) & (Job.status == JobStatus.QUEUED.value)
    counts = dict(
        session.execute(select(Job.queue, func.count()).where(queued).group_by(Job.queue)).all()
    )
    depths = {}
    for queue, count in counts.items():
        oldest = session.execute(
            select(Job.id, Job.enqueued_at)
            .where(queued, Job.queue == queue)
            .order_by(Job.enqueued_at, Job.created_at, Job.id)
            .limit(1)
        ).first()
        depths[queue] = QueueDepth(count, *(oldest or (None, None)))
    return depths


def job_counts(session: Session) -> dict[tuple[str, str], int]:
    """(status, queue) -> jobs, over every project."""
    query = (
        select(Job.status, Job.queue, func.count())
        .where(_live(None))
        .group_by(Job.status, Job.queue)
    )
    return {(status, queue): n for status, queue, n in session.execute(query)}


def points_written(session: Session) -> int:
    """Metric points written by every job's runs (a rewrite after a resume counts again)."""
    return int(session.scalar(select(func.coalesce(func.sum(Job.points_written), 0))) or 0)


def throughput(session: Session) -> dict[str, float]:
    """Queue -> samples per second of its running jobs together: each job's latest steps per
    second times its batch size (an epoch's last batch may be smaller)."""
    query = select(Job.queue, Job.steps_per_second, Job.spec).where(
        _live(None), Job.status == JobStatus.RUNNING.value, Job.steps_per_second.is_not(None)
    )
    total: dict[str, float] = {}
    for queue, steps_per_second, spec in session.execute(query):
        batch = (spec.get("training") or {}).get("batch_size") or 0
        total[queue] = total.get(queue, 0.0) + steps_per_second * batch
    return total


@dataclass(frozen=True)
class Durations:
    counts: Sequence[int]  # cumulative: jobs at most DURATION_BUCKETS[i] long, then all of them
    total_seconds: float


def durations(session: Session) -> dict[tuple[str, str], Durations]:
    """(status, queue) -> the run durations of finished jobs, as a cumulative histogram."""
    seconds = _seconds(session, Job.finished_at, Job.started_at)
    finished = [s.value for s in JobStatus if s.finished]
    columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
    query = (
        select(Job.status, Job.queue, func.count(), func.sum(seconds), *columns)
        .where(
            _live(None),
            Job.status.in_(finished),
            Job.started_at.is_not(None),
            Job.finished_at.is_not(None),
        )
        .group_by(Job.status, Job.queue)
    )
    result = {}
    for status, queue, count, total, *buckets in session.execute(query):
        cumulative = [int(b or 0) for b in buckets] + [int(count)]
        result[(status, queue)] = Durations(cumulative, float(total or 0.0))
    return result


def _seconds(session: Session, end: Any, start: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", end - start)
    # SQLite keeps datetimes as text: the difference of their Julian days, in seconds.
    return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)
