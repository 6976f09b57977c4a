"""A model trained on an uploaded, standardized data set: predict takes raw rows, evaluate runs
the spec's metrics, and both outlive the data set. Real store (SQLite and PostgreSQL); the job is
trained in-process with `Runner`, so no Celery."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from safetensors import safe_open

from api.app import create_app
from core.running.runner import Runner
from core.settings import Settings
from core.store.db import session_factory
from tests.api.test_dataset_uploads import SPECIES, table_csv


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def flowers_spec(dataset_id: str) -> dict:
    return {
        "name": "flowers",
        "dataset": {
            "name": dataset_id,
            "validation_split": 0.2,
            "test_split": 0.2,
            "preprocessing": {"features": "standardize"},
        },
        "model": {
            "layers": [
                {"type": "dense", "units": 16, "activation": "relu"},
                {"type": "dense", "units": 3, "activation": "softmax"},
            ]
        },
        "training": {
            "loss": "sparse_categorical_crossentropy",
            "optimizer": {"type": "adam", "learning_rate": 0.05},
            "metrics": ["accuracy"],
            "batch_size": 16,
            "epochs": 40,
            "seed": 0,
        },
    }


def test_upload_train_predict_evaluate(client: TestClient, settings: Settings) -> None:
    ds = client.post(
        "/v1/datasets",
        params={"target": "species"},
        content=table_csv(rows=90).encode(),
        headers={"content-type": "text/csv"},
    ).json()
    job_id = client.post("/v1/jobs", json=flowers_spec(ds["id"])).json()["id"]
    assert client.post(f"/v1/jobs/{job_id}/evaluate", json={"dataset": ds["id"]}).status_code == 409
    runner = Runner(session_factory(settings.database_url), settings, "w")
    assert runner.run(job_id) == "succeeded"
    job = client.get(f"/v1/jobs/{job_id}").json()
    summary = job["summary"]
    assert (summary["train_samples"], summary["val_samples"], summary["test_samples"]) == (
        58,
        14,
        18,
    )
    assert set(summary["test"]) == {"loss", "accuracy"} and summary["test"]["accuracy"] >= 0.8
    assert summary["model"]["preprocessing"].endswith("preprocessing.json")

    # Raw rows (length, width, soil=clay, soil=sand), not standardized.
    rows = [[4.0, 2.0, 1.0, 0.0], [5.0, 2.5, 0.0, 1.0], [6.0, 3.0, 1.0, 0.0]]
    outputs = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": rows}).json()["outputs"]
    assert [o["label"] for o in outputs] == [0, 1, 2]
    assert [o["class"] for o in outputs] == SPECIES

    r = client.post(f"/v1/jobs/{job_id}/evaluate", json={"dataset": ds["id"]})
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["dataset"], result["samples"]) == (ds["id"], 90)
    assert set(result["metrics"]) == {"loss", "accuracy"} and result["metrics"]["accuracy"] >= 0.9

    for name, loc in (
        ("digits", ["dataset"]),
        ("ds_" + "0" * 20, ["dataset"]),
        ("nope", ["dataset"]),
    ):
        r = client.post(f"/v1/jobs/{job_id}/evaluate", json={"dataset": name})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == loc, r.text
    assert "(64,)" in client.post(f"/v1/jobs/{job_id}/evaluate", json={"dataset": "digits"}).text

    model = client.get(f"/v1/jobs/{job_id}/model")
    path = settings.artifacts_dir / "download.safetensors"
    path.write_bytes(model.content)
    with safe_open(str(path), "pt") as f:
        saved = json.loads(f.metadata()["epochal.preprocessing"])
    assert saved["scaler"]["kind"] == "standardize" and saved["classes"] == SPECIES

    # The data set goes; the model still predicts, from a fresh process's cache.
    assert client.delete(f"/v1/datasets/{ds['id']}").status_code == 204
    with TestClient(create_app(settings)) as fresh:
        again = fresh.post(f"/v1/jobs/{job_id}/predict", json={"inputs": rows}).json()
        assert [o["label"] for o in again["outputs"]] == [0, 1, 2]
        r = fresh.post(f"/v1/jobs/{job_id}/evaluate", json={"dataset": ds["id"]})
        assert r.status_code == 422 and "no uploaded data set" in r.text
