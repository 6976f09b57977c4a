"""Sweeps end to end on the real stack: uvicorn + a Celery worker + PostgreSQL + Redis.

Trials are tiny (a moons MLP, a few epochs) so the module runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import httpx
import optuna
import pytest

from core.sweeps import optuna_sampler
from tests.e2e.stack import Stack, own_stack, wait_until
from tests.specs import moons_mlp

pytestmark = pytest.mark.e2e

MOONS = moons_mlp(epochs=3)
METRIC = {"name": "val_accuracy", "goal": "maximize"}
GRID = {
    "name": "grid",
    "base": MOONS,
    "method": "grid",
    "metric": METRIC,
    "parameters": {
        "training.optimizer.learning_rate": {"values": [0.001, 0.01, 0.1]},
        "model.layers[0].units": {"values": [4, 16]},
    },
    "max_parallel": 2,
}


@pytest.fixture(scope="module")
def stack(production_settings: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = {**production_settings, "sweep_tick_seconds": 1}
    with own_stack(tmp_path_factory.mktemp("sweeps"), **settings) as s:
        s.start_worker()
        yield s


def wait_for_sweep(client: httpx.Client, sweep_id: str, stack: Stack, timeout: float = 150) -> dict:
    def ended() -> dict | None:
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        return sweep if sweep["status"] in ("finished", "cancelled") else None

    return wait_until(ended, timeout, f"sweep {sweep_id} to finish", stack)


def trials_of(client: httpx.Client, sweep_id: str) -> list[dict]:
    return client.get("/v1/jobs", params={"sweep_id": sweep_id, "limit": 100}).json()["items"]


def best_from_metrics(client: httpx.Client, job_id: str) -> tuple[float, int] | None:
    """The best val_accuracy and its epoch, read back from the job's stored series."""
    series = client.get(f"/v1/jobs/{job_id}/metrics", params={"names": "val_accuracy"}).json()
    if not series["series"]:
        return None
    s = series["series"][0]
    value = max(s["values"])
    return value, s["epochs"][s["values"].index(value)]


def check_leaderboard(client: httpx.Client, sweep: dict) -> list[dict]:
    board = client.get(f"/v1/sweeps/{sweep['id']}/leaderboard").json()["trials"]
    jobs = {j["id"]: j for j in trials_of(client, sweep["id"])}
    assert sorted(t["job_id"] for t in board) == sorted(jobs)
    for t in board:
        stored = best_from_metrics(client, t["job_id"])
        assert (t["value"], t["epoch"]) == (stored or (None, None))
        assert t["params"] == jobs[t["job_id"]]["sweep_params"]
        assert t["status"] == jobs[t["job_id"]]["status"]
    values = [t["value"] for t in board if t["rank"] is not None]
    assert values == sorted(values, reverse=True)
    assert [t["rank"] for t in board][: len(values)] == list(range(1, len(values) + 1))
    assert sweep["best"]["job_id"] == board[0]["job_id"]
    assert sweep["best"]["value"] == board[0]["value"]
    return board


def test_a_grid_sweep_runs_every_point_and_ranks_them(stack: Stack) -> None:
    with stack.client() as client:
        r = client.post("/v1/sweeps", json=GRID)
        assert r.status_code == 201, r.text
        sweep = wait_for_sweep(client, r.json()["id"], stack)
        assert (sweep["status"], sweep["trials"]) == ("finished", 6)
        assert sweep["counts"]["succeeded"] == 6 and sum(sweep["counts"].values()) == 6
        jobs = trials_of(client, sweep["id"])
        assert sorted(
            (
                j["sweep_params"]["training.optimizer.learning_rate"],
                j["sweep_params"]["model.layers[0].units"],
            )
            for j in jobs
        ) == sorted((lr, u) for lr in (0.001, 0.01, 0.1) for u in (4, 16))
        for job in jobs:
            assert (
                job["spec"]["model"]["layers"][0]["units"]
                == job["sweep_params"]["model.layers[0].units"]
            )
        check_leaderboard(client, sweep)


def test_a_random_sweep_with_hyperband_prunes_the_laggards(stack: Stack) -> None:
    spec = {
        "name": "random-hyperband",
        "base": {**MOONS, "training": {**MOONS["training"], "epochs": 6}},
        "method": "random",
        "metric": METRIC,
        "parameters": {
            "training.optimizer.learning_rate": {
                "distribution": "log_uniform_values",
                "min": 1e-5,
                "max": 0.1,
            },
        },
        "run_cap": 8,
        "max_parallel": 2,
        "seed": 1,
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
    }
    with stack.client() as client:
        sweep_id = client.post("/v1/sweeps", json=spec).json()["id"]
        sweep = wait_for_sweep(client, sweep_id, stack)
        counts = sweep["counts"]
        assert (sweep["status"], sweep["trials"]) == ("finished", 8)
        assert counts["succeeded"] + counts["pruned"] == 8 and counts["pruned"] >= 1
        for job in trials_of(client, sweep_id):
            epochs = job["summary"]["epochs_run"]
            if job["status"] == "pruned":
                assert epochs in (1, 2, 4) and job["summary"]["pruned"]["epoch"] == epochs
                assert job["summary"]["stop_reason"].startswith("pruned by hyperband")
                # ... and its model, saved when it stopped, serves like any other.
                r = client.post(f"/v1/jobs/{job['id']}/predict", json={"inputs": [[0.5, 0.2]]})
                assert r.status_code == 200, r.text
            else:
                assert epochs == 6
        check_leaderboard(client, sweep)


def test_tpe_proposes_trials_from_the_completed_results(
    stack: Stack, production_settings: dict
) -> None:
    spec = {
        "name": "tpe",
        "base": MOONS,
        "method": "bayes",
        "metric": METRIC,
        "parameters": {
            "training.optimizer.learning_rate": {
                "distribution": "log_uniform_values",
                "min": 1e-4,
                "max": 0.3,
            },
            "model.layers[0].units": {"distribution": "int_uniform", "min": 2, "max": 32},
        },
        "run_cap": 6,
        "max_parallel": 1,
        "startup_trials": 3,
        "seed": 0,
    }
    with stack.client() as client:
        sweep_id = client.post("/v1/sweeps", json=spec).json()["id"]
        sweep = wait_for_sweep(client, sweep_id, stack)
        assert sweep["counts"]["succeeded"] == 6
        board = check_leaderboard(client, sweep)
    storage = optuna_sampler.storage(production_settings["database_url"])
    trials = optuna.load_study(study_name=sweep_id, storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    by_number = {t["trial"]: t for t in board}  # a bayes trial's number is Optuna's
    for t in trials:  # Optuna holds the results and values the leaderboard shows
        assert t.value == pytest.approx(by_number[t.number]["value"])
        shown = by_number[t.number]["params"]
        assert shown["model.layers[0].units"] == t.params["model.layers[0].units"]
        assert (
            shown["training.optimizer.learning_rate"]
            == t.params["training.optimizer.learning_rate"]
        )
    for t in trials[3:]:
        told_before = [
            u for u in trials if u.datetime_complete and u.datetime_complete <= t.datetime_start
        ]
        assert len(told_before) >= 3  # TPE had the startup results when it was asked
        assert "tpe:relative_params:0" in t.system_attrs  # ... and sampled this trial itself
    assert not any("tpe:relative_params:0" in t.system_attrs for t in trials[:3])


def test_a_sweep_survives_restarts_of_the_api_and_the_worker(
    production_settings: dict, tmp_path: Path
) -> None:
    settings = {
        **production_settings,
        "broker_key_prefix": "restart-" + production_settings["broker_key_prefix"],
        "sweep_tick_seconds": 1,
    }
    spec = copy.deepcopy(GRID)
    # Trials of a few seconds (a few milliseconds each at 4 epochs of 600 samples): the test
    # must find one running, then kill its worker mid-trial.
    spec["base"]["training"]["epochs"] = 100
    spec["base"]["dataset"]["n_samples"] = 6000
    with own_stack(tmp_path, **settings) as stack:
        stack.start_worker("worker-1")
        with stack.client() as client:
            sweep_id = client.post("/v1/sweeps", json=spec).json()["id"]

            def some_done() -> bool:
                counts = client.get(f"/v1/sweeps/{sweep_id}").json()["counts"]
                if counts["succeeded"] < 2 or counts["running"] != 1:
                    return False
                # ... and the running one far from its end, so that the kill lands mid-trial
                # even on a loaded machine (once it was done before the kill: no second attempt).
                running = [j for j in trials_of(client, sweep_id) if j["status"] == "running"]
                return bool(running) and running[0]["progress"].get("epoch", 0) <= 50

            wait_until(some_done, 120, "two trials to succeed and a third to run", stack)
        stack.kill("worker-1")  # mid-trial: its lease expires and it is requeued
        stack.kill("api")
        stack.start_api()
        stack.start_worker("worker-2")
        with stack.client() as client:
            sweep = wait_for_sweep(client, sweep_id, stack, timeout=180)
            assert (sweep["status"], sweep["trials"]) == ("finished", 6)
            assert sweep["counts"]["succeeded"] == 6
            jobs = trials_of(client, sweep_id)
            assert len(jobs) == 6 and max(j["attempts"] for j in jobs) == 2
            check_leaderboard(client, sweep)
