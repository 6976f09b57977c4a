"""Resuming a job from its checkpoint gives the weights and series of an uninterrupted run.

Each test trains a job uninterrupted, then the same spec interrupted mid-run (the worker
stopping, its lease taken over, or a cancel followed by a resume) and finished by a fresh
Runner, and compares the two bit for bit: same seed, same CPU thread count, so torch's CPU
kernels are deterministic and any difference is state the checkpoint failed to carry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sqlalchemy import update

from core.running.runner import RELEASED, Runner
from core.store import jobs
from core.store.metrics import read_series
from core.store.models import Job
from core.training.checkpoint import decode, encode_to
from tests.core.test_job_runner import job_of, submit
from tests.core.test_job_runner import runner as runner  # the fixture

# Dropout and batch normalization (RNG and running stats), shuffling (the data generator),
# a per-step schedule (the optimizer's iteration count), early stopping restoring its best
# weights at the end (its counters and a copy of the weights), a best-only model checkpoint.
SCHEDULED = {
    "dataset": {"name": "moons", "n_samples": 2000, "validation_split": 0.2, "noise": 0.3},
    "model": {
        "layers": [
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "batch_normalization"},
            {"type": "dropout", "rate": 0.3},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ]
    },
    "training": {
        "loss": "sparse_categorical_crossentropy",
        "batch_size": 32,
        "epochs": 12,
        "metrics": ["accuracy"],
        "seed": 7,
        "optimizer": {
            "type": "adam",
            "learning_rate": {
                "type": "cosine_decay",
                "initial_learning_rate": 0.01,
                "decay_steps": 600,
            },
        },
        "callbacks": [
            {"type": "early_stopping", "patience": 100, "restore_best_weights": True},
            {"type": "model_checkpoint", "monitor": "val_accuracy", "save_best_only": True},
        ],
    },
}

# A plateau that cuts the learning rate often (its counters), SGD with momentum (its buffers),
# early stopping that may stop the run.
PLATEAU = {
    **SCHEDULED,
    "training": {
        **SCHEDULED["training"],
        "optimizer": {"type": "sgd", "learning_rate": 0.2, "momentum": 0.9},
        "callbacks": [
            {"type": "reduce_lr_on_plateau", "patience": 1, "factor": 0.5, "min_delta": 0.01},
            {"type": "early_stopping", "patience": 6},
        ],
    },
}


def when_epoch(runner: Runner, job_id: str, epoch: int, action: Callable[[], None]) -> None:
    """Run `action` from another thread once the job's progress reaches `epoch`."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if job_of(runner, job_id).progress.get("epoch", 0) >= epoch:
                action()
                return
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()


def release(runner: Runner, job_id: str) -> None:
    with runner.sessions.begin() as session:
        jobs.request_release(session, worker_prefix=runner.worker)


def take_over(runner: Runner, job_id: str) -> None:
    """What the reaper does once a worker went silent: the job back to queued."""
    with runner.sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status="queued", worker=None))


def cancel(runner: Runner, job_id: str) -> None:
    with runner.sessions.begin() as session:
        jobs.request_cancel(session, job_id=job_id)


def weights(runner: Runner, job_id: str) -> dict[str, torch.Tensor]:
    return load_file(
        runner.settings.artifacts_dir / job_of(runner, job_id).summary["model"]["weights"]
    )


def series(runner: Runner, job_id: str) -> dict[str, tuple[list[int], list[float]]]:
    with runner.sessions() as session:
        return {s.name: (s.steps, s.values) for s in read_series(session, job_id=job_id)}


# Every interruption on SQLite; on PostgreSQL the one whose resume takes the most from the
# store (a second claim, the points after the checkpoint deleted and written again). What the
# checkpoint carries is the store's business in no case, and request_release, reopen_job and
# the reaper's takeover have their own tests on both stores (tests/core/test_store.py,
# test_job_runner.py, test_lease.py).
@pytest.mark.parametrize(
    ("store_kind", "spec", "interruption"),
    [
        ("sqlite", SCHEDULED, "released"),
        ("sqlite", SCHEDULED, "lease_lost"),
        ("sqlite", SCHEDULED, "cancelled_then_resumed"),
        ("sqlite", PLATEAU, "lease_lost"),
        ("postgresql", SCHEDULED, "lease_lost"),
    ],
    ids=[
        "sqlite-scheduled-released",
        "sqlite-scheduled-lease_lost",
        "sqlite-scheduled-cancelled",
        "sqlite-plateau-lost",
        "postgresql-scheduled-lease_lost",
    ],
    indirect=["store_kind"],
)
def test_a_resumed_job_ends_exactly_as_an_uninterrupted_one(
    runner: Runner, spec: dict, interruption: str
) -> None:
    reference = submit(runner.settings, spec)
    assert runner.run(reference) == "succeeded"

    job_id = submit(runner.settings, spec)
    if interruption == "released":
        when_epoch(runner, job_id, 3, lambda: release(runner, job_id))
        assert runner.run(job_id) == RELEASED
    elif interruption == "lease_lost":
        when_epoch(runner, job_id, 3, lambda: take_over(runner, job_id))
        assert runner.run(job_id) is None
    else:
        when_epoch(runner, job_id, 3, lambda: cancel(runner, job_id))
        assert runner.run(job_id) == "cancelled"
        with runner.sessions.begin() as session:
            jobs.reopen_job(session, job_id=job_id)
    stopped = job_of(runner, job_id)
    assert stopped.status == "queued"
    last = stopped.checkpoint["last"]
    # Progress reached epoch 3; the newest checkpoint may still have been on its way.
    assert 1 <= last["epoch"] < 12, "the run was not interrupted mid-way"

    fresh = Runner(runner.sessions, runner.settings, "another-worker")
    assert fresh.run(job_id) == "succeeded"
    job = job_of(fresh, job_id)
    assert job.summary["resumed_from"] == {k: last[k] for k in ("epoch", "step", "attempt")}
    assert job.attempts == (1 if interruption == "released" else 2)

    expected, got = weights(runner, reference), weights(runner, job_id)
    assert expected.keys() == got.keys()
    for name in expected:  # bit for bit, BatchNorm's running statistics included
        assert torch.equal(expected[name], got[name]), name
    # The same series, every step once: the points before the checkpoint were kept, the rest
    # written again, none twice.
    assert series(runner, job_id) == series(runner, reference)
    ref = job_of(runner, reference)
    assert job.summary["final"] == ref.summary["final"]
    assert job.summary["epochs_run"] == ref.summary["epochs_run"]
    assert job.summary["stop_reason"] == ref.summary["stop_reason"]
    assert job.progress == ref.progress


def test_checkpoints_are_published_with_their_files_and_old_ones_are_removed(
    runner: Runner,
) -> None:
    job_id = submit(runner.settings, SCHEDULED)
    assert runner.run(job_id) == "succeeded"
    job = job_of(runner, job_id)
    last, best = job.checkpoint["last"], job.checkpoint["best"]
    assert (last["epoch"], last["step"], last["attempt"]) == (12, 600, 1)
    assert last["key"] == f"jobs/{job_id}/attempt-1/checkpoints/epoch-12.safetensors"
    with runner.sessions() as session:
        [accuracy] = read_series(session, job_id=job_id, names=["val_accuracy"])
    best_epoch = 1 + accuracy.values.index(max(accuracy.values))  # strictly better: the first
    assert best["epoch"] == best_epoch
    folder = runner.settings.artifacts_dir / f"jobs/{job_id}/attempt-1/checkpoints"
    assert {p.name for p in folder.iterdir()} == {
        Path(last["key"]).name,
        Path(best["key"]).name,
    }
    assert job.summary["checkpoints"]["written"] == 12


def test_a_resumed_run_never_publishes_a_checkpoint_ahead_of_its_points(runner: Runner) -> None:
    """Whenever a checkpoint is visible in the store, its epoch's points are stored too."""
    job_id = submit(runner.settings, SCHEDULED)
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.005):  # a tight loop would starve the training thread
            with runner.sessions() as session:
                job = jobs.get_job(session, job_id=job_id)
                last = (job.checkpoint or {}).get("last")
                if last is not None:
                    [loss] = read_series(session, job_id=job_id, names=["val_loss"])
                    seen.append((last["step"], max(loss.steps)))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert runner.run(job_id) == "succeeded"
    stop.set()
    thread.join()
    assert seen and all(stored >= step for step, stored in seen), [p for p in seen if p[1] < p[0]]


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
def test_a_checkpoint_without_the_newer_callbacks_resumes(runner: Runner) -> None:
    """A checkpoint written before the pre-flight and health-based stopping existed lists
    neither `InitialLossCheck` nor `HealthStop`: the run resumes from it (they start fresh)
    and ends as an uninterrupted one."""
    spec = {**SCHEDULED, "training": {**SCHEDULED["training"], "stop_on": ["divergence"]}}
    reference = submit(runner.settings, spec)
    assert runner.run(reference) == "succeeded"
    job_id = submit(runner.settings, spec)
    when_epoch(runner, job_id, 3, lambda: release(runner, job_id))
    assert runner.run(job_id) == RELEASED
    path = runner.settings.artifacts_dir / job_of(runner, job_id).checkpoint["last"]["key"]
    snapshot = decode(path.read_bytes())
    types = [c["type"] for c in snapshot.meta["callbacks"]]
    assert {"InitialLossCheck", "HealthStop"} <= set(types)
    snapshot.meta["callbacks"] = [
        c for c in snapshot.meta["callbacks"] if c["type"] not in ("InitialLossCheck", "HealthStop")
    ]
    encode_to(snapshot, path)  # the old layout

    fresh = Runner(runner.sessions, runner.settings, "another-worker")
    assert fresh.run(job_id) == "succeeded"
    assert "resumed_from" in job_of(fresh, job_id).summary
    expected, got = weights(runner, reference), weights(runner, job_id)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
