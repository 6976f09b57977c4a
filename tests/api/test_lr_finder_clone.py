"""POST /v1/jobs/{id}/clone with `"training.optimizer.learning_rate": "suggested"`: the clone
trains at the source's learning-rate finder suggestion, without the finder. A real store and
Redis broker; jobs trained in-process with `Runner`."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from core.training.lr_finder import no_suggestion
from tests.api.test_restarts import JSON, MOONS, run

SUGGESTED = {"overrides": {"training.optimizer.learning_rate": "suggested"}}
LOC = ["overrides", "training.optimizer.learning_rate"]


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings), headers=JSON) as c:
        yield c


def finder_spec() -> dict:
    spec = copy.deepcopy(MOONS)
    spec["training"]["lr_finder"] = {"steps": 30}
    return spec


def test_a_clone_takes_the_finders_suggestion_and_drops_the_finder(
    client: TestClient, settings: Settings
) -> None:
    source = client.post("/v1/jobs", json=finder_spec()).json()["id"]
    r = client.post(f"/v1/jobs/{source}/clone", json=SUGGESTED)  # not run yet: no suggestion
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    assert error["loc"] == LOC and "range test has not ended" in error["msg"], error
    assert run(settings, source) == "succeeded"
    rate = client.get(f"/v1/jobs/{source}").json()["summary"]["lr_finder"]["suggested_lr"]
    r = client.post(f"/v1/jobs/{source}/clone", json=SUGGESTED)
    assert r.status_code == 201, r.text
    clone = r.json()
    assert clone["spec"]["training"]["optimizer"]["learning_rate"] == rate
    assert clone["spec"]["training"]["lr_finder"] is None
    assert run(settings, clone["id"]) == "succeeded"
    summary = client.get(f"/v1/jobs/{clone['id']}").json()["summary"]
    assert summary["epochs_run"] == MOONS["training"]["epochs"] and "lr_finder" not in summary


def test_a_suggested_clone_of_a_job_without_the_finder_is_refused(
    client: TestClient, settings: Settings
) -> None:
    source = client.post("/v1/jobs", json=MOONS).json()["id"]
    r = client.post(f"/v1/jobs/{source}/clone", json=SUGGESTED)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["loc"] == LOC and "has no training.lr_finder" in error["msg"], error


def test_a_suggested_clone_of_a_test_that_found_no_rate_says_to_lower_min_lr(
    client: TestClient, settings: Settings
) -> None:
    """The same advice as a "suggested" job whose own test finds none (no_suggestion)."""
    spec = finder_spec()
    spec["training"]["lr_finder"] = {"steps": 20, "min_lr": 1e3, "max_lr": 1e6}
    spec["training"]["optimizer"] = {"type": "sgd", "learning_rate": 0.1}
    source = client.post("/v1/jobs", json=spec).json()["id"]
    assert run(settings, source) == "succeeded"  # the test alone: it trains nothing
    found = client.get(f"/v1/jobs/{source}").json()["summary"]["lr_finder"]
    assert found["suggested_lr"] is None and found["diverged_at"] <= 3, found
    r = client.post(f"/v1/jobs/{source}/clone", json=SUGGESTED)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["loc"] == LOC and error["msg"].endswith(no_suggestion(found)), error
    assert "lower training.lr_finder.min_lr" in error["msg"]


def test_a_suggested_rate_without_the_finder_is_refused_at_submission(
    client: TestClient,
) -> None:
    spec = copy.deepcopy(MOONS)
    spec["training"]["optimizer"]["learning_rate"] = "suggested"
    r = client.post("/v1/jobs", json=spec)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["loc"][-3:] == ["training", "optimizer", "learning_rate"], error
    assert "lr_finder" in error["msg"]
