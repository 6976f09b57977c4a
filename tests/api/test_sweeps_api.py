"""/v1/sweeps against a real store (SQLite and PostgreSQL) and a real Redis broker; no worker
runs, so trials stay queued and the broker's queue is read directly."""

from __future__ import annotations

import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from core.settings import Settings
from core.store.db import session_factory
from core.store.models import Job, JobStatus, Sweep
from tests.core.sweeps.helpers import end_trial, sweep_spec

# POSTs without a body still say what they are (a browser could send them otherwise).
JSON = {"content-type": "application/json"}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings), headers=JSON) as c:
        yield c


def queued_messages(settings: Settings) -> int:
    return redis.Redis.from_url(settings.broker_url).llen(f"{settings.broker_key_prefix}cpu")


def rows(settings: Settings) -> tuple[int, int]:
    with session_factory(settings.database_url)() as s:
        return (
            s.scalar(select(func.count()).select_from(Sweep)),
            s.scalar(select(func.count()).select_from(Job)),
        )


def test_a_grid_sweep_queues_max_parallel_trials(client: TestClient, settings: Settings) -> None:
    r = client.post("/v1/sweeps", json=sweep_spec(name="lr-units", tags=["demo"]))
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert (sweep["status"], sweep["method"], sweep["run_cap"], sweep["trials"]) == (
        "running",
        "grid",
        6,
        2,
    )
    assert sweep["counts"] == {
        "queued": 2,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "pruned": 0,
    }
    assert sweep["best"] is None and sweep["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    assert isinstance(sweep["spec"]["seed"], int) and sweep["spec"]["base"]["training"]["seed"] == 0
    assert queued_messages(settings) == 2
    page = client.get("/v1/jobs", params={"sweep_id": sweep["id"]}).json()["items"]
    assert len(page) == 2 and {j["sweep_id"] for j in page} == {sweep["id"]}
    trial = min(page, key=lambda j: j["name"])
    assert trial["name"] == "lr-units-0" and trial["tags"] == ["demo"]
    assert trial["sweep_params"] == {
        "model.layers[0].units": 4,
        "training.optimizer.learning_rate": 0.001,
    }
    assert trial["spec"]["model"]["layers"][0]["units"] == 4
    assert client.get("/v1/jobs", params={"sweep_id": "nope"}).json()["items"] == []

    end_trial(settings, trial["id"], [0.7, 0.8])
    got = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert got["best"] == {"job_id": trial["id"], "value": 0.8, "params": trial["sweep_params"]}
    board = client.get(f"/v1/sweeps/{sweep['id']}/leaderboard").json()
    assert board["trials"][0] == {
        "rank": 1,
        "job_id": trial["id"],
        "trial": 0,
        "status": "succeeded",
        "value": 0.8,
        "epoch": 2,
        "epochs_run": 0,
        "params": trial["sweep_params"],
        "pruned": None,
    }
    assert [t["rank"] for t in board["trials"]] == [1, None]


def test_a_pruned_trial_s_row_says_why(client: TestClient, settings: Settings) -> None:
    """The leaderboard carries each pruned trial's summary.pruned, so the dashboard needs no
    request per trial; other rows hold null."""
    sweep_id = client.post("/v1/sweeps", json=sweep_spec()).json()["id"]
    first, second = client.get("/v1/jobs", params={"sweep_id": sweep_id}).json()["items"]
    why = {"epoch": 1, "rule": "health", "reason": "dead_relu: 97 % of dense_1's units are dead"}
    end_trial(settings, first["id"], [0.6], JobStatus.PRUNED, summary={"pruned": why})
    end_trial(settings, second["id"], [0.7, 0.9])
    rows = client.get(f"/v1/sweeps/{sweep_id}/leaderboard").json()["trials"]
    assert [(t["job_id"], t["status"], t["pruned"]) for t in rows] == [
        (second["id"], "succeeded", None),
        (first["id"], "pruned", why),
    ]


def test_pause_resume_cancel_and_409_once_ended(client: TestClient, settings: Settings) -> None:
    sweep_id = client.post("/v1/sweeps", json=sweep_spec()).json()["id"]
    assert client.post(f"/v1/sweeps/{sweep_id}/pause").json()["status"] == "paused"
    jobs = client.get("/v1/jobs", params={"sweep_id": sweep_id}).json()["items"]
    end_trial(settings, jobs[0]["id"], [0.5])
    resumed = client.post(f"/v1/sweeps/{sweep_id}/resume").json()
    assert (resumed["status"], resumed["trials"], resumed["counts"]["queued"]) == ("running", 3, 2)
    cancelled = client.post(f"/v1/sweeps/{sweep_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert cancelled["counts"]["cancelled"] == 2 and cancelled["counts"]["succeeded"] == 1
    for action in ("pause", "resume", "cancel"):
        r = client.post(f"/v1/sweeps/{sweep_id}/{action}")
        assert r.status_code == 409 and "already ended (cancelled)" in r.json()["detail"]
    assert client.get("/v1/sweeps/nope").status_code == 404


def test_sweeps_are_listed_newest_first_with_a_cursor(client: TestClient) -> None:
    ids = [client.post("/v1/sweeps", json=sweep_spec()).json()["id"] for _ in range(3)]
    client.post(f"/v1/sweeps/{ids[0]}/pause")
    first = client.get("/v1/sweeps", params={"limit": 2}).json()
    second = client.get("/v1/sweeps", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    paused = client.get("/v1/sweeps", params={"status": "paused"}).json()["items"]
    assert [s["id"] for s in paused] == [ids[0]]


def test_a_yaml_sweep_is_accepted(client: TestClient) -> None:
    body = yaml.safe_dump(sweep_spec(method="random", run_cap=3))
    r = client.post("/v1/sweeps", content=body, headers={"content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["run_cap"] == 3


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        (
            {"parameters": {"training..lr": {"values": [1]}}},
            ["parameters"],
            "'training..lr' is not a spec path",
        ),
        (
            {"parameters": {"training.optimizer.learning_rate": {"min": 0.1, "max": 0.01}}},
            ["parameters", "training.optimizer.learning_rate", "uniform"],
            "expected max greater than min",
        ),
        (
            {
                "parameters": {
                    "training.batch_size": {"distribution": "uniform", "min": 8, "max": 64}
                }
            },
            ["parameters", "training.batch_size"],
            "grid needs values, value, int_uniform or q_uniform; uniform is continuous",
        ),
        (
            {"parameters": {"model.layers[0].units": {"values": [8, 0]}}},
            ["parameters", "model.layers[0].units"],
            "with model.layers[0].units=0: model.layers[0].units:",
        ),
        (
            {"parameters": {"model.layers[5].units": {"values": [8]}}},
            ["parameters", "model.layers[5].units"],
            "has 2 items, no [5]",
        ),
        (
            {"parameters": {"training.optimzer.learning_rate": {"values": [0.1]}}},
            ["parameters", "training.optimzer.learning_rate"],
            "unknown field",
        ),
        (
            {"metric": {"name": "val_auc", "goal": "maximize"}},
            ["metric", "name"],
            "the trials do not record 'val_auc'",
        ),
        ({"method": "random"}, ["run_cap"], "method random needs run_cap"),
        (
            {"early_terminate": {"type": "health", "on": ["overfitting"]}},
            ["early_terminate", "on", 0],
            "'vanishing_gradients'",
        ),
        (
            {
                "method": "bayes",
                "run_cap": 4,
                "parameters": {"training.optimizer.learning_rate": {"distribution": "normal"}},
            },
            ["parameters", "training.optimizer.learning_rate"],
            "bayes samples bounded distributions",
        ),
    ],
)
def test_a_sweep_that_cannot_run_is_refused_naming_the_parameter(
    client: TestClient, settings: Settings, change: dict, loc: list, message: str
) -> None:
    r = client.post("/v1/sweeps", json=sweep_spec(**change))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:epochal:problem:invalid_sweep"
    assert any(e["loc"] == loc and message in e["msg"] for e in problem["errors"]), problem
    assert rows(settings) == (0, 0) and queued_messages(settings) == 0
