"""Typed results of the v1 API, mirroring `api/schemas.py` and `api/routes/compare.py`.

Frozen and lenient: a field the server adds later is ignored, so an older client keeps working.
NaN and infinities, which the API sends as the strings "NaN"/"Infinity", come back as floats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Job(_Model):
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

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's value of each metric, once the job has run."""
        return self.summary.get("final") or {}

    @property
    def best(self) -> dict[str, Any]:
        return self.summary.get("best") or {}


class Page(_Model):
    items: list[Job]
    next_cursor: str | None


class Series(_Model):
    name: str
    steps: list[int]
    epochs: list[int]
    values: list[float]
    # Present when the series was downsampled: the extremes of each bucket's finite values.
    min: list[float | None] | None = None
    max: list[float | None] | None = None


class ComparedJob(_Model):
    id: str
    name: str
    status: str


class MetricSummary(_Model):
    final: float
    best: float | None
    best_step: int | None


class AlignedSeries(_Model):
    steps: list[int]
    values: list[list[float | None]]  # per job, aligned to `steps`


class Comparison(_Model):
    jobs: list[ComparedJob]
    params: dict[str, list[Any]]  # spec paths whose values differ, one value per job
    metrics: dict[str, list[MetricSummary | None]]  # per job; None where it has no such series
    series: dict[str, AlignedSeries]
