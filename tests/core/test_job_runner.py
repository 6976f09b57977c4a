"""Running a stored job without Celery: claim, stream to SQL, end succeeded, failed or cancelled."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from sqlalchemy import update

from core.data.upload_types import UploadOptions
from core.running import runner as runner_module
from core.running.reaper import Reaper
from core.running.runner import RELEASED, Runner
from core.running.timings import PHASES
from core.settings import Settings
from core.spec import JobSpec
from core.store import datasets as dataset_store
from core.store import jobs
from core.store.db import session_factory
from core.store.metrics import read_series
from core.store.models import Job
from core.training.callbacks import Callback, TrainState
from core.training.plan import plan_job
from tests.conftest import make_settings
from tests.specs import DIVERGING


def submit(settings: Settings, spec: dict) -> str:
    parsed = JobSpec.model_validate(spec)
    with session_factory(settings.database_url).begin() as session:
        job = jobs.create_job(
            session,
            spec=parsed.model_dump(mode="json"),
            name="t",
            tags=[],
            queue="cpu",
            summary=plan_job(parsed, settings).summary(),
            epochs=parsed.training.epochs,
        )
        return job.id


def moons(epochs: int = 5, **training: object) -> dict:
    return {
        "dataset": {"name": "moons", "n_samples": 300, "validation_split": 0.2},
        "model": {
            "layers": [
                {"type": "dense", "units": 16, "activation": "relu"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ]
        },
        "training": {
            "loss": "sparse_categorical_crossentropy",
            "batch_size": 16,
            "epochs": epochs,
            "optimizer": {"type": "adam", "learning_rate": 0.01},
            "metrics": ["accuracy"],
            "seed": 0,
            **training,
        },
    }


@pytest.fixture
def runner(database_url: str, tmp_path: Path) -> Runner:
    settings = make_settings(
        database_url,
        "redis://unused",
        tmp_path,
        metrics_flush_seconds=0.05,
        checkpoint_seconds=0,  # a checkpoint each epoch: the resume tests stop between any two
        heartbeat_seconds=0.25,  # a unit test's lease: short, so that these tests are
        job_lease_seconds=1.0,  # quick; the defaults are the end-to-end tests'
        reaper_seconds=0.1,
    )
    return Runner(session_factory(database_url), settings, "test-worker")


def job_of(runner: Runner, job_id: str):
    with runner.sessions() as session:
        return jobs.get_job(session, job_id=job_id)


def test_a_job_trains_streams_its_series_and_saves_its_model(runner: Runner) -> None:
    job_id = submit(runner.settings, moons())
    assert runner.run(job_id) == "succeeded"
    assert runner.run(job_id) is None  # a redelivered message finds it taken
    job = job_of(runner, job_id)
    assert (job.status, job.attempts, job.worker, job.device) == (
        "succeeded",
        1,
        "test-worker",
        "cpu",
    )
    assert job.progress == {"epoch": 5, "epochs": 5, "step": 75, "steps_per_epoch": 15}
    assert job.summary["epochs_run"] == 5 and job.summary["final"]["val_accuracy"] > 0.8
    assert job.summary["best"]["val_loss"] <= job.summary["final"]["val_loss"]
    with runner.sessions() as session:
        series = {s.name: s for s in read_series(session, job_id=job_id)}
    assert set(series) == {"batch_loss", "loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert series["batch_loss"].steps == list(range(1, 76))
    assert series["val_loss"].steps == [15, 30, 45, 60, 75] and series["val_loss"].epochs == [
        1,
        2,
        3,
        4,
        5,
    ]
    weights = load_file(runner.settings.artifacts_dir / job.summary["model"]["weights"])
    assert weights["body.0.weight"].shape == (16, 2)


def test_divergence_fails_the_job_with_its_reason_and_keeps_the_metrics(runner: Runner) -> None:
    job_id = submit(runner.settings, DIVERGING)
    assert runner.run(job_id) == "failed"
    job = job_of(runner, job_id)
    assert job.error["type"] == "divergence" and "training diverged" in job.error["message"]
    with runner.sessions() as session:
        [series] = read_series(session, job_id=job_id, names=["batch_loss"])
    assert any(v != v or abs(v) == float("inf") for v in series.values)  # the NaN/inf is stored


def test_stop_on_divergence_still_fails_a_non_finite_run_and_names_it(runner: Runner) -> None:
    """A NaN loss leaves NaN weights: with stop_on it fails as without, saving no model, and
    the summary keeps what the health rule found."""
    spec = {**DIVERGING, "training": {**DIVERGING["training"], "stop_on": ["divergence"]}}
    job_id = submit(runner.settings, spec)
    assert runner.run(job_id) == "failed"
    job = job_of(runner, job_id)
    assert job.error["type"] == "divergence"
    assert "model" not in job.summary
    assert job.summary["stopped_on"]["type"] == "divergence"
    assert job.summary["stopped_on"]["value"] is None  # JSON has no NaN: the reason says it
    assert job.summary["stop_reason"].startswith("stopped on divergence at epoch 1: the loss")


def test_a_cancel_request_stops_the_run(runner: Runner) -> None:
    job_id = submit(runner.settings, moons(epochs=2000))
    threading.Timer(1.0, lambda: _cancel(runner, job_id)).start()
    started = time.monotonic()
    assert runner.run(job_id) == "cancelled"
    assert time.monotonic() - started < 10
    job = job_of(runner, job_id)
    assert job.progress["step"] > 0 and "cancelled at epoch" in job.summary["stop_reason"]
    with runner.sessions() as session:
        assert read_series(session, job_id=job_id, names=["loss"])[0].steps  # metrics stay readable
        [steps] = read_series(session, job_id=job_id, names=["batch_loss"])
    assert steps.steps == list(range(1, job.progress["step"] + 1))  # every step up to the stop


def _cancel(runner: Runner, job_id: str) -> None:
    with runner.sessions.begin() as session:
        jobs.request_cancel(session, job_id=job_id)


def test_a_cuda_job_on_a_machine_without_cuda_fails_clearly(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    job_id = submit(runner.settings, {**moons(), "resources": {"device": "cuda"}})
    assert runner.run(job_id) == "failed"
    assert "no CUDA device" in job_of(runner, job_id).error["message"]


def test_a_stopping_worker_releases_its_job_uncounted(runner: Runner) -> None:
    job_id = submit(runner.settings, moons(epochs=2000))

    def stop_worker() -> None:
        with runner.sessions.begin() as session:
            assert jobs.request_release(session, worker_prefix="test-worker") == 1

    threading.Timer(1.0, stop_worker).start()
    assert runner.run(job_id) == RELEASED
    job = job_of(runner, job_id)
    assert (job.status, job.attempts, job.worker, job.release_requested) == (
        "queued",
        0,
        None,
        False,
    )
    with runner.sessions.begin() as session:  # claimable again, as attempt 1
        assert jobs.claim_job(session, job_id=job_id, worker="next", device="cpu").attempts == 1


def test_a_worker_whose_job_was_taken_over_stops_without_touching_it(runner: Runner) -> None:
    job_id = submit(runner.settings, moons(epochs=2000))

    def take_over() -> None:  # what the reaper and another worker do after a long silence
        with runner.sessions.begin() as session:
            session.execute(update(Job).where(Job.id == job_id).values(status="queued"))
            jobs.claim_job(session, job_id=job_id, worker="other", device="cpu")

    threading.Timer(1.0, take_over).start()
    assert runner.run(job_id) is None
    job = job_of(runner, job_id)
    assert (job.status, job.worker, job.attempts) == ("running", "other", 2)
    assert job.finished_at is None and "final" not in job.summary


class Stall(Callback):
    """One step that takes several leases: a stalled disk, a long C++ call."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_batch_end(self, state: TrainState) -> None:
        if state.step == 3:
            time.sleep(self.seconds)


def test_a_step_longer_than_the_lease_keeps_the_job(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat does not wait for the training thread: a reaper running all along finds
    the job's lease fresh through a step three leases long."""
    real_train = runner_module.train_spec

    def stalling(spec, settings, *, callbacks, **kwargs):  # type: ignore[no-untyped-def]
        return real_train(spec, settings, callbacks=[*callbacks, Stall(3.0)], **kwargs)

    monkeypatch.setattr(runner_module, "train_spec", stalling)
    job_id = submit(runner.settings, moons(epochs=1))
    sent: list[tuple[str, str]] = []
    reaper = Reaper(runner.sessions, runner.settings, lambda *m: sent.append(m)).start()
    try:
        started = time.monotonic()
        assert runner.run(job_id) == "succeeded"
        assert time.monotonic() - started > 3 * runner.settings.job_lease_seconds
    finally:
        reaper.stop()
    assert sent == [] and job_of(runner, job_id).attempts == 1


class SlowEpochs(Callback):
    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        time.sleep(0.5)


def test_the_summary_splits_the_jobs_time_into_phases(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time spent inside the epochs counts as training, not as the fixed cost around it."""
    real_train = runner_module.train_spec

    def slow(spec, settings, *, callbacks, **kwargs):  # type: ignore[no-untyped-def]
        return real_train(spec, settings, callbacks=[SlowEpochs(), *callbacks], **kwargs)

    monkeypatch.setattr(runner_module, "train_spec", slow)
    job_id = submit(runner.settings, moons(epochs=2))
    assert runner.run(job_id) == "succeeded"
    timings = job_of(runner, job_id).summary["timings"]
    assert set(timings) == set(PHASES)
    assert all(v >= 0 for v in timings.values())
    assert timings["train"] >= 1.0  # both epochs' sleeps


def test_a_workers_jobs_on_one_uploaded_data_set_read_its_file_once(
    runner: Runner, tmp_path: Path
) -> None:
    """The second job trains from the process's cache: its file is gone from the store."""
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(40))
    csv = tmp_path / "upload.csv"
    csv.write_text("a,b,label\n" + rows + "\n")
    upload = dataset_store.Upload(
        csv,
        hashlib.sha256(csv.read_bytes()).hexdigest(),
        csv.stat().st_size,
        "u",
        UploadOptions(target="label"),
    )
    row, _ = dataset_store.ingest(runner.sessions, runner.artifacts, upload)
    spec = moons(epochs=1)
    spec["dataset"] = {"name": row.id}
    spec["model"]["layers"][-1] = {"type": "dense", "units": 1, "activation": "sigmoid"}
    spec["training"]["loss"] = "binary_crossentropy"

    def submit_on_upload() -> str:
        with runner.sessions.begin() as session:
            parsed = JobSpec.model_validate(spec).model_dump(mode="json")
            job = jobs.create_job(
                session, spec=parsed, name="u", tags=[], queue="cpu", summary={}, epochs=1
            )
            return job.id

    assert runner.run(submit_on_upload()) == "succeeded"
    runner.artifacts.delete(row.artifact_key)
    assert runner.run(submit_on_upload()) == "succeeded"
    assert (runner.datasets.misses, runner.datasets.hits) == (1, 1)


def test_diagnostics_stream_per_layer_series_and_warnings_reach_the_summary(runner: Runner) -> None:
    job_id = submit(
        runner.settings, moons(epochs=2, diagnostics={"enabled": True, "every_n_steps": 5})
    )
    assert runner.run(job_id) == "succeeded"
    job = job_of(runner, job_id)
    assert job.summary["diagnostics"] == {"warnings": []}  # a healthy network
    with runner.sessions() as session:
        series = {s.name: s for s in read_series(session, job_id=job_id)}
    assert series["diag/grad_norm/dense_0"].steps == [1, 6, 11, 16, 21, 26]  # every 5 steps
    assert {"diag/update_ratio/dense_1", "diag/dead_fraction/dense_0"} <= set(series)


def test_short_epochs_write_their_checkpoints_at_the_end_only(runner: Runner) -> None:
    """An hour between `last` checkpoints: the run's one `last` is its final epoch's, and its
    best epoch, held in memory until then, is written just before it."""
    settings = runner.settings.model_copy(update={"checkpoint_seconds": 3600})
    hourly = Runner(runner.sessions, settings, "test-worker")
    # The highest val_loss of a run whose val_loss falls: the best is an early epoch, held in
    # memory from then until the end.
    spec = moons(
        callbacks=[
            {
                "type": "model_checkpoint",
                "monitor": "val_loss",
                "mode": "max",
                "save_best_only": True,
            }
        ]
    )
    job_id = submit(settings, spec)
    assert hourly.run(job_id) == "succeeded"
    job = job_of(hourly, job_id)
    best, last = job.checkpoint["best"], job.checkpoint["last"]
    with hourly.sessions() as session:
        (val_loss,) = read_series(session, job_id=job_id, names=["val_loss"])
    highest = val_loss.epochs[val_loss.values.index(max(val_loss.values))]
    assert (last["epoch"], best["epoch"]) == (5, highest), val_loss.values
    assert best["epoch"] < 5, val_loss.values  # this run's best is not its last
    assert job.summary["checkpoints"]["written"] == 2  # no other epoch's
    folder = settings.artifacts_dir / f"jobs/{job_id}/attempt-1/checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        {f"epoch-{best['epoch']}.safetensors", "epoch-5.safetensors"}
    )


def test_stop_on_ends_the_job_succeeded_with_the_reason_and_stopped_on(runner: Runner) -> None:
    sigmoid = {"type": "dense", "units": 8, "activation": "sigmoid"}
    spec = moons(epochs=10, stop_on=["vanishing_gradients", "divergence"])
    spec["model"]["layers"] = [
        *[{**sigmoid, "kernel_initializer": "random_normal"}] * 10,
        {"type": "dense", "units": 2, "activation": "softmax"},
    ]
    job_id = submit(runner.settings, spec)
    assert runner.run(job_id) == "succeeded"
    summary = job_of(runner, job_id).summary
    stopped = summary["stopped_on"]
    assert stopped["type"] == "vanishing_gradients" and stopped["layer"] == "dense_0"
    assert summary["epochs_run"] == stopped["epoch"] < 10
    assert summary["stop_reason"].startswith(
        f"stopped on vanishing_gradients at epoch {stopped['epoch']}: dense_0's gradient norm"
    )
    assert summary["diagnostics"]["warnings"]  # stop_on turned the diagnostics on
    with runner.sessions() as session:
        names = {s.name for s in read_series(session, job_id=job_id)}
    assert "diag/grad_norm/dense_0" in names


def test_the_initial_loss_warning_reaches_the_summary(runner: Runner) -> None:
    spec = moons(epochs=1)
    spec["model"]["layers"][-1]["bias_initializer"] = {
        "type": "random_uniform",
        "minval": -20,
        "maxval": 20,
    }
    job_id = submit(runner.settings, spec)
    assert runner.run(job_id) == "succeeded"
    [warning] = job_of(runner, job_id).summary["diagnostics"]["warnings"]
    assert warning["type"] == "initial_loss" and warning["layer"] == "dense_1"
