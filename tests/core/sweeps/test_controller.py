"""The controller on a real store (SQLite and PostgreSQL), given a `send` that records what it
is asked to send: the controller's contract is that callable, not Celery."""

from __future__ import annotations

import threading

import optuna
import pytest

from core.errors import ConflictError
from core.settings import Settings
from core.store import sweeps as sweep_store
from core.store.db import session_factory
from core.store.models import JobStatus
from core.sweeps import optuna_sampler
from core.sweeps.controller import advance, set_status, tick
from core.sweeps.leaderboard import leaderboard
from tests.core.sweeps.helpers import create, end_trial, sweep_spec


class Sent(list):
    def __call__(self, job_id: str, queue: str) -> None:
        self.append((job_id, queue))


def step(settings: Settings, sweep_id: str, sent: Sent) -> list[str]:
    with session_factory(settings.database_url)() as session:
        result = advance(session, sweep_id=sweep_id, settings=settings, send=sent)
    return [job_id for job_id, _ in result.created]


def state(settings: Settings, sweep_id: str) -> tuple[str, int, dict[str, int]]:
    with session_factory(settings.database_url)() as session:
        sweep = sweep_store.get_sweep(session, sweep_id=sweep_id)
        counts = {k: v for k, v in sweep_store.counts(session, sweep_id=sweep_id).items() if v}
        return sweep.status, sweep.trials, counts


def test_a_grid_sweep_keeps_max_parallel_in_flight_and_finishes(settings: Settings) -> None:
    sweep_id, sent = create(settings, sweep_spec()), Sent()
    first = step(settings, sweep_id, sent)
    assert len(first) == 2 and sent == [(j, "cpu") for j in first]
    assert step(settings, sweep_id, sent) == []  # idempotent: two in flight already
    done = []
    while pending := [j for j, _ in sent if j not in done]:
        end_trial(settings, pending[0], [0.5, 0.6 + len(done) / 100])
        done.append(pending[0])
        step(settings, sweep_id, sent)
        counts = state(settings, sweep_id)[2]
        assert counts.get("queued", 0) == min(2, 6 - len(done))
    assert state(settings, sweep_id) == ("finished", 6, {"succeeded": 6})
    with session_factory(settings.database_url)() as session:
        sweep = sweep_store.get_sweep(session, sweep_id=sweep_id)
        board = leaderboard(session, sweep)
        trials = sweep_store.trials(session, sweep_id=sweep_id)
    params = [t.params for t, _ in trials]
    assert params == [  # parameters sorted by path, the last varying fastest
        {"model.layers[0].units": u, "training.optimizer.learning_rate": lr}
        for u in (4, 8)
        for lr in (0.001, 0.01, 0.1)
    ]
    job = trials[5][1]
    assert job.spec["model"]["layers"][0]["units"] == 8
    assert job.spec["training"]["optimizer"]["learning_rate"] == 0.1
    assert job.spec["training"]["optimizer"]["beta_1"] == 0.9  # normalized like a submission
    assert [e.value for e in board] == pytest.approx([0.65, 0.64, 0.63, 0.62, 0.61, 0.6])
    assert [e.rank for e in board] == [1, 2, 3, 4, 5, 6]
    assert board[0].job_id == done[5] and board[0].epoch == 2


def test_pause_stops_new_trials_resume_goes_on_cancel_cancels(settings: Settings) -> None:
    sweep_id, sent = create(settings, sweep_spec()), Sent()
    step(settings, sweep_id, sent)
    sessions = session_factory(settings.database_url)
    with sessions.begin() as session:
        set_status(session, sweep_id=sweep_id, action="pause")
    end_trial(settings, sent[0][0], [0.9])
    assert step(settings, sweep_id, sent) == []
    assert state(settings, sweep_id)[:2] == ("paused", 2)
    with sessions.begin() as session:
        set_status(session, sweep_id=sweep_id, action="resume")
    assert len(step(settings, sweep_id, sent)) == 1
    with sessions.begin() as session:
        set_status(session, sweep_id=sweep_id, action="cancel")
    assert state(settings, sweep_id) == ("cancelled", 3, {"succeeded": 1, "cancelled": 2})
    assert step(settings, sweep_id, sent) == [] and len(sent) == 3
    with pytest.raises(ConflictError, match="already ended"), sessions.begin() as session:
        set_status(session, sweep_id=sweep_id, action="resume")


def test_concurrent_advances_never_exceed_max_parallel(settings: Settings) -> None:
    sweep_id, sent = create(settings, sweep_spec(max_parallel=3)), Sent()
    errors = []

    def run() -> None:
        try:
            step(settings, sweep_id, sent)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(sent) == 3 and len(set(sent)) == 3
    assert state(settings, sweep_id) == ("running", 3, {"queued": 3})


def test_the_tick_advances_every_running_sweep(settings: Settings) -> None:
    create(settings, sweep_spec())
    create(settings, sweep_spec())
    sent = Sent()
    assert tick(session_factory(settings.database_url), settings=settings, send=sent) == 2
    assert len(sent) == 4


def test_an_invalid_sampled_trial_is_stored_failed_never_queued(settings: Settings) -> None:
    # The submission checks cover the bounds of a range, not every value inside it; whatever
    # slips through is caught when the trial is built (here: a base changed behind their back).
    spec = sweep_spec(
        method="random",
        run_cap=4,
        max_parallel=4,
        parameters={"model.layers[0].units": {"distribution": "int_uniform", "min": 1, "max": 3}},
    )
    sweep_id, sent = create(settings, spec), Sent()
    sessions = session_factory(settings.database_url)
    with sessions.begin() as session:  # a base changed behind the checks' back
        sweep = sweep_store.get_sweep(session, sweep_id=sweep_id)
        sweep.base = {**sweep.base, "training": {**sweep.base["training"], "epochs": 0}}
    assert step(settings, sweep_id, sent) == []
    status, trials, counts = state(settings, sweep_id)
    assert (status, trials, counts) == ("finished", 4, {"failed": 4})
    with sessions() as session:
        job = sweep_store.trials(session, sweep_id=sweep_id)[0][1]
    assert job.error["type"] == "invalid_spec" and "epochs" in job.error["message"]


def test_bayes_asks_tpe_and_tells_it_each_result(settings: Settings) -> None:
    spec = sweep_spec(
        method="bayes",
        run_cap=5,
        max_parallel=1,
        startup_trials=2,
        seed=3,
        parameters={
            "training.optimizer.learning_rate": {
                "distribution": "log_uniform_values",
                "min": 1e-4,
                "max": 1e-1,
            },
            "model.layers[0].units": {"values": [4, 8, 16]},
        },
    )
    sweep_id, sent = create(settings, spec), Sent()
    step(settings, sweep_id, sent)
    for i in range(5):
        end_trial(settings, sent[i][0], [0.5 + i / 10])
        step(settings, sweep_id, sent)
    assert state(settings, sweep_id) == ("finished", 5, {"succeeded": 5})
    study = optuna.load_study(
        study_name=sweep_id, storage=optuna_sampler.storage(settings.database_url)
    )
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    assert [t.value for t in trials] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    sampled_by_tpe = ["tpe:relative_params:0" in t.system_attrs for t in trials]
    assert sampled_by_tpe == [False, False, True, True, True]
    with session_factory(settings.database_url)() as session:
        stored = [t.params for t, _ in sweep_store.trials(session, sweep_id=sweep_id)]
    units = [4, 8, 16]
    assert stored == [
        {
            "training.optimizer.learning_rate": t.params["training.optimizer.learning_rate"],
            "model.layers[0].units": units[t.params["model.layers[0].units"]],
        }
        for t in trials
    ]


def test_a_failed_trial_still_counts_toward_run_cap(settings: Settings) -> None:
    sweep_id, sent = create(settings, sweep_spec(max_parallel=6)), Sent()
    step(settings, sweep_id, sent)
    for i, (job_id, _) in enumerate(sent):
        end_trial(settings, job_id, [0.5], JobStatus.FAILED if i % 2 else JobStatus.SUCCEEDED)
    step(settings, sweep_id, sent)
    assert state(settings, sweep_id) == ("finished", 6, {"succeeded": 3, "failed": 3})
