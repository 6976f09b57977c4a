"""Typed results of the v1 API, mirroring `api/schemas.py`, `api/routes/compare.py` and the
sweep contract (a Sweep, its counts, best trial and leaderboard). Mirrored by hand, since the
client never imports the server; tests/client/test_openapi_mirror.py compares them with the
API's OpenAPI document, so a field the API adds fails the suite until it is added here.

Frozen and lenient: a field the server adds later is ignored, so an older client keeps working.
NaN and infinities, which the API sends as the strings "NaN"/"Infinity", come back as floats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

# `pruned`: a sweep trial stopped by early termination, which ends it as surely as success.
FINISHED = frozenset({"succeeded", "failed", "cancelled", "pruned"})
SWEEP_FINISHED = frozenset({"finished", "cancelled"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class JobWarning(_Model):
    code: str  # queue_has_no_workers, no_gpu_worker
    message: str


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
    # The last and best checkpoints kept: {"last": {key, epoch, step, attempt}, "best": ...}.
    checkpoint: dict[str, Any] | None = None
    source_job_id: str | None = None  # the job this one was cloned from
    init_from: dict[str, Any] | None = None  # the weights it started from (fine-tuning)
    sweep_id: str | None = None  # set on a sweep's trials
    sweep_params: dict[str, Any] | None = None  # ... with the parameter values it was given
    warnings: list[JobWarning] = []  # why a queued job may wait: worker_lost, no live worker

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
    x: list[int]  # epochs or steps, as Comparison.x says
    values: list[list[float | None]]  # per job, aligned to `x`
    steps: list[int] = []  # deprecated: the step of each aligned point (by epoch: the latest)


class Comparison(_Model):
    jobs: list[ComparedJob]
    params: dict[str, list[Any]]  # spec paths whose values differ, one value per job
    metrics: dict[str, list[MetricSummary | None]]  # per job; None where it has no such series
    series: dict[str, AlignedSeries]
    x: str = "epoch"  # the axis the series are aligned on: epoch | step


# --- data sets and models ----------------------------------------------------------------


class Dataset(_Model):
    """A built-in data set, or an upload (whose fields below the first block are set)."""

    id: str  # what a spec's dataset.name takes: the built-in's name, or the upload's id
    name: str
    source: str  # builtin | upload
    description: str
    task: str  # classification | regression
    feature_shape: list[int]
    samples: int
    num_classes: int | None
    target_shape: list[int]
    options: list[str]
    # Uploads only.
    format: str | None = None  # csv | npz | parquet
    target: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    columns: list[str] | None = None  # a table's feature columns, in file order
    features: list[str] | None = None  # one per input feature: "length", "soil=clay", ...
    categories: dict[str, list[str]] | None = None  # a text column's values (one-hot order)
    classes: list[Any] | None = None  # class id -> label as in the file
    created_at: datetime | None = None


class Evaluation(_Model):
    job_id: str
    dataset: str
    samples: int
    metrics: dict[str, float]  # the spec's loss and metrics on the data set


class Prediction(_Model):
    """POST /v1/jobs/{id}/predict's answer (and `epochal_client.offline.predict_file`'s)."""

    job_id: str | None  # None offline when the model file's metadata lacks it
    outputs: list[dict[str, Any]]  # per input: {"label", "probabilities"} or {"value"}
    classes: list[Any] | None = None  # a classifier's labels, in probability order


class Event(_Model):
    """One server-sent event of GET /v1/jobs/{id}/events: `progress` ({status, progress}),
    `metrics` ({series: the points newer than those sent}) or `end` (the final job)."""

    event: str
    data: dict[str, Any]
    id: str | None = None  # metrics events: where a reconnection resumes (Last-Event-ID)

    @property
    def series(self) -> list[Series]:
        return [Series.model_validate(s) for s in self.data.get("series", [])]

    @property
    def job(self) -> Job | None:
        """The final job, on the `end` event."""
        return Job.model_validate(self.data) if self.event == "end" else None


# --- the fleet ----------------------------------------------------------------------------


class Device(_Model):
    type: str  # cpu, cuda or mps
    gpu_name: str | None = None
    gpu_memory_bytes: int | None = None
    gpu_count: int = 0


class Worker(_Model):
    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    device: Device
    version: str
    started_at: datetime
    last_heartbeat: datetime
    running: int  # its running jobs, of every project
    running_jobs: list[str]  # the ids of those in the caller's project


class OldestJob(_Model):
    id: str
    enqueued_at: datetime
    waiting_seconds: float


class Queue(_Model):
    name: str
    queued: int  # the caller's project's queued jobs
    broker_messages: int | None  # every project's messages in the broker; None: unknown
    oldest: OldestJob | None
    workers: int  # live workers serving it
    gpu_workers: int


# --- sweeps -------------------------------------------------------------------------------


class SweepMetric(_Model):
    name: str
    goal: str  # maximize | minimize


class SweepCounts(_Model):
    """Trials by status."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    pruned: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled + self.pruned

    @property
    def total(self) -> int:
        return self.done + self.queued + self.running


class SweepBest(_Model):
    job_id: str
    value: float
    params: dict[str, Any]


class Sweep(_Model):
    id: str
    name: str | None
    status: str  # running | paused | finished | cancelled
    method: str  # grid | random | bayes
    metric: SweepMetric
    run_cap: int | None
    max_parallel: int
    trials: int  # trials created so far
    counts: SweepCounts
    best: SweepBest | None  # None until a trial has the metric
    spec: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in SWEEP_FINISHED

    @property
    def parameters(self) -> dict[str, Any]:
        """The searched spec paths and their distributions, from the normalized spec."""
        return self.spec.get("parameters") or {}


class SweepPage(_Model):
    items: list[Sweep]
    next_cursor: str | None


class Pruning(_Model):
    """Why a sweep trial was pruned (its job's summary.pruned)."""

    epoch: int  # the epoch it stopped after
    rule: str  # the sweep's early_terminate type: hyperband, median or health
    reason: str | None


class LeaderboardEntry(_Model):
    rank: int | None  # None for a trial without a value of the metric (listed last)
    job_id: str
    trial: int | None = None  # its number in the sweep, where the server sends it
    status: str
    value: float | None  # the trial's best value of the metric over its epochs
    epoch: int | None  # the epoch of that value
    epochs_run: int
    params: dict[str, Any]
    pruned: Pruning | None = None  # why it was pruned, where the server sends it


class Leaderboard(_Model):
    sweep_id: str
    metric: SweepMetric
    trials: list[LeaderboardEntry]
