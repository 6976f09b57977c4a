"""The learning-rate finder on the worker's path (`Runner.run`, a real store): its curve in
the job's series, its result in the summary, and a resumed job that does not test again."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from core.running.runner import Runner
from core.store import jobs
from core.store.metrics import read_series
from core.store.models import Job
from core.training import session as training_session
from core.training.lr_finder import no_suggestion
from tests.core.test_job_runner import _cancel, job_of, moons, submit
from tests.core.test_job_runner import runner as runner  # the fixture

CURVE = {"lr_finder/lr", "lr_finder/loss", "lr_finder/raw_loss"}


def series_of(runner: Runner, job_id: str) -> dict:
    with runner.sessions() as session:
        return {s.name: s for s in read_series(session, job_id=job_id)}


def test_a_finder_job_stores_its_curve_and_suggestion_and_trains_nothing(runner: Runner) -> None:
    job_id = submit(runner.settings, moons(lr_finder={"steps": 30, "max_lr": 100.0}))
    assert runner.run(job_id) == "succeeded"
    summary = job_of(runner, job_id).summary
    found = summary["lr_finder"]
    assert summary["epochs_run"] == 0
    assert found["suggested_lr"] == found["min_lr_div_10"] > 0
    assert found["steepest_lr"] > 0 and found["steps"] <= 30
    series = series_of(runner, job_id)
    assert set(series) == CURVE  # no training series
    steps = list(range(1, found["steps"] + 1))
    assert all(series[name].steps == steps for name in CURVE)
    assert series["lr_finder/lr"].values[0] == pytest.approx(1e-7)


def test_a_suggested_job_trains_at_the_suggestion_and_a_resume_does_not_test_again(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = moons(epochs=2, lr_finder={"steps": 30})
    spec["training"]["optimizer"]["learning_rate"] = "suggested"
    job_id = submit(runner.settings, spec)
    assert runner.run(job_id) == "succeeded"
    job = job_of(runner, job_id)
    rate = job.summary["lr_finder"]["suggested_lr"]
    assert job.summary["epochs_run"] == 2 and job.summary["final"]["lr"] == pytest.approx(rate)
    curve = {name: series_of(runner, job_id)[name].values for name in CURVE}

    def no_second_test(*args: object, **kwargs: object) -> None:
        raise AssertionError("the range test ran again on resume")

    monkeypatch.setattr(training_session, "range_test", no_second_test)
    with runner.sessions.begin() as session:  # as if stopped at its last checkpoint
        session.execute(update(Job).where(Job.id == job_id).values(status="queued"))
    assert runner.run(job_id) == "succeeded"
    job = job_of(runner, job_id)
    assert job.summary["resumed_from"]["epoch"] == 2
    assert job.summary["lr_finder"]["suggested_lr"] == rate
    assert {name: series_of(runner, job_id)[name].values for name in CURVE} == curve


def test_a_job_cancelled_during_the_range_test_tests_again_from_the_start(runner: Runner) -> None:
    # A long test at rates too small to diverge: the cancel lands inside it.
    finder = {"steps": 3000, "min_lr": 1e-9, "max_lr": 1e-8}
    spec = moons(epochs=1, lr_finder=finder)
    spec["training"]["optimizer"]["learning_rate"] = "suggested"
    job_id = submit(runner.settings, spec)
    threading.Timer(0.3, lambda: _cancel(runner, job_id)).start()
    assert runner.run(job_id) == "cancelled"
    job = job_of(runner, job_id)
    assert "lr_finder" not in job.summary and job.checkpoint in (None, {})
    series = series_of(runner, job_id)
    assert "loss" not in series  # stopped before training
    with runner.sessions.begin() as session:
        jobs.reopen_job(session, job_id=job_id)
    assert runner.run(job_id) == "succeeded"
    job = job_of(runner, job_id)
    assert job.summary["lr_finder"]["steps"] == 3000 and job.summary["epochs_run"] == 1
    assert series_of(runner, job_id)["lr_finder/lr"].steps == list(range(1, 3001))


def test_a_suggested_job_whose_test_finds_no_rate_fails_saying_why(runner: Runner) -> None:
    """A range test that diverges at once (SGD from a rate of 1,000) leaves too short a curve to
    suggest from: the job fails as no_suggestion, its curve and how the test ended kept."""
    spec = moons(
        lr_finder={"steps": 20, "min_lr": 1e3, "max_lr": 1e6},
        optimizer={"type": "sgd", "learning_rate": "suggested"},
    )
    job_id = submit(runner.settings, spec)
    assert runner.run(job_id) == "failed"
    job = job_of(runner, job_id)
    assert job.error["type"] == "no_suggestion", job.error
    assert "found no rate to suggest" in job.error["message"]
    found = job.summary["lr_finder"]
    assert found["suggested_lr"] is None and found["stopped_early"]
    assert job.error["message"] == f"the learning-rate finder {no_suggestion(found)}"
    assert f"diverging at step {found['diverged_at']}" in job.error["message"]
    assert job.error["message"].endswith("lower training.lr_finder.min_lr")
    assert set(series_of(runner, job_id)) == CURVE
