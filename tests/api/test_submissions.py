"""Idempotent submission and per-project quotas, against a real store (SQLite and PostgreSQL)
and a real Redis broker. No worker runs: queued jobs stay queued and the broker's queue is read."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api.app import create_app
from core.settings import Settings
from core.store import idempotency
from core.store.base import utcnow
from core.store.db import session_factory
from core.store.models import Dataset, IdempotencyRecord, Job, Sweep
from tests.api.test_dataset_uploads import stored_files, table_csv
from tests.api.test_jobs_api import queued_messages
from tests.api.test_models import digits, train
from tests.conftest import make_settings
from tests.core.sweeps.helpers import sweep_spec
from tests.servers import free_port
from tests.specs import DIGITS

# POSTs without a body still say what they are (a browser could send them otherwise).
JSON = {"content-type": "application/json"}


def count(settings: Settings, model: type) -> int:
    with session_factory(settings.database_url)() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=JSON) as c:
        yield c


def key(k: str) -> dict[str, str]:
    return {"Idempotency-Key": k}


def test_a_repeated_submission_answers_the_first_response_and_queues_nothing(
    client: TestClient, settings: Settings
) -> None:
    first = client.post("/v1/jobs", json=DIGITS, headers=key("abc-1"))
    again = client.post("/v1/jobs", json=DIGITS, headers=key("abc-1"))
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert count(settings, Job) == 1 and queued_messages(settings) == 1
    other = client.post("/v1/jobs", json=DIGITS, headers=key("abc-2"))  # a new key: a new job
    assert other.json()["id"] != first.json()["id"] and count(settings, Job) == 2


def test_the_same_key_with_another_body_is_refused_naming_the_header(
    client: TestClient, settings: Settings
) -> None:
    assert client.post("/v1/jobs", json=DIGITS, headers=key("k")).status_code == 201
    changed = copy.deepcopy(DIGITS)
    changed["training"]["epochs"] = 3
    r = client.post("/v1/jobs", json=changed, headers=key("k"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert count(settings, Job) == 1 and queued_messages(settings) == 1
    bad = client.post("/v1/jobs", json=DIGITS, headers=key("has space"))
    assert bad.status_code == 422 and "idempotency-key" in bad.text.lower()


def test_a_key_is_remembered_for_24_hours(client: TestClient, settings: Settings) -> None:
    first = client.post("/v1/jobs", json=DIGITS, headers=key("day")).json()
    with session_factory(settings.database_url)() as s:
        # Many other expired keys: the reused one is dropped whichever others are.
        old = {"status_code": 201, "response": {}, "fingerprint": "x", "project": "default"}
        s.add_all(IdempotencyRecord(key=f"old-{i}", **old) for i in range(150))
        s.flush()
        s.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25)))
        s.commit()
    later = client.post("/v1/jobs", json=DIGITS, headers=key("day"))
    assert later.status_code == 201 and later.json()["id"] != first["id"]
    with session_factory(settings.database_url)() as s:
        fresh = s.scalars(
            select(IdempotencyRecord.key).where(
                IdempotencyRecord.created_at > utcnow() - timedelta(hours=1)
            )
        )
        assert list(fresh) == ["day"]  # the expired record was replaced


def test_clones_sweeps_and_uploads_are_idempotent(client: TestClient, settings: Settings) -> None:
    job = client.post("/v1/jobs", json=DIGITS).json()
    clones = [client.post(f"/v1/jobs/{job['id']}/clone", json={}, headers=key("c")) for _ in "ab"]
    assert clones[0].json()["id"] == clones[1].json()["id"] and count(settings, Job) == 2
    # A repeat is answered from what was stored, even once its source is gone.
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    late = client.post(f"/v1/jobs/{job['id']}/clone", json={}, headers=key("c"))
    assert late.status_code == 201 and late.json() == clones[0].json()
    sweeps = [client.post("/v1/sweeps", json=sweep_spec(), headers=key("s")) for _ in "ab"]
    assert sweeps[0].status_code == sweeps[1].status_code == 201
    assert sweeps[0].json()["id"] == sweeps[1].json()["id"]
    assert sweeps[1].json()["trials"] == 2  # the answer once the sweep started, not before
    assert count(settings, Sweep) == 1 and count(settings, Job) == 3
    ups = [
        client.post(
            "/v1/datasets", params={"target": "species"}, content=table_csv(), headers=key("u")
        )
        for _ in "ab"
    ]
    assert [u.status_code for u in ups] == [201, 201] and ups[0].json() == ups[1].json()
    other = client.post(
        "/v1/datasets", params={"target": "species"}, content=table_csv(seed=1), headers=key("u")
    )
    assert other.status_code == 422 and count(settings, Dataset) == 1


def test_a_submission_the_broker_refuses_forgets_its_key(database_url: str, tmp_path: Path) -> None:

    down = make_settings(database_url, f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    with TestClient(create_app(down), headers=JSON) as c:
        assert c.post("/v1/jobs", json=DIGITS, headers=key("retry-me")).status_code == 503
    assert count(down, Job) == 0 and count(down, IdempotencyRecord) == 0


# --- quotas -----------------------------------------------------------------------------------


@pytest.fixture
def tight(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        redis_url,
        tmp_path,
        project_max_active_jobs=2,
        project_max_running_sweeps=1,
        project_max_upload_bytes=len(table_csv()) + 10,
    )


def test_past_a_quota_the_answer_is_429_and_nothing_is_stored(tight: Settings) -> None:
    with TestClient(create_app(tight), headers=JSON) as c:
        jobs = [c.post("/v1/jobs", json=DIGITS) for _ in range(2)]
        assert [j.status_code for j in jobs] == [201, 201]
        refused = c.post("/v1/jobs", json=DIGITS, headers=key("q"))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        assert refused.json()["type"] == "urn:epochal:problem:quota_exceeded"
        assert "EPOCHAL_PROJECT_MAX_ACTIVE_JOBS" in refused.json()["detail"]
        assert c.post(f"/v1/jobs/{jobs[0].json()['id']}/clone", json={}).status_code == 429
        assert (count(tight, Job), queued_messages(tight), count(tight, IdempotencyRecord)) == (
            2,
            2,
            0,
        )
        # Another project has its own count; an ended job frees a place (and resume takes it).
        assert c.post("/v1/jobs", params={"project": "other"}, json=DIGITS).status_code == 201
        assert c.post(f"/v1/jobs/{jobs[0].json()['id']}/cancel").status_code == 202
        assert c.post("/v1/jobs", json=DIGITS).status_code == 201
        assert c.post(f"/v1/jobs/{jobs[0].json()['id']}/resume").status_code == 429
        assert c.get(f"/v1/jobs/{jobs[0].json()['id']}").json()["status"] == "cancelled"

        spec = sweep_spec()
        spec["max_parallel"] = 1
        assert c.post("/v1/sweeps", json=spec, params={"project": "s"}).status_code == 201
        r = c.post("/v1/sweeps", json=spec, params={"project": "s"})
        assert r.status_code == 429 and count(tight, Sweep) == 1

        params = {"target": "species", "project": "u"}
        assert c.post("/v1/datasets", params=params, content=table_csv()).status_code == 201
        files = stored_files(tight)
        r = c.post("/v1/datasets", params=params, content=table_csv(seed=2))
        assert r.status_code == 429, r.text
        assert "EPOCHAL_PROJECT_MAX_UPLOAD_BYTES" in r.json()["detail"]
        assert count(tight, Dataset) == 1 and stored_files(tight) == files
        # The same file again is no new data: it is found, not counted.
        assert c.post("/v1/datasets", params=params, content=table_csv()).status_code == 200


def test_a_refused_clone_leaves_no_copy_of_the_weights(tight: Settings) -> None:

    source = train(tight, digits(epochs=1))
    with TestClient(create_app(tight), headers=JSON) as c:
        for _ in range(2):
            assert c.post("/v1/jobs", json=DIGITS).status_code == 201
        files = stored_files(tight)
        r = c.post(f"/v1/jobs/{source}/clone", json={"init_from": "final"})
        assert r.status_code == 429, r.text
        assert stored_files(tight) == files


def test_a_key_in_use_by_an_upload_still_running_is_a_409_and_stores_nothing(
    client: TestClient, settings: Settings
) -> None:

    params = {"target": "species"}
    csv = {"content-type": "text/csv", **key("busy")}
    first = client.post("/v1/datasets", params=params, content=table_csv(), headers=csv)
    assert first.status_code == 201
    with session_factory(settings.database_url)() as s:  # as if that upload were still running
        s.execute(
            update(IdempotencyRecord).values(status_code=idempotency.IN_PROGRESS, response={})
        )
        s.commit()
    other = client.post("/v1/datasets", params=params, content=table_csv(seed=3), headers=csv)
    assert other.status_code == 409 and "in progress" in other.json()["detail"]
    # its own type, which a client polls on (not a conflict to report)
    assert other.json()["type"] == "urn:epochal:problem:request_in_progress"
    assert count(settings, Dataset) == 1
