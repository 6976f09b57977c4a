"""API keys, roles and projects, against a real store (SQLite and PostgreSQL) and Redis.

The route matrix is built from the app's own route table (its OpenAPI document), so a route
added later is covered without editing this test: without a key every /v1 route answers 401;
another project's key gets 404 on every object and none of its rows in any list; a read key
gets 403 on every route that changes something.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.settings import Settings
from core.store import keys as key_store
from core.store.db import session_factory
from core.store.keys import Role
from core.store.models import ApiKey, Job
from tests.api.test_dataset_uploads import table_csv
from tests.conftest import make_settings
from tests.core.sweeps.helpers import sweep_spec
from tests.specs import DIGITS

# Bodies that pass validation, so that what is checked is the caller, not the body.
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/v1/jobs/{job_id}/predict"): {"inputs": [[0.0] * 64]},
    ("post", "/v1/jobs/{job_id}/evaluate"): {"dataset": "digits"},
    ("post", "/v1/jobs/{job_id}/clone"): {},
}


def make_key(settings: Settings, project: str, role: Role) -> str:
    with session_factory(settings.database_url)() as session:
        _, key = key_store.create_key(session, project=project, role=role)
        session.commit()
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(database_url: str, redis_url: str, tmp_path) -> Settings:
    return make_settings(database_url, redis_url, tmp_path, auth="required", auth_cache_seconds=0.3)


@pytest.fixture
def client(keyed: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(keyed)) as c:
        yield c


@pytest.fixture
def project_a(client: TestClient, keyed: Settings) -> dict[str, str]:
    """Project a's objects: a job, a sweep, an upload; and its write key."""
    key = make_key(keyed, "a", Role.WRITE)
    h = bearer(key)
    job = client.post("/v1/jobs", json=DIGITS, headers=h)
    job2 = client.post("/v1/jobs", json=DIGITS, headers=h)
    sweep = client.post("/v1/sweeps", json=sweep_spec(), headers=h)
    upload = client.post(
        "/v1/datasets", params={"target": "species"}, content=table_csv(), headers=h
    )
    assert (job.status_code, sweep.status_code, upload.status_code) == (201, 201, 201)
    return {
        "key": key,
        "job_id": job.json()["id"],
        "job_id2": job2.json()["id"],
        "sweep_id": sweep.json()["id"],
        "name": upload.json()["id"],
        "key_id": key.split("_")[1],
    }


def routes(client: TestClient) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]
    found = [(m, p) for p, ops in paths.items() if p.startswith("/v1/") for m in ops]
    assert len(found) >= 20, found  # the whole API, not an empty table
    return found


def call(client: TestClient, method: str, path: str, ids: dict[str, str], headers: dict) -> Any:
    url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
    params = {"ids": f"{ids['job_id']},{ids['job_id2']}"} if path == "/v1/compare" else None
    body = BODIES.get((method, path))
    if path == "/v1/datasets" and method == "post":
        csv = {**headers, "content-type": "text/csv"}
        return client.post(url, params={"target": "species"}, content=table_csv(), headers=csv)
    if method in ("post", "put", "patch"):
        return client.request(
            method, url, json=body if body is not None else {}, headers=headers, params=params
        )
    return client.request(method, url, headers=headers, params=params)


def test_every_route_refuses_a_request_without_a_valid_key(client: TestClient) -> None:
    ids = {"job_id": "j", "job_id2": "k", "sweep_id": "s", "name": "n", "key_id": "x"}
    for method, path in routes(client):
        for headers in ({}, bearer("epk_000000000000_" + "x" * 43), {"Authorization": "Basic x"}):
            r = call(client, method, path, ids, headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"].startswith("Bearer")


def test_another_projects_key_sees_nothing_of_it(
    client: TestClient, keyed: Settings, project_a: dict[str, str]
) -> None:
    b = bearer(make_key(keyed, "b", Role.WRITE))
    ids = project_a
    secret_ids = [project_a[k] for k in ("job_id", "sweep_id", "name")]
    for method, path in routes(client):
        if path.startswith("/v1/keys"):
            continue  # admin only: 403, checked below
        if "{" in path or path == "/v1/compare":
            r = call(client, method, path, ids, b)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["type"] == "urn:epochal:problem:not_found"
        elif method == "get":
            r = call(client, method, path, ids, b)
            assert r.status_code == 200, (method, path, r.text)
            assert not any(i in r.text for i in secret_ids), (path, r.text)
    # The job, sweep and upload are all still there, for their own project.
    a = bearer(project_a["key"])
    assert client.get(f"/v1/jobs/{project_a['job_id']}", headers=a).status_code == 200
    assert client.get(f"/v1/sweeps/{project_a['sweep_id']}", headers=a).status_code == 200
    assert client.get(f"/v1/datasets/{project_a['name']}", headers=a).status_code == 200
    # A spec of b cannot name a's upload: it does not exist for b.
    spec = {**DIGITS, "dataset": {"name": project_a["name"], "target": "species"}}
    assert client.post("/v1/jobs", json=spec, headers=b).status_code == 422


def test_a_read_key_may_only_read(
    client: TestClient, keyed: Settings, project_a: dict[str, str]
) -> None:
    r_key = bearer(make_key(keyed, "a", Role.READ))
    ids = project_a
    writes = [(m, p) for m, p in routes(client) if m != "get"]
    assert len(writes) >= 12
    for method, path in writes:
        r = call(client, method, path, ids, r_key)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["type"] == "urn:epochal:problem:forbidden"
    for method, path in routes(client):
        if method == "get" and not path.startswith("/v1/keys") and "events" not in path:
            assert call(client, method, path, ids, r_key).status_code in (200, 409), path
    # A write key cannot manage keys either.
    w = bearer(project_a["key"])
    assert client.get("/v1/keys", headers=w).status_code == 403
    assert client.get("/v1/jobs", params={"project": "b"}, headers=w).status_code == 403


def test_an_admin_key_acts_on_any_project(
    client: TestClient, keyed: Settings, project_a: dict[str, str]
) -> None:
    admin = bearer(make_key(keyed, "ops", Role.ADMIN))
    assert client.get("/v1/jobs", headers=admin).json()["items"] == []  # its own project
    page = client.get("/v1/jobs", params={"project": "a"}, headers=admin).json()["items"]
    assert {project_a["job_id"], project_a["job_id2"]} <= {j["id"] for j in page}  # + trials
    everyone = client.get("/v1/jobs", params={"project": "*"}, headers=admin).json()["items"]
    assert project_a["job_id"] in {j["id"] for j in everyone}
    job = client.post("/v1/jobs", params={"project": "c"}, json=DIGITS, headers=admin)
    assert job.status_code == 201
    with session_factory(keyed.database_url)() as s:
        row = s.get(Job, job.json()["id"])
        assert (row.project, row.created_by) == ("c", admin["Authorization"].split("_")[1])
    assert (
        client.post("/v1/jobs", params={"project": "*"}, json=DIGITS, headers=admin).status_code
        == 422
    )


def test_keys_over_http_are_stored_hashed_and_a_revoked_key_stops_within_seconds(
    client: TestClient, keyed: Settings
) -> None:
    admin = bearer(make_key(keyed, "ops", Role.ADMIN))
    made = client.post(
        "/v1/keys", json={"project": "team", "role": "write", "name": "ci"}, headers=admin
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("epk_") and len(key) > 50
    listed = client.get("/v1/keys", params={"project": "team"}, headers=admin).json()
    assert [k["id"] for k in listed] == [made.json()["id"]] and "key" not in listed[0]
    with session_factory(keyed.database_url)() as s:
        stored = [tuple(str(v) for v in row) for row in s.execute(select(ApiKey.__table__))]
    assert stored and not any(key in v or key.split("_")[2] in v for row in stored for v in row)
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 200
    assert client.delete(f"/v1/keys/{made.json()['id']}", headers=admin).status_code == 200
    deadline = time.monotonic() + 5
    while client.get("/v1/jobs", headers=bearer(key)).status_code != 401:
        assert time.monotonic() < deadline, "a revoked key still works after 5 s"
        time.sleep(0.1)


def test_without_settings_keys_are_needed_beyond_loopback(
    database_url: str, redis_url: str, tmp_path
) -> None:
    """The in-process client's requests come from no loopback address: keys are needed."""
    settings = make_settings(database_url, redis_url, tmp_path, auth=None)
    assert not settings.auth_required  # the API's host is 127.0.0.1 ...
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/jobs").status_code == 401  # ... but this request is not from there
    exposed = make_settings(database_url, redis_url, tmp_path, auth=None, api_host="0.0.0.0")
    assert exposed.auth_required


def test_roles_follow_the_route_under_a_root_path(keyed: Settings) -> None:
    """Behind a prefix (`uvicorn --root-path /api`), the keys routes stay admin-only."""
    write = bearer(make_key(keyed, "a", Role.WRITE))
    with TestClient(create_app(keyed), root_path="/api") as c:
        assert c.get("/api/v1/jobs", headers=write).status_code == 200
        made = c.post("/api/v1/keys", json={"project": "z", "role": "admin"}, headers=write)
        assert made.status_code == 403, made.text
        assert c.get("/api/v1/keys", headers=write).status_code == 403


def test_an_open_event_stream_ends_when_its_key_is_revoked(
    client: TestClient, keyed: Settings
) -> None:
    key = make_key(keyed, "a", Role.READ)
    writer = bearer(make_key(keyed, "a", Role.WRITE))
    job_id = client.post("/v1/jobs", json=DIGITS, headers=writer).json()["id"]
    url = f"/v1/jobs/{job_id}/events"
    started = None
    with client.stream("GET", url, params={"interval": 0.1}, headers=bearer(key)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if started is None and line.startswith("event: progress"):
                with session_factory(keyed.database_url)() as s:
                    key_store.revoke_key(s, key_id=key.split("_")[1])
                    s.commit()
                started = time.monotonic()
            assert started is None or time.monotonic() - started < 5, "the stream goes on"
    assert started is not None and time.monotonic() - started < 5
