"""GET /v1/jobs with param.* filters and order_by=metric.*, against SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from core.spec import JobSpec
from core.store import jobs
from core.store.db import session_factory
from core.store.metrics import write_points
from tests.specs import DIGITS

# name: (optimizer, batch size, first units, final val_accuracy or None)
RUNS: dict[str, tuple[str, int, int, float | None]] = {
    "a": ("adam", 64, 128, 0.91),
    "b": ("sgd", 64, 64, 0.97),
    "c": ("adam", 32, 128, 0.85),
    "d": ("adam", 32, 64, None),
}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def ids(settings: Settings) -> dict[str, str]:
    made = {}
    with session_factory(settings.database_url)() as session:
        for name, (optimizer, batch_size, units, accuracy) in RUNS.items():
            raw = copy.deepcopy(DIGITS)
            raw["training"]["optimizer"] = {"type": optimizer}
            raw["training"]["batch_size"] = batch_size
            raw["model"]["layers"][0]["units"] = units
            job = jobs.create_job(
                session,
                spec=JobSpec.model_validate(raw).model_dump(mode="json"),
                name=name,
                tags=[],
                queue="cpu",
                summary={},
                epochs=1,
            )
            if accuracy is not None:
                points = [("val_accuracy", 1, 1, 0.5), ("val_accuracy", 2, 2, accuracy)]
                write_points(session, job_id=job.id, points=points)
            session.commit()
            made[name] = job.id
    return made


def listed(client: TestClient, params: Any) -> list[str]:
    r = client.get("/v1/jobs", params=params)
    assert r.status_code == 200, r.json()
    return [j["name"] for j in r.json()["items"]]


def test_param_filters_match_spec_values(client: TestClient, ids: dict[str, str]) -> None:
    assert listed(client, {"param.training.optimizer.type": "adam"}) == ["d", "c", "a"]
    assert listed(client, {"param.training.batch_size": "64"}) == ["b", "a"]
    assert listed(client, {"param.model.layers[0].units": "128"}) == ["c", "a"]
    both = {"param.training.optimizer.type": "adam", "param.model.layers[0].units": "64"}
    assert listed(client, both) == ["d"]
    assert listed(client, {"param.training.batch_size": '"64"'}) == []
    assert listed(client, [("param.training.batch_size", "64"), ("order", "asc")]) == ["a", "b"]


def test_ordering_by_a_metric_with_pages(client: TestClient, ids: dict[str, str]) -> None:
    best = {"order_by": "metric.val_accuracy"}
    assert listed(client, best) == ["b", "a", "c", "d"]
    assert listed(client, {**best, "order": "asc"}) == ["c", "a", "b", "d"]
    seen, cursor = [], None
    while True:
        query = {**best, "order": "asc", "limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/jobs", params=query).json()
        seen += [j["name"] for j in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["c", "a", "b", "d"]
    first = client.get("/v1/jobs", params={**best, "limit": 1}).json()
    replay = client.get("/v1/jobs", params={"cursor": first["next_cursor"]})
    assert replay.status_code == 422 and "another order" in replay.json()["detail"]
    bad = client.get("/v1/jobs", params={"order": "up"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "order"]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"param.": "1"}, "param."),
        ({"param.training..seed": "1"}, "param.training..seed"),
        ({"params": "x"}, "'params'"),
        ({"metric.val_accuracy": "0.9"}, "'metric.val_accuracy'"),
        ({"order_by": "val_accuracy"}, "order_by"),
        ({"order_by": "metric."}, "order_by"),
    ],
)
def test_unknown_filter_syntax_is_a_422_problem(
    client: TestClient, params: dict[str, str], names: str
) -> None:
    r = client.get("/v1/jobs", params=params)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert names in r.json()["detail"]
