"""The API over an S3 store that goes down: an upload answers 503 with Retry-After and stores
nothing; once the store is back, the same upload is stored (moto's server behind a relay that
is cut and restored)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from core.store.db import session_factory
from core.store.models import Dataset
from tests.api.test_dataset_uploads import table_csv
from tests.conftest import make_settings
from tests.s3 import Relay, S3Server


def test_an_upload_while_the_store_is_down_is_503_and_stores_nothing(
    database_url: str, redis_url: str, tmp_path: Path, s3_server: S3Server, s3_env: None
) -> None:
    bucket = s3_server.new_bucket()
    relay = Relay(int(s3_server.endpoint.rsplit(":", 1)[1]))
    settings = make_settings(
        database_url,
        redis_url,
        tmp_path,
        artifacts_url=f"s3://{bucket}",
        s3_endpoint_url=relay.endpoint,
        artifacts_timeout_seconds=5,
    )
    body = table_csv(rows=30).encode()
    upload = {"params": {"target": "species"}, "headers": {"content-type": "text/csv"}}
    with TestClient(create_app(settings)) as client:
        relay.cut()
        r = client.post("/v1/datasets", content=body, **upload)
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "urn:epochal:problem:artifacts_unavailable"
        assert r.headers["retry-after"] and "unavailable" in r.json()["detail"]
        with session_factory(database_url)() as session:
            assert session.scalar(select(func.count()).select_from(Dataset)) == 0
        relay.restore()
        r = client.post("/v1/datasets", content=body, **upload)
        assert r.status_code == 201, r.text
        assert s3_server.keys(bucket) == [f"datasets/{r.json()['id']}.npz"]
        relay.cut()
