"""The tables: jobs, their tags, metric points unique on (job, name, step), uploaded data sets,
sweeps with their trials; projects, their API keys and the idempotency records of submissions;
the workers registry.

Jobs, sweeps and uploaded data sets belong to a project (`project`) and name the API key that
created them (`created_by`, null when authentication is off)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.store.base import Base, JSONType, UTCDateTime, utcnow

DEFAULT_PROJECT = "default"  # where rows made before projects, and keyless local use, belong


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # a sweep trial stopped early by its sweep's early_terminate rule

    @property
    def finished(self) -> bool:
        return self in (
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.PRUNED,
        )


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default=DEFAULT_PROJECT)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    # Set when a deletion starts: from then on the job is gone for every reader and writer
    # (see core.store.deletion), while its points and files are removed.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    queue: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    progress: Mapped[dict[str, Any]] = mapped_column(JSONType)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    device: Mapped[str | None] = mapped_column(String(32), default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    release_requested: Mapped[bool] = mapped_column(Boolean, default=False)  # worker stopping
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # last message sent
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Checkpoints (migration 0004): {"last": {key, epoch, step, attempt}, "best": {...}}, set
    # only by the attempt holding the job; the job a clone came from; the weights it starts from.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    source_job_id: Mapped[str | None] = mapped_column(String(36), default=None)
    init_from: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    # Metric points its runs wrote, and its latest training speed (migration 0007): /metrics
    # reads these instead of scanning metric_points.
    points_written: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    steps_per_second: Mapped[float | None] = mapped_column(Float, default=None)

    tags: Mapped[list[JobTag]] = relationship(
        back_populates="job",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="JobTag.position",
    )
    trial: Mapped[SweepTrial | None] = relationship(
        back_populates="job", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_jobs_created_at_id", "created_at", "id"),
        Index("ix_jobs_project_status", "project", "status"),
    )


class JobTag(Base):
    __tablename__ = "job_tags"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)

    job: Mapped[Job] = relationship(back_populates="tags")


class ValueKind:
    """Floats are stored with a kind beside them: SQLite turns NaN into NULL, so keep it apart."""

    FINITE, NAN, POS_INF, NEG_INF = 0, 1, 2, 3


class MetricPoint(Base):
    __tablename__ = "metric_points"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    kind: Mapped[int] = mapped_column(SmallInteger, default=ValueKind.FINITE)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


ROLLUP_STEPS = 100  # steps per rollup bucket


class MetricRollup(Base):
    """Per series, the extremes of every `ROLLUP_STEPS` consecutive steps, kept up to date with
    each write, so a long series downsamples by reading rollups instead of every point."""

    __tablename__ = "metric_rollups"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # (step - 1) // ROLLUP_STEPS
    points: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float | None] = mapped_column(Float, nullable=True)  # over finite values
    max_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_step: Mapped[int] = mapped_column(BigInteger)


class Dataset(Base):
    """An uploaded data set: its metadata here, its normalized arrays (an NPZ of float32 `x` and
    `y`) in the artifacts store under `artifact_key`. The id is derived from the file's SHA-256
    and how it was read (target, task), so an identical upload finds the same row."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default=DEFAULT_PROJECT)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    format: Mapped[str] = mapped_column(String(16))  # csv, npz or parquet: what was uploaded
    sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded file
    target: Mapped[str] = mapped_column(String(200), default="")  # the target column; "" for NPZ
    task: Mapped[str] = mapped_column(String(16))  # classification or regression
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    feature_shape: Mapped[list[int]] = mapped_column(JSONType)
    target_shape: Mapped[list[int]] = mapped_column(JSONType)
    num_classes: Mapped[int | None] = mapped_column(Integer, default=None)
    # What the columns became: {"columns": [...], "features": [...], "categories": {...},
    # "classes": [...]} (see core.data.uploads.Encoding).
    encoding: Mapped[dict[str, Any]] = mapped_column(JSONType)
    artifact_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("project", "sha256", "target", "task"),)


class SweepStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (SweepStatus.FINISHED, SweepStatus.CANCELLED)


class Sweep(Base):
    """A sweep's whole state: the controller reads it, locks it, and moves it on from any process."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default=DEFAULT_PROJECT)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    method: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the normalized SweepSpec
    base: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the JobSpec as sent, trials' base
    run_cap: Mapped[int] = mapped_column(Integer)
    max_parallel: Mapped[int] = mapped_column(Integer)
    trials: Mapped[int] = mapped_column(Integer, default=0)  # created so far: the next number
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # the lock's write
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index("ix_sweeps_created_at_id", "created_at", "id"),
        Index("ix_sweeps_project_status", "project", "status"),
    )


class SweepTrial(Base):
    """A job that is a sweep's trial: its number in the sweep and its parameter values."""

    __tablename__ = "sweep_trials"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # bayes: Optuna's trial number
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    told: Mapped[bool] = mapped_column(Boolean, default=False)  # bayes: result sent to Optuna

    job: Mapped[Job] = relationship(back_populates="trial")

    __table_args__ = (Index("ix_sweep_trials_sweep_id_number", "sweep_id", "number", unique=True),)


class Project(Base):
    """A tenant. Its row is also the lock that serializes the quota checks of its submissions."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # the lock's write


class ApiKey(Base):
    """An API key: only the SHA-256 of the secret is kept. `id` is the key's public part."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(8))  # read, write or admin
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class IdempotencyRecord(Base):
    """The first answer to a POST sent with an `Idempotency-Key`, replayed to its repeats."""

    __tablename__ = "idempotency_records"

    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of method, path, query and body
    status_code: Mapped[int] = mapped_column(SmallInteger)
    response: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Worker(Base):
    """A live (or lately live) worker process: written by the worker at start and on every
    heartbeat, deleted on a clean shutdown. `id` is its Celery node name; the `worker` of a
    job it runs is `<id>/<pool process id>`."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSONType)
    concurrency: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(16))  # cpu, cuda or mps
    gpu_name: Mapped[str | None] = mapped_column(String(200), default=None)
    gpu_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    gpu_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
