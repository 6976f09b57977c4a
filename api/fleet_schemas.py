"""Response models of /v1/workers and /v1/queues."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core.store.models import Worker
from core.store.workers import Running


class DeviceOut(BaseModel):
    type: str = Field(description="cpu, cuda or mps")
    gpu_name: str | None = Field(None, description="the first GPU's name")
    gpu_memory_bytes: int | None = Field(None, description="the first GPU's total memory")
    gpu_count: int = 0


class WorkerOut(BaseModel):
    id: str = Field(description="its Celery node name; a job's `worker` is `<id>/<pool pid>`")
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    device: DeviceOut
    version: str
    started_at: datetime
    last_heartbeat: datetime
    running: int = Field(description="its running jobs, of every project")
    running_jobs: list[str] = Field(description="the ids of those in the caller's project")

    @classmethod
    def of(cls, worker: Worker, running: list[Running], project: str | None) -> WorkerOut:
        return cls(
            id=worker.id,
            hostname=worker.hostname,
            pid=worker.pid,
            queues=worker.queues,
            concurrency=worker.concurrency,
            device=DeviceOut(
                type=worker.device,
                gpu_name=worker.gpu_name,
                gpu_memory_bytes=worker.gpu_memory_bytes,
                gpu_count=worker.gpu_count,
            ),
            version=worker.version,
            started_at=worker.started_at,
            last_heartbeat=worker.last_heartbeat,
            running=len(running),
            running_jobs=[r.job_id for r in running if project is None or r.project == project],
        )


class OldestJob(BaseModel):
    id: str
    enqueued_at: datetime
    waiting_seconds: float = Field(description="since it entered the queue (or was requeued)")


class QueueOut(BaseModel):
    name: str
    queued: int = Field(description="queued jobs of the caller's project (admin ?project=*: all)")
    broker_messages: int | None = Field(
        description="messages waiting in the broker's list, every project's; null when the "
        "broker cannot be read"
    )
    oldest: OldestJob | None = Field(description="the caller's queued job submitted first")
    workers: int = Field(description="live workers serving the queue")
    gpu_workers: int = Field(description="... of which have a CUDA GPU")
