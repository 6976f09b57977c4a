"""Resume and clone over HTTP, and checkpoint downloads, against a real store (SQLite and
PostgreSQL) and a real Redis broker. Jobs are trained in-process with `Runner`; no Celery."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import torch
from fastapi.testclient import TestClient
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file
from sqlalchemy import update

from api.app import create_app
from core.artifacts import FolderArtifacts
from core.running.runner import Runner
from core.settings import Settings
from core.store.db import session_factory
from core.store.models import Job
from tests.conftest import make_settings
from tests.servers import free_port

MOONS = {
    "name": "moons-mlp",
    "tags": ["base"],
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
        "epochs": 4,
        "metrics": ["accuracy"],
        "seed": 3,
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "callbacks": [{"type": "model_checkpoint", "save_best_only": True}],
    },
}

# POSTs without a body still say what they are (a browser could send them otherwise).
JSON = {"content-type": "application/json"}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings), headers=JSON) as c:
        yield c


def run(settings: Settings, job_id: str) -> str | None:
    return Runner(session_factory(settings.database_url), settings, "w").run(job_id)


def queued_messages(settings: Settings) -> int:
    return redis.Redis.from_url(settings.broker_url).llen(f"{settings.broker_key_prefix}cpu")


def set_status(settings: Settings, job_id: str, status: str) -> None:
    with session_factory(settings.database_url).begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=status))


@pytest.fixture
def trained(client: TestClient, settings: Settings) -> dict:
    job_id = client.post("/v1/jobs", json=MOONS).json()["id"]
    assert run(settings, job_id) == "succeeded"
    return client.get(f"/v1/jobs/{job_id}").json()


def test_a_cancelled_job_resumes_from_its_last_checkpoint(
    client: TestClient, settings: Settings, trained: dict
) -> None:
    job_id = trained["id"]
    assert trained["checkpoint"]["last"]["epoch"] == 4
    assert client.post(f"/v1/jobs/{job_id}/resume").status_code == 409  # succeeded
    set_status(settings, job_id, "cancelled")  # as if cancelled after its last epoch
    before = queued_messages(settings)
    r = client.post(f"/v1/jobs/{job_id}/resume")
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["status"], job["error"], job["finished_at"]) == ("queued", None, None)
    assert job["checkpoint"] == trained["checkpoint"]  # what the next attempt continues from
    assert queued_messages(settings) == before + 1
    assert client.post(f"/v1/jobs/{job_id}/resume").status_code == 409  # queued
    assert run(settings, job_id) == "succeeded"
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["attempts"] == 2
    assert job["summary"]["resumed_from"] == {"epoch": 4, "step": 60, "attempt": 1}
    assert job["summary"]["final"] == trained["summary"]["final"]
    series = {s["name"]: s for s in client.get(f"/v1/jobs/{job_id}/metrics").json()["series"]}
    assert series["batch_loss"]["steps"] == list(range(1, 61))
    assert client.post("/v1/jobs/nope/resume").status_code == 404


def test_a_resume_the_broker_cannot_take_changes_nothing(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    settings = make_settings(database_url, redis_url, tmp_path)
    with TestClient(create_app(settings), headers=JSON) as client:
        job_id = client.post("/v1/jobs", json=MOONS).json()["id"]
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
        cancelled = client.get(f"/v1/jobs/{job_id}").json()
    offline = make_settings(database_url, f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    with TestClient(create_app(offline), headers=JSON) as client:
        r = client.post(f"/v1/jobs/{job_id}/resume")
        assert r.status_code == 503
        assert client.get(f"/v1/jobs/{job_id}").json() == cancelled


def test_checkpoints_download_as_weights_with_the_spec(
    client: TestClient, settings: Settings, trained: dict
) -> None:
    job_id = trained["id"]
    final_path = settings.artifacts_dir / "final.safetensors"
    final_path.write_bytes(client.get(f"/v1/jobs/{job_id}/model").content)
    with safe_open(str(final_path), "pt") as f:
        final_meta = f.metadata()
    assert "epochal.preprocessing" in final_meta
    for kind in ("best", "last"):
        r = client.get(f"/v1/jobs/{job_id}/model", params={"checkpoint": kind})
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"].endswith(f'-{kind}.safetensors"')
        pointer = trained["checkpoint"][kind]
        path = settings.artifacts_dir / "dl.safetensors"
        path.write_bytes(r.content)
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        assert meta["epochal.spec"] and f'"epoch": {pointer["epoch"]}' in meta["epochal.checkpoint"]
        weights = load_safetensors(r.content)
        assert set(weights) == {"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"}
        # As the final model's, so the checkpoint applies to raw rows too.
        assert meta["epochal.preprocessing"] == final_meta["epochal.preprocessing"]
    last = load_safetensors(client.get(f"/v1/jobs/{job_id}/model?checkpoint=last").content)
    final = load_safetensors(client.get(f"/v1/jobs/{job_id}/model").content)
    assert all(torch.equal(last[k], final[k]) for k in final)  # the last epoch is the model
    assert client.get(f"/v1/jobs/{job_id}/model?checkpoint=first").status_code == 422

    without = client.post(
        f"/v1/jobs/{job_id}/clone", json={"overrides": {"training.callbacks": []}}
    ).json()["id"]
    assert run(settings, without) == "succeeded"
    r = client.get(f"/v1/jobs/{without}/model", params={"checkpoint": "best"})
    assert r.status_code == 409 and "model_checkpoint" in r.json()["detail"]


def test_a_clone_takes_the_spec_with_its_overrides(client: TestClient, trained: dict) -> None:
    r = client.post(
        f"/v1/jobs/{trained['id']}/clone",
        json={"overrides": {"training.epochs": 2, "model.layers[0].units": 8}, "tags": ["c"]},
    )
    assert r.status_code == 201, r.text
    clone = r.json()
    assert clone["status"] == "queued" and clone["source_job_id"] == trained["id"]
    assert clone["spec"]["training"]["epochs"] == 2
    assert clone["spec"]["model"]["layers"][0]["units"] == 8
    assert clone["spec"]["training"]["seed"] == 3  # the same seed: reproducible
    assert (clone["name"], clone["tags"], clone["init_from"]) == ("moons-mlp", ["c"], None)
    assert clone["summary"]["parameter_count"] == 8 * 2 + 8 + 8 * 2 + 2
    listed = client.get("/v1/jobs", params={"tag": "c"}).json()["items"]
    assert [j["id"] for j in listed] == [clone["id"]]


@pytest.mark.parametrize(
    ("body", "status", "loc", "words"),
    [
        ({"overrides": {"training.epochs": 0}}, 422, ["training", "epochs"], "greater than 0"),
        (
            {"overrides": {"model.layers[0].units": "many"}},
            422,
            ["model", "layers", 0, "units"],
            "valid integer",
        ),
        (
            {"overrides": {"model.layers[5].units": 3}},
            422,
            ["overrides", "model.layers[5].units"],
            "has 2 items",
        ),
        (
            {"overrides": {"training.loss": "binary_crossentropy"}},
            422,
            ["training", "loss"],
            "single sigmoid unit",
        ),
        ({"init_from": "yesterday"}, 422, ["init_from"], "final"),
        ({"overrides": {}, "extra": 1}, 422, ["extra"], "unknown field"),
    ],
)
def test_a_bad_clone_is_refused_with_its_location_and_nothing_is_written(
    client: TestClient,
    settings: Settings,
    trained: dict,
    body: dict,
    status: int,
    loc: list,
    words: str,
) -> None:
    before = len(client.get("/v1/jobs").json()["items"])
    r = client.post(f"/v1/jobs/{trained['id']}/clone", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    assert error["loc"] == loc and words in error["msg"], error
    assert len(client.get("/v1/jobs").json()["items"]) == before


def test_a_clone_fine_tunes_from_the_source_weights(
    client: TestClient, settings: Settings, trained: dict
) -> None:
    source = trained["id"]
    queued = client.post("/v1/jobs", json=MOONS).json()["id"]
    r = client.post(f"/v1/jobs/{queued}/clone", json={"init_from": "final"})
    assert r.status_code == 409  # no model yet
    r = client.post(
        f"/v1/jobs/{source}/clone",
        json={"init_from": "final", "overrides": {"model.layers[0].units": 32}},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "weights_mismatch"

    r = client.post(
        f"/v1/jobs/{source}/clone",
        json={
            "init_from": "best",
            "overrides": {
                "training.epochs": 1,
                "training.optimizer": {"type": "sgd", "learning_rate": 1e-9},
            },
        },
    )
    assert r.status_code == 201, r.text
    clone = r.json()
    init = clone["init_from"]
    assert (init["job_id"], init["checkpoint"]) == (source, "best")
    assert init["epoch"] == trained["checkpoint"]["best"]["epoch"]
    assert init["weights"] == f"jobs/{clone['id']}/init/weights.safetensors"  # its own copy
    assert run(settings, clone["id"]) == "succeeded"
    best = load_safetensors(client.get(f"/v1/jobs/{source}/model?checkpoint=best").content)
    tuned = load_file(
        settings.artifacts_dir
        / client.get(f"/v1/jobs/{clone['id']}").json()["summary"]["model"]["weights"]
    )
    for name in best:  # a learning rate of 1e-9 barely moves them
        assert torch.allclose(best[name], tuned[name], atol=1e-6), name
    fresh = client.post(f"/v1/jobs/{source}/clone", json={"overrides": {"training.epochs": 1}})
    assert run(settings, fresh.json()["id"]) == "succeeded"
    assert clone["spec"]["training"]["seed"] == fresh.json()["spec"]["training"]["seed"]


def test_a_corrupt_checkpoint_is_a_409_for_clone_and_download(
    client: TestClient, settings: Settings
) -> None:
    """A stored checkpoint that is not one (truncated, overwritten) conflicts with the request:
    409 naming it, never a 500; nothing is written."""
    job_id = client.post("/v1/jobs", json=MOONS).json()["id"]
    key = f"jobs/{job_id}/checkpoints/last.safetensors"
    FolderArtifacts(settings.artifacts_dir).write(key, b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    pointer = {"key": key, "epoch": 2, "step": 30, "attempt": 1}
    with session_factory(settings.database_url).begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(checkpoint={"last": pointer}))
    before = queued_messages(settings)
    r = client.post(f"/v1/jobs/{job_id}/clone", json={"init_from": "last"})
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:epochal:problem:invalid_checkpoint"
    assert "not an Epochal checkpoint" in r.json()["detail"]
    assert len(client.get("/v1/jobs").json()["items"]) == 1
    assert queued_messages(settings) == before
    download = client.get(f"/v1/jobs/{job_id}/model", params={"checkpoint": "last"})
    assert (
        download.status_code == 409 and download.json()["title"] == "The checkpoint cannot be read"
    )
