"""GET /v1/compare against a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from core.spec.paths import flatten
from core.store.db import session_factory
from core.store.jobs import create_job
from core.store.metrics import write_points
from tests.specs import DIGITS


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c


def spec_with(
    *, units: int = 128, lr: float = 0.001, metrics: list[str] | None = None
) -> dict[str, Any]:
    spec = copy.deepcopy(DIGITS)
    spec["model"]["layers"][0]["units"] = units
    spec["training"]["optimizer"]["learning_rate"] = lr
    spec["training"]["metrics"] = metrics or ["accuracy"]
    return spec


def add_job(
    settings: Settings, name: str, spec: dict[str, Any], points: list[tuple[str, int, float]]
) -> str:
    with session_factory(settings.database_url)() as session:
        job = create_job(
            session, spec=spec, name=name, tags=[name], queue="cpu", summary={}, epochs=3
        )
        write_points(
            session,
            job_id=job.id,
            points=[(series, step, step // 10, value) for series, step, value in points],
        )
        session.commit()
        return job.id


NOISE = [("batch_loss", s, 1.0) for s in range(1, 31)] + [("diag/grad_norm/dense", 10, 2.0)]


@pytest.fixture
def three(settings: Settings) -> list[str]:
    a = add_job(
        settings,
        "a",
        spec_with(),
        [
            ("loss", 10, 0.5),
            ("loss", 20, 0.3),
            ("val_accuracy", 10, 0.8),
            ("val_accuracy", 20, 0.9),
            ("lr", 10, 0.001),
            ("lr", 20, 0.0005),
            *NOISE,
        ],
    )
    b = add_job(
        settings,
        "b",
        spec_with(units=64, lr=0.01),
        [
            ("loss", 10, 0.6),
            ("loss", 20, 0.2),
            ("loss", 30, 0.4),
            ("val_accuracy", 10, 0.95),
            ("val_accuracy", 20, 0.7),
            ("val_accuracy", 30, math.nan),
            ("lr", 10, 0.01),
            ("auc", 30, 0.75),
            *NOISE,
        ],
    )
    c = add_job(settings, "c", spec_with(metrics=["accuracy", "auc"]), [("loss", 10, math.inf)])
    return [a, b, c]


def test_compare_params_metrics_and_aligned_series(client: TestClient, three: list[str]) -> None:
    a, b, c = three
    r = client.get("/v1/compare", params={"ids": f"{a},{b},{c}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(j["id"], j["name"], j["status"]) for j in body["jobs"]] == [
        (a, "a", "queued"),
        (b, "b", "queued"),
        (c, "c", "queued"),
    ]
    # Only what differs; name and tags left out; a path missing in a job is null there.
    assert body["params"] == {
        "model.layers[0].units": [128, 64, 128],
        "training.optimizer.learning_rate": [0.001, 0.01, 0.001],
        "training.metrics[1]": [None, None, "auc"],
    }
    assert set(body["metrics"]) == set(body["series"]) == {"auc", "loss", "lr", "val_accuracy"}
    m = body["metrics"]
    assert m["loss"] == [
        {"final": 0.3, "best": 0.3, "best_step": 20},
        {"final": 0.4, "best": 0.2, "best_step": 20},
        {"final": "Infinity", "best": None, "best_step": None},
    ]
    assert m["val_accuracy"] == [  # higher is better; NaN is never the best
        {"final": 0.9, "best": 0.9, "best_step": 20},
        {"final": "NaN", "best": 0.95, "best_step": 10},
        None,
    ]
    assert m["lr"] == [
        {"final": 0.0005, "best": None, "best_step": None},
        {"final": 0.01, "best": None, "best_step": None},
        None,
    ]
    assert m["auc"] == [None, {"final": 0.75, "best": 0.75, "best_step": 30}, None]
    # By epoch (the default): the points were written with epoch = step // 10.
    assert body["x"] == "epoch"
    s = body["series"]
    assert s["loss"] == {
        "x": [1, 2, 3],
        "values": [[0.5, 0.3, None], [0.6, 0.2, 0.4], ["Infinity", None, None]],
        "steps": [10, 20, 30],
    }
    assert s["val_accuracy"] == {
        "x": [1, 2, 3],
        "values": [[0.8, 0.9, None], [0.95, 0.7, "NaN"], [None, None, None]],
        "steps": [10, 20, 30],
    }
    assert s["lr"]["x"] == [1, 2]


def test_x_step_aligns_by_step_and_epoch_by_each_epoch_s_last_point(
    client: TestClient, settings: Settings
) -> None:
    # epoch = step // 10: a has two points in epoch 1 (steps 10 and 15), b one in each epoch.
    points = [("loss", 5, 0.9), ("loss", 10, 0.5), ("loss", 15, 0.45), ("loss", 20, 0.3)]
    a = add_job(settings, "a", spec_with(), points)
    b = add_job(settings, "b", spec_with(lr=0.01), [("loss", 12, 0.6), ("loss", 25, 0.4)])
    ids = f"{a},{b}"
    by_epoch = client.get("/v1/compare", params={"ids": ids}).json()
    explicit = client.get("/v1/compare", params={"ids": ids, "x": "epoch"}).json()
    by_step = client.get("/v1/compare", params={"ids": ids, "x": "step"}).json()
    assert by_epoch == explicit and by_epoch["x"] == "epoch" and by_step["x"] == "step"
    assert by_epoch["series"]["loss"] == {  # an epoch's last point stands for it
        "x": [0, 1, 2],
        "values": [[0.9, 0.45, 0.3], [None, 0.6, 0.4]],
        # `steps` (for clients that predate `x`): the latest of the jobs' last steps per epoch
        "steps": [5, 15, 25],
    }
    assert by_step["series"]["loss"] == {
        "x": [5, 10, 12, 15, 20, 25],
        "values": [[0.9, 0.5, None, 0.45, 0.3, None], [None, None, 0.6, None, None, 0.4]],
        "steps": [5, 10, 12, 15, 20, 25],
    }
    # The summaries do not depend on the axis.
    assert by_step["metrics"] == by_epoch["metrics"] and by_step["params"] == by_epoch["params"]


def test_another_axis_is_422_naming_x(client: TestClient, three: list[str]) -> None:
    r = client.get("/v1/compare", params={"ids": f"{three[0]},{three[1]}", "x": "time"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["loc"] == ["query", "x"]


def test_compare_keeps_the_order_asked(client: TestClient, three: list[str]) -> None:
    a, b, _ = three
    body = client.get("/v1/compare", params={"ids": f" {b} , {a} "}).json()
    assert [j["id"] for j in body["jobs"]] == [b, a]
    assert body["params"] == {
        "model.layers[0].units": [64, 128],
        "training.optimizer.learning_rate": [0.01, 0.001],
    }
    assert body["series"]["loss"]["values"] == [[0.6, 0.2, 0.4], [0.5, 0.3, None]]
    assert body["metrics"]["auc"] == [{"final": 0.75, "best": 0.75, "best_step": 30}, None]


def test_identical_specs_without_metrics(client: TestClient, settings: Settings) -> None:
    a = add_job(settings, "a", spec_with(), [])
    b = add_job(settings, "b", spec_with(), [("batch_loss", 1, 2.0)])
    body = client.get("/v1/compare", params={"ids": f"{a},{b}"}).json()
    assert body["params"] == {} and body["metrics"] == {} and body["series"] == {}


def test_unknown_id_is_404_naming_it(client: TestClient, three: list[str]) -> None:
    r = client.get("/v1/compare", params={"ids": f"{three[0]},nope"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "'nope'" in r.json()["detail"]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("one", "expected 2 to 20 job ids. Received: 1"),
        (",".join(f"j{i}" for i in range(21)), "expected 2 to 20 job ids. Received: 21"),
        ("x,y,x", "expected distinct job ids. Received more than once: x"),
        (" , ,", "expected 2 to 20 job ids. Received: 0"),
    ],
)
def test_bad_id_lists_are_422(client: TestClient, ids: str, message: str) -> None:
    r = client.get("/v1/compare", params={"ids": ids})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert message in r.json()["detail"]


def test_missing_ids_is_422(client: TestClient) -> None:
    r = client.get("/v1/compare")
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["query", "ids"]


def test_flatten_paths() -> None:
    spec = {"a": {"b": [{"c": 1}, 2], "e": []}, "f": {}}
    assert flatten(spec) == {"a.b[0].c": 1, "a.b[1]": 2, "a.e": [], "f": {}}
