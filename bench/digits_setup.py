"""What the training benchmarks share: the digits MLP and CNN, a spec builder, a wall clock,
Epochal's side as a worker's session runs it and as the worker itself runs a stored job, and
the rules of a fair comparison (medians of alternating repetitions, the machine's load).

The scripts are run as `python bench/<script>.py`, which puts this folder on the import path.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

import migrations
from core.running.runner import Runner
from core.running.sink import StoreSink
from core.settings import Settings
from core.spec import JobSpec
from core.store import jobs
from core.store.db import session_factory
from core.training.callbacks import Callback, TrainState
from core.training.plan import plan_job
from core.training.session import TrainResult, train_spec

CPU = torch.device("cpu")
DIGITS_MLP = [
    {"type": "dense", "units": 128, "activation": "relu"},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 10, "activation": "softmax"},
]
DIGITS_CNN = [
    {"type": "reshape", "target_shape": [8, 8, 1]},
    {
        "type": "conv2d",
        "filters": 32,
        "kernel_size": 3,
        "padding": "same",
        "kernel_initializer": "he_uniform",
    },
    {"type": "batch_normalization"},
    {"type": "activation", "activation": "relu"},
    {"type": "max_pooling2d", "pool_size": 2},
    {"type": "dropout", "rate": 0.25},
    {"type": "flatten"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]


def digits_spec(layers: list[dict[str, Any]], epochs: int, **training: Any) -> JobSpec:
    """Digits with a 20 % validation split, Adam, batches of 64, accuracy, seed 0."""
    return JobSpec.model_validate(
        {
            "dataset": {"name": "digits", "validation_split": 0.2},
            "model": {"layers": layers},
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "optimizer": "adam",
                "batch_size": 64,
                "epochs": epochs,
                "metrics": ["accuracy"],
                "seed": 0,
                **training,
            },
        }
    )


class Clock(Callback):
    """Seconds from the first step to the end of training (setup excluded)."""

    def on_train_begin(self, state: TrainState) -> None:
        self.started = time.perf_counter()

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.seconds = time.perf_counter() - self.started


class SqliteStore:
    """A migrated SQLite store in a temporary folder, settings that point at it (the artifacts
    in a folder beside it; every other setting a worker's default), and the one `Runner` a
    worker process keeps (worker/tasks.py)."""

    def __init__(self, **settings: Any) -> None:
        folder = Path(tempfile.mkdtemp())
        self.url = f"sqlite:///{folder / 'bench.db'}"
        migrations.upgrade(self.url)
        self.settings = Settings(database_url=self.url, artifacts_dir=folder, **settings)
        self.sessions = session_factory(self.url)
        self.runner = Runner(self.sessions, self.settings, "bench-worker")


@dataclass(frozen=True)
class WorkerRun:
    # The first step to the end of training, plus what the worker waits for after the model's
    # save: the last checkpoint's write and the metrics' last write (timings train + checkpoints)
    train_seconds: float
    job_seconds: float  # `Runner.run`: the claim to the job's finished row, model saved
    status: str | None
    summary: dict[str, Any]  # the job's, as stored

    @property
    def samples(self) -> int:
        """Training samples seen: the training set times the epochs run."""
        return int(self.summary["train_samples"]) * int(self.summary["epochs_run"])


def run_as_worker(spec: JobSpec, store: SqliteStore) -> WorkerRun:
    """`spec` stored as a queued job and run as the worker's Celery task runs it:
    `Runner.run(job_id)`, with its heartbeat thread, the cancel flag it reads, the `StoreSink`,
    the checkpoint writer to the folder artifacts store (EPOCHAL_CHECKPOINT_SECONDS's rule) and
    the model's save. Only the submission (the API's part) happens here beforehand.

    Training time: the job's own `summary.timings` (core/running/timings.py), `train` (the
    first step to the end of the last epoch: the checkpoints' copies to the CPU and the sink's
    hand-overs included) plus `checkpoints` (the last checkpoint's copy, and after the model's
    save, the wait for that checkpoint's write and the metrics' last write): everything the
    worker does for the run except the data load, the plan and the model's files, which a plain
    loop does not do either. The whole job's wall time, claim to finished row, is measured
    around `run` too."""
    with store.sessions.begin() as s:
        job = jobs.create_job(
            s,
            spec=spec.model_dump(mode="json"),
            name="bench",
            tags=[],
            queue="cpu",
            summary=plan_job(spec, store.settings).summary(),
            epochs=spec.training.epochs,
        )
        job_id = job.id
    started = time.perf_counter()
    status = store.runner.run(job_id)
    job_seconds = time.perf_counter() - started
    with store.sessions() as s:
        summary = dict(jobs.get_job(s, job_id=job_id).summary)
    if status != "succeeded":
        raise RuntimeError(f"the bench's job ended {status}: {summary}")
    timings = summary["timings"]
    return WorkerRun(timings["train"] + timings["checkpoints"], job_seconds, status, summary)


def run_epochal(
    spec: JobSpec, store: SqliteStore, device: torch.device = CPU
) -> tuple[float, TrainResult]:
    """`train_spec` as a worker's session runs it: per-step losses and per-epoch metrics
    streamed to the store by a `StoreSink`. Seconds from the first step to the end of training
    (the sink's last write, waited for after, is not timed), and the result."""
    with store.sessions.begin() as s:
        job = jobs.create_job(s, spec={}, name="bench", tags=[], queue="cpu", summary={}, epochs=1)
        jobs.claim_job(s, job_id=job.id, worker="bench", device=device.type)
    sink = StoreSink(
        store.sessions, job.id, 1, flush_seconds=1.0, flush_points=1000, outage_seconds=60
    )
    clock = Clock()
    result = train_spec(spec, store.settings, device=device, callbacks=[sink, clock])
    sink.close()  # its last write: untimed here, as a worker overlaps it with the model's save
    return clock.seconds, result


T = TypeVar("T")


def alternate(runs: dict[str, Callable[[], T]], repeats: int) -> dict[str, list[T]]:
    """Each contender once untimed (the warm-up: first-call costs, allocator, caches, a CUDA
    context), then `repeats` rounds that run every contender once, the order rotated each
    round so that none always follows the same other. What each run returned, per contender."""
    names = list(runs)
    for name in names:
        runs[name]()
    results: dict[str, list[T]] = {name: [] for name in names}
    for rep in range(repeats):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            results[name].append(runs[name]())
    return results


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def spread(values: list[float], digits: int = 0) -> str:
    """The median and the range, e.g. `64,800 [61,200-66,000]`."""
    f = f"{{:,.{digits}f}}"
    return (
        f"{f.format(statistics.median(values))} [{f.format(min(values))}-{f.format(max(values))}]"
    )
