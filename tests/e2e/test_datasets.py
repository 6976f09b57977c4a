"""End to end with uploaded data sets: upload → train → download → predict → evaluate, for a CSV
(with a text column, standardized) and NPZ images (a small CNN), on the real stack: uvicorn, a
Celery worker, PostgreSQL and Redis. A data set in use by a running job cannot be deleted."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest

from tests.api.test_dataset_uploads import SPECIES, table_csv
from tests.api.test_evaluate import flowers_spec
from tests.e2e.stack import FINISHED, Stack, wait_for_epoch, wait_for_job

pytestmark = pytest.mark.e2e


def halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8x1 images, raw pixel values in [0, 255]: class 1 is bright on the right half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(60.0, 20.0, size=(n, 8, 8, 1))
    x[y == 0, :, :4] += 120.0
    x[y == 1, :, 4:] += 120.0
    return np.clip(x, 0, 255).astype(np.float32), y


def npz(x: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    return buffer.getvalue()


def cnn_spec(dataset_id: str, epochs: int) -> dict:
    return {
        "name": "halves-cnn",
        "dataset": {
            "name": dataset_id,
            "validation_split": 0.2,
            "preprocessing": {"features": "min_max"},
        },
        "model": {
            "layers": [
                {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
                {"type": "global_average_pooling2d"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ]
        },
        "training": {
            "loss": "sparse_categorical_crossentropy",
            "optimizer": {"type": "adam", "learning_rate": 0.05},
            "metrics": ["accuracy"],
            "batch_size": 32,
            "epochs": epochs,
            "seed": 0,
        },
    }


def train(client: httpx.Client, stack: Stack, spec: dict) -> dict:
    r = client.post("/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"], FINISHED, 180, stack)
    assert job["status"] == "succeeded", job["error"]
    return job


def test_csv_upload_train_download_predict_evaluate(stack: Stack) -> None:
    with stack.client() as client:
        r = client.post(
            "/v1/datasets",
            params={"target": "species", "name": "flowers"},
            content=table_csv(rows=90).encode(),
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 201, r.text
        ds = r.json()
        job = train(client, stack, flowers_spec(ds["id"]))
        assert job["summary"]["test"]["accuracy"] >= 0.8

        model = client.get(f"/v1/jobs/{job['id']}/model")
        assert model.status_code == 200 and len(model.content) > 100
        rows = [[4.0, 2.0, 0.0, 1.0], [5.0, 2.5, 1.0, 0.0], [6.0, 3.0, 0.0, 1.0]]  # raw
        r = client.post(f"/v1/jobs/{job['id']}/predict", json={"inputs": rows})
        assert [o["class"] for o in r.json()["outputs"]] == SPECIES, r.text
        r = client.post(f"/v1/jobs/{job['id']}/evaluate", json={"dataset": ds["id"]})
        assert r.status_code == 200 and r.json()["metrics"]["accuracy"] >= 0.9, r.text


def test_npz_images_train_a_cnn_and_a_busy_data_set_stays(stack: Stack) -> None:
    x, y = halves(300, 0)
    with stack.client() as client:
        r = client.post(
            "/v1/datasets",
            params={"name": "halves"},
            content=npz(x, y),
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        ds = r.json()
        assert (ds["feature_shape"], ds["num_classes"]) == ([8, 8, 1], 2)
        job = train(client, stack, cnn_spec(ds["id"], 15))
        assert job["summary"]["final"]["val_accuracy"] >= 0.9

        new_x, new_y = halves(20, 1)
        r = client.post(f"/v1/jobs/{job['id']}/predict", json={"inputs": new_x.tolist()})
        labels = [o["label"] for o in r.json()["outputs"]]
        assert np.mean(np.array(labels) == new_y) >= 0.9, r.text
        held_out = client.post(
            "/v1/datasets",
            content=npz(*halves(100, 2)),
            headers={"content-type": "application/octet-stream"},
        ).json()
        r = client.post(f"/v1/jobs/{job['id']}/evaluate", json={"dataset": held_out["id"]})
        assert r.json()["samples"] == 100 and r.json()["metrics"]["accuracy"] >= 0.9, r.text

        long_run = client.post("/v1/jobs", json=cnn_spec(ds["id"], 5000)).json()["id"]
        wait_for_epoch(client, long_run, 1, stack)
        r = client.delete(f"/v1/datasets/{ds['id']}")
        assert r.status_code == 409 and long_run in r.json()["detail"]
        client.post(f"/v1/jobs/{long_run}/cancel", headers={"content-type": "application/json"})
        assert wait_for_job(client, long_run, FINISHED, 60, stack)["status"] == "cancelled"
        assert client.delete(f"/v1/datasets/{ds['id']}").status_code == 204
        assert client.get(f"/v1/datasets/{ds['id']}").status_code == 404
        # The trained model does not need its data set any more.
        r = client.post(f"/v1/jobs/{job['id']}/predict", json={"inputs": new_x[:2].tolist()})
        assert r.status_code == 200, r.text
