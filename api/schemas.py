"""Response models of the v1 API."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from core.store.jobs import warnings_of
from core.store.metrics import Series
from core.store.models import Job
from core.store.workers import Fleet


class JobWarningOut(BaseModel):
    code: str  # queue_has_no_workers, no_gpu_worker
    message: str


class JobOut(BaseModel):
    id: str
    name: str
    tags: list[str]
    status: str
    queue: str
    spec: dict[str, Any]
    progress: dict[str, Any]
    summary: dict[str, Any]
    error: dict[str, Any] | None
    attempts: int
    worker: str | None
    device: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    checkpoint: dict[str, Any] | None = None  # {"last": {key, epoch, step, attempt}, "best": …}
    source_job_id: str | None = None  # the job this one was cloned from
    init_from: dict[str, Any] | None = None  # the weights it started from (fine-tuning)
    sweep_id: str | None = None  # a sweep's trial: its sweep
    sweep_params: dict[str, Any] | None = None  # ... and the parameter values it was given
    # Why a queued job may wait for ever: its worker was lost (`worker_lost`), or no live
    # worker, as this request saw them, can take it (`queue_has_no_workers`, `no_gpu_worker`).
    warnings: list[JobWarningOut] = []

    @classmethod
    def of(cls, job: Job, fleet: Fleet | None = None) -> JobOut:
        """`fleet`: the live workers, for the job's warnings (none without it)."""
        return cls(
            id=job.id,
            name=job.name,
            tags=[t.tag for t in job.tags],
            status=job.status,
            queue=job.queue,
            spec=job.spec,
            progress=job.progress,
            summary=job.summary,
            error=job.error,
            attempts=job.attempts,
            worker=job.worker,
            device=job.device,
            cancel_requested=job.cancel_requested,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            checkpoint=job.checkpoint,
            source_job_id=job.source_job_id,
            init_from=job.init_from,
            sweep_id=job.trial.sweep_id if job.trial else None,
            sweep_params=job.trial.params if job.trial else None,
            warnings=[
                JobWarningOut(code=w.code, message=w.message)
                for w in (fleet.warnings(job) if fleet else warnings_of(job))
            ],
        )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


def json_float(value: float) -> float | str:
    """JSON has no NaN or infinity: send them as the strings JavaScript's Number() reads."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


class SeriesOut(BaseModel):
    name: str
    steps: list[int]
    epochs: list[int]
    values: list[float | str]
    # Present when the series was downsampled: each point is a bucket of steps, with its
    # last value in `values` and the extremes of its finite values here.
    min: list[float | None] | None = None
    max: list[float | None] | None = None

    @classmethod
    def of(cls, s: Series) -> SeriesOut:
        return cls(
            name=s.name,
            steps=s.steps,
            epochs=s.epochs,
            values=[json_float(v) for v in s.values],
            min=s.min,
            max=s.max,
        )


class MetricsOut(BaseModel):
    job_id: str
    series: list[SeriesOut]
