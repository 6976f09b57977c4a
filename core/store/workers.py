"""The workers registry: each worker process registers and beats a row; readers see the fleet.

A worker is live while its last heartbeat is at most `Settings.worker_live_seconds` old (a few
heartbeats, so one slow write does not drop it). A clean shutdown deletes the row; a killed
worker's row simply stops beating, and long-dead rows are pruned by the workers still beating.
A worker's running jobs are the running jobs whose `worker` (`<node name>/<pool pid>`) names
its node.

`Fleet` is what readers need at once: the live workers, which queues they serve, and whether
any has a GPU; from it, the warnings a queued job carries (`queue_has_no_workers`,
`no_gpu_worker`), computed at read time, never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.store.base import upsert_insert, utcnow
from core.store.jobs import JobWarning, store_now, warnings_of
from core.store.models import Job, JobStatus, Worker

PRUNE_AFTER = timedelta(days=1)  # a worker silent this long leaves the table

QUEUE_HAS_NO_WORKERS = "queue_has_no_workers"
NO_GPU_WORKER = "no_gpu_worker"


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says about itself when it registers (and with every beat)."""

    id: str  # its Celery node name, unique per worker process
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    device: str  # cpu, cuda or mps
    gpu_name: str | None = None
    gpu_memory_bytes: int | None = None
    gpu_count: int = 0
    version: str = ""


def beat(session: Session, *, info: WorkerInfo) -> None:
    """Register the worker or renew its heartbeat (one upsert): a row deleted meanwhile, or
    lost with a store restored from a backup, comes back with the next beat."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": info.id,
        "hostname": info.hostname,
        "pid": info.pid,
        "queues": list(info.queues),
        "concurrency": info.concurrency,
        "device": info.device,
        "gpu_name": info.gpu_name,
        "gpu_memory_bytes": info.gpu_memory_bytes,
        "gpu_count": info.gpu_count,
        "version": info.version,
        "started_at": now,
        "last_heartbeat": store_now(session),  # judged by the store's clock, as job leases
    }
    statement = upsert_insert(session)(Worker).values(**values)
    kept = {k: v for k, v in values.items() if k not in ("id", "started_at")}
    session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=kept))


def forget(session: Session, *, worker_id: str) -> None:
    """A clean shutdown: the worker leaves the fleet at once."""
    session.execute(delete(Worker).where(Worker.id == worker_id))


def prune(session: Session, *, older_than: timedelta = PRUNE_AFTER) -> int:
    """Delete the rows of workers silent for `older_than` (killed, never shut down)."""
    cutoff = store_now(session) - older_than
    return session.execute(delete(Worker).where(Worker.last_heartbeat < cutoff)).rowcount


def live_workers(session: Session, *, within_seconds: float) -> list[Worker]:
    """Workers whose last heartbeat is at most `within_seconds` old, by id."""
    cutoff = store_now(session) - timedelta(seconds=within_seconds)
    query = select(Worker).where(Worker.last_heartbeat >= cutoff).order_by(Worker.id)
    return list(session.scalars(query))


class Running(NamedTuple):
    job_id: str
    project: str


def running_jobs(session: Session, *, worker_ids: Iterable[str]) -> dict[str, list[Running]]:
    """Each worker's running jobs (oldest start first); every worker is a key."""
    wanted: dict[str, list[Running]] = {w: [] for w in worker_ids}
    query = (
        select(Job.id, Job.project, Job.worker)
        .where(
            Job.status == JobStatus.RUNNING.value,
            Job.worker.is_not(None),
            Job.deleted_at.is_(None),
        )
        .order_by(Job.started_at, Job.id)
    )
    for job_id, project, worker in session.execute(query):
        node = worker.rsplit("/", 1)[0]
        if node in wanted:
            wanted[node].append(Running(job_id, project))
    return wanted


@dataclass(frozen=True)
class Fleet:
    """The live workers, as one read saw them."""

    workers: Sequence[Worker] = ()
    queues: frozenset[str] = field(default=frozenset())

    @classmethod
    def read(cls, session: Session, *, within_seconds: float) -> Fleet:
        workers = live_workers(session, within_seconds=within_seconds)
        return cls(workers, frozenset(q for w in workers for q in w.queues))

    def serving(self, queue: str) -> list[Worker]:
        return [w for w in self.workers if queue in w.queues]

    def warnings(self, job: Job) -> list[JobWarning]:
        """Why a queued job may wait for ever: no live worker takes its queue, or it asks for
        `cuda` and no live worker on its queue has a GPU; and its own (its worker was lost)."""
        if job.status != JobStatus.QUEUED.value:
            return []
        return warnings_of(job) + self._fleet_warnings(job)

    def _fleet_warnings(self, job: Job) -> list[JobWarning]:
        serving = self.serving(job.queue)
        if not serving:
            return [
                JobWarning(
                    QUEUE_HAS_NO_WORKERS,
                    f"no live worker serves queue {job.queue!r}: the job waits until one "
                    f"starts (e.g. epochal worker --queues {job.queue})",
                )
            ]
        device = (job.spec.get("resources") or {}).get("device")
        if device == "cuda" and not any(w.device == "cuda" for w in serving):
            return [
                JobWarning(
                    NO_GPU_WORKER,
                    f"no live worker on queue {job.queue!r} has a CUDA GPU: a worker without "
                    "one cannot run this job",
                )
            ]
        return []


def age_seconds(since: datetime) -> float:
    return max(0.0, (utcnow() - since).total_seconds())
