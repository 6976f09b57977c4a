"""The v1 HTTP contract against a real store (SQLite and PostgreSQL) and a real Redis broker.

No worker runs here: submitted jobs stay queued, and the broker's queue is inspected directly.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from core.settings import Settings
from core.store.db import session_factory
from core.store.metrics import write_points
from core.store.models import Job, JobTag
from tests.conftest import make_settings
from tests.servers import free_port
from tests.specs import DIGITS

# POSTs without a body still say what they are (a browser could send them otherwise).
JSON = {"content-type": "application/json"}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings), headers=JSON) as c:
        yield c


def queued_messages(settings: Settings, queue: str = "cpu") -> int:
    return redis.Redis.from_url(settings.broker_url).llen(f"{settings.broker_key_prefix}{queue}")


def job_rows(settings: Settings) -> int:
    with session_factory(settings.database_url)() as s:
        return s.scalar(select(func.count()).select_from(Job)) + s.scalar(
            select(func.count()).select_from(JobTag)
        )


def with_change(path: str, value: object) -> dict:
    spec = copy.deepcopy(DIGITS)
    *parents, leaf = path.split(".")
    node = spec
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is DELETE:
        del node[leaf]
    else:
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return spec


DELETE = object()
TOO_BIG = {"type": "dense", "units": 500_000, "activation": "relu"}  # 37M > 20M parameters

BAD_SPECS = {
    "unknown layer": (
        with_change("model.layers.1.type", "conv9d"),
        ["model", "layers", 1],
        "unknown type 'conv9d'; expected one of: 'input', 'dense'",
    ),
    "negative units": (
        with_change("model.layers.0.units", -3),
        ["model", "layers", 0, "units"],
        "greater than 0",
    ),
    "units not a number": (
        with_change("model.layers.0.units", "ten"),
        ["model", "layers", 0, "units"],
        "valid integer",
    ),
    "dropout rate 1.5": (
        with_change("model.layers.1.rate", 1.5),
        ["model", "layers", 1, "rate"],
        "less than 1",
    ),
    "unknown activation": (
        with_change("model.layers.0.activation", "relux"),
        ["model", "layers", 0, "activation"],
        "unknown activation 'relux'; expected one of",
    ),
    "unknown optimizer": (
        with_change("training.optimizer.type", "adamx"),
        ["training", "optimizer"],
        "unknown type 'adamx'; expected one of: 'sgd'",
    ),
    "unknown loss": (
        with_change("training.loss", "cross_entropy"),
        ["training", "loss", "type"],
        "unknown loss 'cross_entropy'",
    ),
    "unknown data set": (
        with_change("dataset.name", "mnistt"),
        ["dataset", "name"],
        "unknown dataset 'mnistt'",
    ),
    "unknown top-level field": (with_change("optimizer", "adam"), ["optimizer"], "unknown field"),
    "unknown nested field": (
        with_change("training.learning_rate", 0.1),
        ["training", "learning_rate"],
        "unknown field",
    ),
    "layer missing a field": (
        with_change("model.layers.0", {"type": "Dense", "activation": "relu"}),
        ["model", "layers", 0, "units"],
        "field required",
    ),
    "missing data set": (with_change("dataset", DELETE), ["dataset"], "field required"),
    "no layers": (with_change("model.layers", []), ["model", "layers"], "at least 1 item"),
    "wrong input shape": (
        with_change("model.input_shape", [8, 8, 1]),
        ["model", "input_shape"],
        "has inputs of shape (64,), not (8, 8, 1)",
    ),
    "output does not fit the loss": (
        with_change("model.layers.2.units", 3),
        ["training", "loss"],
        "outputs shape (3,); expected (10,)",
    ),
    "probabilities loss on a linear output": (
        with_change("model.layers.2.activation", "linear"),
        ["training", "loss"],
        "set from_logits: true",
    ),
    "too many parameters": (
        with_change("model.layers.0", TOO_BIG),
        ["model", "layers"],
        "EPOCHAL_MAX_PARAMETERS",
    ),
    "too many epochs": (
        with_change("training.epochs", 10**6),
        ["training", "epochs"],
        "EPOCHAL_MAX_EPOCHS",
    ),
    "zero batch size": (
        with_change("training.batch_size", 0),
        ["training", "batch_size"],
        'expected a positive integer or "full"; received batch_size=0',
    ),
    "validation split of 1": (
        with_change("dataset.validation_split", 1.0),
        ["dataset", "validation_split"],
        "less than 1",
    ),
    "option of another data set": (
        with_change("dataset.n_samples", 500),
        ["dataset", "n_samples"],
        "does not apply to the data set 'digits'",
    ),
    "bad device": (
        with_change("resources.device", "tpu"),
        ["resources", "device"],
        "'auto', 'cpu' or 'cuda'",
    ),
    "bad tag": (with_change("tags", ["has space"]), ["tags", 0], "should match pattern"),
    "unknown stop_on condition": (
        with_change("training.stop_on", ["vanishing_gradients", "overfitting"]),
        ["training", "stop_on", "conditions", 1],
        "'exploding_gradients', 'vanishing_gradients', 'dead_relu' or 'divergence'",
    ),
    "negative stop_on patience": (
        with_change("training.stop_on", {"conditions": ["dead_relu"], "patience": -1}),
        ["training", "stop_on", "patience"],
        "greater than or equal to 0",
    ),
    "accuracy on regression": (
        with_change("dataset", {"name": "regression"}),
        ["training", "loss"],
        "needs class labels",
    ),
    "max_samples 0": (
        with_change("dataset.max_samples", 0),
        ["dataset", "max_samples"],
        "greater than or equal to 1",
    ),
    "val_ monitor without validation data": (
        with_change("training.callbacks", [{"type": "early_stopping", "monitor": "val_loss"}])
        | {"dataset": {"name": "digits"}},
        ["training", "callbacks", 0, "monitor"],
        "set dataset.validation_split (a part held out) or dataset.validation",
    ),
}


def test_each_bad_spec_is_refused_with_its_location_and_nothing_is_written(
    client: TestClient, settings: Settings
) -> None:
    for kind, (spec, loc, expected) in BAD_SPECS.items():
        r = client.post("/v1/jobs", json=spec)
        assert r.status_code == 422, kind
        assert r.headers["content-type"] == "application/problem+json", kind
        body = r.json()
        assert body["status"] == 422 and body["type"].startswith("urn:epochal:problem:"), kind
        messages = {tuple(e["loc"]): e["msg"] for e in body["errors"]}
        assert tuple(loc) in messages, f"{kind}: {messages}"
        assert expected in messages[tuple(loc)], f"{kind}: {messages[tuple(loc)]}"
    assert job_rows(settings) == 0
    assert queued_messages(settings) == 0


def test_a_refused_type_is_one_problem_not_one_per_argument(client: TestClient) -> None:
    focal = {"type": "binary_focal_crossentropy", "alpha": 0.25, "gamma": 2.0}
    r = client.post("/v1/jobs", json=with_change("training.loss", focal))
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["loc"] == ["training", "loss", "type"]
    assert error["msg"].startswith("unknown loss 'binary_focal_crossentropy'")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"name": "x",', "malformed JSON"),
        (b"[1, 2]", "valid dictionary"),
        (b"", "field required"),
    ],
)
def test_bodies_that_are_not_a_spec_are_refused(
    client: TestClient, settings: Settings, body: bytes, expected: str
) -> None:
    r = client.post("/v1/jobs", content=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert expected in json.dumps(r.json()["errors"])
    assert job_rows(settings) == 0


def test_a_good_spec_is_stored_normalized_and_queued(
    client: TestClient, settings: Settings
) -> None:
    spec = copy.deepcopy(DIGITS)
    del spec["training"]["seed"]
    spec["model"]["layers"][0]["type"] = "Dense"
    r = client.post("/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["status"], job["queue"], job["name"], job["tags"]) == (
        "queued",
        "cpu",
        "digits-mlp",
        ["baseline"],
    )
    assert job["spec"]["model"]["layers"][0]["type"] == "dense"
    assert job["spec"]["model"]["layers"][0]["kernel_initializer"] == "glorot_uniform"
    assert isinstance(job["spec"]["training"]["seed"], int)  # drawn at submission: reproducible
    assert job["summary"]["parameter_count"] == 64 * 128 + 128 + 128 * 10 + 10
    assert [layer["output_shape"] for layer in job["summary"]["layers"]] == [[128], [128], [10]]
    assert job["progress"] == {"epoch": 0, "epochs": 20, "step": 0}
    assert client.get(f"/v1/jobs/{job['id']}").json() == job
    assert queued_messages(settings) == 1


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
def test_a_separate_validation_set_gives_val_series_to_callbacks_and_sweeps(
    client: TestClient,
) -> None:
    """digits to train on, digits again (its default options) to validate: val_loss is logged,
    so early stopping may monitor it and a sweep may maximize val_accuracy."""
    spec = with_change("dataset", {"name": "digits", "validation": "digits", "max_samples": 100})
    spec["training"]["callbacks"] = [{"type": "EarlyStopping", "monitor": "val_loss"}]
    r = client.post("/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["dataset"]["max_samples"] == 100
    sweep = {
        "base": spec,
        "method": "grid",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {"training.optimizer.learning_rate": {"values": [0.001, 0.01]}},
        "max_parallel": 1,
    }
    r = client.post("/v1/sweeps", json=sweep)
    assert r.status_code == 201, r.text


def test_device_picks_the_queue(client: TestClient, settings: Settings) -> None:
    r = client.post("/v1/jobs", json=with_change("resources.device", "cuda"))
    assert r.json()["queue"] == "gpu"
    assert (queued_messages(settings, "gpu"), queued_messages(settings, "cpu")) == (1, 0)


def test_listing_filters_and_pages(client: TestClient) -> None:
    ids = [
        client.post("/v1/jobs", json=with_change("tags", [f"t{i % 2}"])).json()["id"]
        for i in range(5)
    ]
    page = client.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    rest = client.get("/v1/jobs", params={"limit": 10, "cursor": page["next_cursor"]}).json()
    assert [j["id"] for j in rest["items"]] == ids[::-1][2:] and rest["next_cursor"] is None
    assert [j["id"] for j in client.get("/v1/jobs", params={"tag": "t0"}).json()["items"]] == [
        ids[4],
        ids[2],
        ids[0],
    ]
    client.post(f"/v1/jobs/{ids[1]}/cancel")
    assert [
        j["id"] for j in client.get("/v1/jobs", params={"status": "cancelled"}).json()["items"]
    ] == [ids[1]]
    bad = client.get("/v1/jobs", params={"status": "done"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "status"]
    assert client.get("/v1/jobs", params={"cursor": "zzz"}).status_code == 422
    naive = base64.urlsafe_b64encode(b"2020-01-01T00:00:00|x").decode()  # a forged cursor
    assert client.get("/v1/jobs", params={"cursor": naive}).status_code == 422


def test_cancel_and_unknown_jobs(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json=DIGITS).json()["id"]
    r = client.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelled" and r.json()["finished_at"]
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    for path in ("/v1/jobs/nope", "/v1/jobs/nope/metrics"):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert client.post("/v1/jobs/nope/cancel").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/metrics").json() == {"job_id": job_id, "series": []}


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "store": "ok", "broker": "ok"}


def test_an_unreachable_broker_stores_nothing(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    with TestClient(create_app(settings), headers=JSON) as client:
        r = client.post("/v1/jobs", json=DIGITS)
        assert r.status_code == 503 and "nothing was stored" in r.json()["detail"]
        assert client.get("/readyz").status_code == 503
    assert job_rows(settings) == 0


def test_metrics_can_be_polled_incrementally_and_downsampled(
    client: TestClient, settings: Settings
) -> None:
    job_id = client.post("/v1/jobs", json=DIGITS).json()["id"]
    with session_factory(settings.database_url).begin() as session:
        write_points(
            session,
            job_id=job_id,
            points=[("batch_loss", s, 1, float(s % 7)) for s in range(1, 101)],
        )
    url = f"/v1/jobs/{job_id}/metrics"
    [full] = client.get(url).json()["series"]
    assert set(full) == {"name", "steps", "epochs", "values"} and len(full["steps"]) == 100
    [newer] = client.get(url, params={"since_step": 95}).json()["series"]
    assert newer["steps"] == [96, 97, 98, 99, 100]
    [small] = client.get(url, params={"max_points": 10}).json()["series"]
    assert small["steps"] == list(range(10, 101, 10))
    assert small["max"] == [6.0] * 10 and small["min"] == [0.0] * 10
    assert client.get(url, params={"max_points": 1}).status_code == 422
