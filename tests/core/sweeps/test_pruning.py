"""Early termination: the pure rules, the rule read from scripted metric tables in SQL (SQLite
and PostgreSQL), and a real trial run that ends `pruned`."""

from __future__ import annotations

import math
from pathlib import Path

from core.running.runner import Runner
from core.settings import Settings
from core.store import sweeps as sweep_store
from core.store.db import session_factory
from core.store.metrics import write_points
from core.sweeps.controller import advance
from core.sweeps.pruning import asha, median_rule, rule_for, rungs
from tests.conftest import make_settings
from tests.core.sweeps.helpers import create, sweep_spec


def test_rungs_are_min_iter_times_powers_of_eta_before_the_last_epoch() -> None:
    assert rungs(1, 3, 30) == [1, 3, 9, 27]
    assert rungs(2, 2, 16) == [2, 4, 8]
    assert rungs(4, 3, 4) == []


def test_asha_keeps_the_top_one_over_eta_of_those_at_the_rung() -> None:
    assert not asha(0.5, [0.5], 3, maximize=True).stop  # alone at the rung
    assert asha(0.5, [0.5, 0.9], 3, maximize=True).stop  # fewer than eta: only the best goes on
    reached = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert [asha(v, reached, 3, maximize=True).stop for v in reached] == [True] * 4 + [False] * 2
    assert [asha(v, reached, 3, maximize=False).stop for v in reached] == [False] * 2 + [True] * 4
    assert asha(math.nan, [math.nan, 0.1], 2, maximize=False).stop
    decision = asha(0.1, reached, 3, maximize=True)
    assert "not in the top 2 of 6" in decision.reason and "needed 0.5" in decision.reason


def test_the_median_rule_needs_enough_others_then_stops_the_worse_half() -> None:
    assert not median_rule(0.1, [0.5, 0.6], maximize=True, min_trials=3).stop
    assert median_rule(0.4, [0.5, 0.6, 0.3], maximize=True, min_trials=3).stop
    assert not median_rule(0.5, [0.5, 0.6, 0.3], maximize=True, min_trials=3).stop
    assert not median_rule(0.4, [0.5, 0.6, 0.3], maximize=False, min_trials=3).stop


def trials_with_values(settings: Settings, spec: dict, table: list[list[float]]) -> list[str]:
    """Create a sweep's trials and write `table[i]` as trial i's val_accuracy per epoch."""
    sweep_id = create(settings, spec)
    with session_factory(settings.database_url)() as session:
        advance(session, sweep_id=sweep_id, settings=settings, send=lambda *_: None)
        ids = [job.id for _, job in sweep_store.trials(session, sweep_id=sweep_id)]
    with session_factory(settings.database_url).begin() as session:
        for job_id, values in zip(ids, table, strict=False):
            points = [("val_accuracy", 5 * e, e, v) for e, v in enumerate(values, 1)]
            write_points(session, job_id=job_id, points=points)
    return ids


def test_hyperband_decides_from_the_values_stored_at_the_rung(settings: Settings) -> None:
    spec = sweep_spec(
        max_parallel=6, early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2}
    )
    table = [[0.9, 0.1], [0.8], [0.7], [0.6, 0.99], [math.nan]]
    ids = trials_with_values(settings, spec, table)
    with session_factory(settings.database_url)() as session:
        rule = rule_for(session, job_id=ids[0])
        assert rule is not None and rule.decides_at(1, 4) and not rule.decides_at(3, 4)
        decisions = [rule.decide(session, job_id=j, epoch=1).stop for j in ids]
        # 5 at rung 1, eta 2: the top 2 (0.9, 0.8) go on; NaN is the worst; the 6th has no value
        assert decisions == [False, False, True, True, True, False]


def test_the_median_rule_reads_the_other_trials_at_the_same_epoch(settings: Settings) -> None:
    spec = sweep_spec(
        max_parallel=6, early_terminate={"type": "median", "min_iter": 2, "min_trials": 2}
    )
    ids = trials_with_values(settings, spec, [[0.1, 0.5], [0.9, 0.6], [0.9, 0.7], [0.9, 0.65]])
    with session_factory(settings.database_url)() as session:
        rule = rule_for(session, job_id=ids[0])
        assert rule is not None and not rule.decides_at(1, 4) and rule.decides_at(2, 4)
        assert [rule.decide(session, job_id=j, epoch=2).stop for j in ids] == [
            True,
            True,  # 0.6 < median(0.5, 0.7, 0.65) = 0.65
            False,
            False,
            False,  # the last two have no value yet
            False,
        ]


def test_a_trial_below_the_rung_ends_pruned_with_why(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, "redis://unused", tmp_path, metrics_flush_seconds=0.05)
    spec = sweep_spec(
        max_parallel=2,
        parameters={"training.optimizer.learning_rate": {"values": [0.05, 1e-6]}},
        early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2},
    )
    good, bad = trials_with_values(settings, spec, [])
    runner = Runner(session_factory(database_url), settings, "test-worker")
    assert runner.run(good) == "succeeded"
    assert runner.run(bad) == "pruned"
    with session_factory(database_url)() as session:
        job = sweep_store.trials(session, sweep_id=sweep_store.sweep_of_job(session, job_id=bad))[
            1
        ][1]
    assert job.id == bad and job.summary["epochs_run"] == 1
    assert job.summary["pruned"]["epoch"] == 1 and job.summary["pruned"]["rule"] == "hyperband"
    assert job.summary["stop_reason"].startswith("pruned by hyperband at epoch 1")
    assert job.finished_at is not None


def test_a_trial_whose_loss_becomes_nan_fails_naming_the_condition(
    database_url: str, tmp_path: Path
) -> None:
    """Under a health rule listing divergence a NaN loss fails the trial, as it fails a job
    (its weights are NaN: no model is saved), and its summary names what the rule found. A
    finite divergence or a diagnosed condition is pruned (core/training/health.py's `pruned`,
    bench/health_pruning.py)."""
    settings = make_settings(database_url, "redis://unused", tmp_path, metrics_flush_seconds=0.05)
    spec = sweep_spec(
        parameters={"training.optimizer.learning_rate": {"values": [0.05, 1e6]}},
        early_terminate={"type": "health", "on": ["divergence", "vanishing_gradients"]},
    )
    spec["base"]["training"]["epochs"] = 3
    spec["base"]["training"]["optimizer"] = {"type": "sgd", "learning_rate": 0.05}
    good, bad = trials_with_values(settings, spec, [])
    with session_factory(database_url)() as session:
        rule = rule_for(session, job_id=bad)
        assert rule is not None and not rule.decides_at(1, 3)  # the trial decides, not the points
    runner = Runner(session_factory(database_url), settings, "test-worker")
    assert runner.run(good) == "succeeded"
    assert runner.run(bad) == "failed"
    with session_factory(database_url)() as session:
        sweep_id = sweep_store.sweep_of_job(session, job_id=bad)
        jobs = {job.id: job for _, job in sweep_store.trials(session, sweep_id=sweep_id)}
    healthy, failed = jobs[good].summary, jobs[bad].summary
    assert healthy["epochs_run"] == 3 and "stopped_on" not in healthy
    assert jobs[bad].error["type"] == "divergence" and "model" not in failed
    assert "pruned" not in failed
    assert failed["stop_reason"].startswith("stopped on divergence at epoch 1: the loss became")
    assert failed["stopped_on"]["type"] == "divergence"
    assert "diagnostics" in failed  # turned on by the vanishing-gradient condition
