"""End to end with the artifacts in an S3 bucket (moto's server, over HTTP): the API and a Celery
worker share nothing but PostgreSQL, Redis and the bucket. An uploaded data set goes to the
bucket, the worker trains on it from there and saves its model there, and the API serves the
download and predictions from the bucket; deleting the job empties its prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load as load_safetensors

from tests.api.test_dataset_uploads import SPECIES, table_csv
from tests.api.test_evaluate import flowers_spec
from tests.e2e.stack import FINISHED, own_stack, wait_for_job
from tests.s3 import S3Server

pytestmark = pytest.mark.e2e


def test_a_data_set_and_a_job_round_trip_through_the_bucket(
    production_settings: dict, s3_server: S3Server, s3_env: None, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    folder = tmp_path / "artifacts"  # the default folder, which nothing may use
    settings = {
        **production_settings,
        "artifacts_dir": folder,
        "artifacts_url": f"s3://{bucket}/epochal",
        "s3_endpoint_url": s3_server.endpoint,
        "checkpoint_every_epochs": 10,
    }
    (tmp_path / "stack").mkdir()
    with own_stack(tmp_path / "stack", **settings) as stack, stack.client() as client:
        stack.start_worker()
        r = client.post(
            "/v1/datasets",
            params={"target": "species", "name": "flowers"},
            content=table_csv(rows=90).encode(),
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 201, r.text
        dataset = r.json()["id"]
        assert s3_server.keys(bucket) == [f"epochal/datasets/{dataset}.npz"]

        r = client.post("/v1/jobs", json=flowers_spec(dataset))
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["id"], FINISHED, 180, stack)
        assert job["status"] == "succeeded", job["error"]
        prefix = f"epochal/jobs/{job['id']}/attempt-1/"
        stored = s3_server.keys(bucket, prefix)
        assert {f"{prefix}model.safetensors", f"{prefix}preprocessing.json"} <= set(stored)
        assert any(k.startswith(f"{prefix}checkpoints/epoch-") for k in stored), stored

        model = client.get(f"/v1/jobs/{job['id']}/model")
        assert model.status_code == 200, model.text
        weights = s3_server.client().get_object(Bucket=bucket, Key=f"{prefix}model.safetensors")
        expected = load_safetensors(weights["Body"].read())
        downloaded = load_safetensors(model.content)
        assert downloaded.keys() == expected.keys()
        assert all(downloaded[k].equal(expected[k]) for k in expected)
        last = client.get(f"/v1/jobs/{job['id']}/model", params={"checkpoint": "last"})
        assert last.status_code == 200, last.text
        rows = [[4.0, 2.0, 0.0, 1.0], [5.0, 2.5, 1.0, 0.0], [6.0, 3.0, 0.0, 1.0]]  # raw
        r = client.post(f"/v1/jobs/{job['id']}/predict", json={"inputs": rows})
        assert [o["class"] for o in r.json()["outputs"]] == SPECIES, r.text

        assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
        assert s3_server.keys(bucket, f"epochal/jobs/{job['id']}/") == []
        assert client.delete(f"/v1/datasets/{dataset}").status_code == 204
        assert s3_server.keys(bucket) == []
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))
