"""DELETE of ended jobs and sweeps: no row and no file of them is left, on SQLite and
PostgreSQL (every table and every stored file is listed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.settings import Settings
from core.store import deletion
from core.store.db import session_factory
from core.store.metrics import write_points
from core.store.models import Base
from tests.api.test_dataset_uploads import stored_files
from tests.api.test_models import digits, train
from tests.core.sweeps.helpers import sweep_spec
from tests.specs import DIGITS


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=JSON) as c:
        yield c


# POSTs without a body still say what they are (a browser could send them otherwise).
JSON = {"content-type": "application/json"}


def rows_naming(settings: Settings, ident: str) -> list[str]:
    """Every row of every table in which some column holds `ident`."""
    found = []
    with session_factory(settings.database_url)() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                if any(ident in str(v) for v in row):
                    found.append(f"{table.name}: {tuple(row)[:3]}")
    return found


def test_an_ended_job_is_deleted_with_its_points_checkpoints_exports_and_model(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = train(settings, digits(epochs=2))
    monkeypatch.setattr(deletion, "BATCH", 1000)  # so that the points go in many batches
    with session_factory(settings.database_url)() as s:
        points = [("batch_loss", 1000 + i, 3, 0.5) for i in range(5_500)]
        write_points(s, job_id=job_id, points=points)
        s.commit()
    assert (
        client.get(f"/v1/jobs/{job_id}/model", params={"format": "torchscript"}).status_code == 200
    )
    files = [f for f in stored_files(settings) if job_id in f]
    assert any("checkpoints" in f for f in files) and any(f.endswith(".pt") for f in files), files
    assert len(rows_naming(settings, job_id)) > 5_500

    clone = client.post(f"/v1/jobs/{job_id}/clone", json={}, headers={"Idempotency-Key": "c1"})
    assert client.post(f"/v1/jobs/{clone.json()['id']}/cancel").status_code == 202
    assert client.delete(f"/v1/jobs/{clone.json()['id']}").status_code == 204
    assert rows_naming(settings, clone.json()["id"]) == []  # its stored answer went too
    queued = client.post("/v1/jobs", json=DIGITS).json()["id"]
    r = client.delete(f"/v1/jobs/{queued}")
    assert r.status_code == 409 and "cancel it first" in r.json()["detail"]

    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert rows_naming(settings, job_id) == []
    assert [f for f in stored_files(settings) if job_id in f] == []
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 404
    assert client.get(f"/v1/jobs/{queued}").status_code == 200  # the other job is untouched


def test_an_ended_sweep_is_deleted_with_its_trials(client: TestClient, settings: Settings) -> None:
    sweep = client.post("/v1/sweeps", json=sweep_spec()).json()
    trials = [
        j["id"] for j in client.get("/v1/jobs", params={"sweep_id": sweep["id"]}).json()["items"]
    ]
    assert len(trials) == 2
    assert client.delete(f"/v1/jobs/{trials[0]}").status_code == 409  # a trial goes with its sweep
    r = client.delete(f"/v1/sweeps/{sweep['id']}")
    assert r.status_code == 409 and "cancel it first" in r.json()["detail"]
    assert client.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 200
    assert client.delete(f"/v1/sweeps/{sweep['id']}").status_code == 204
    for ident in [sweep["id"], *trials]:
        assert rows_naming(settings, ident) == [], ident
    assert client.get(f"/v1/sweeps/{sweep['id']}").status_code == 404


def test_a_job_being_deleted_is_gone_for_everyone_and_a_second_delete_finishes(
    client: TestClient, settings: Settings
) -> None:
    job_id = client.post("/v1/jobs", json=DIGITS).json()["id"]
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    with session_factory(settings.database_url)() as s:
        deletion._mark(s, [job_id])  # a deletion that stopped after its first step
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.post(f"/v1/jobs/{job_id}/resume").status_code == 404
    assert client.post(f"/v1/jobs/{job_id}/clone", json={}).status_code == 404
    assert job_id not in client.get("/v1/jobs").text
    assert rows_naming(settings, job_id) != []
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert rows_naming(settings, job_id) == []
