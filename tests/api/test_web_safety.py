"""Hostile text and hostile web pages: NUL characters (which PostgreSQL cannot store) in a path,
a query, a spec or an upload are refused with a 4xx naming where; a browser's request that
needs no preflight changes nothing; /readyz names what is down, not where it lives.

The NUL cases run on SQLite and PostgreSQL (the `settings` fixture); the others on SQLite."""

from __future__ import annotations

import copy
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import migrations
from api.app import create_app
from core.settings import Settings
from core.store import keys as key_store
from core.store.db import session_factory
from core.store.keys import Role
from core.store.models import Dataset, Job, Sweep
from tests.conftest import make_settings
from tests.core.sweeps.helpers import sweep_spec
from tests.servers import free_port
from tests.specs import DIGITS

JSON = {"content-type": "application/json"}
PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def sqlite_settings(empty_sqlite_url: str, redis_url: str, tmp_path: Path) -> Settings:
    migrations.upgrade(empty_sqlite_url)
    return make_settings(empty_sqlite_url, redis_url, tmp_path)


def browser_client(settings: Settings, **overrides: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=overrides)))


def stored(settings: Settings) -> tuple[int, int, int]:
    with session_factory(settings.database_url)() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Job, Sweep, Dataset))


def problem_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    return r.json()


# --- NUL ---------------------------------------------------------------------------------------

NUL_PATHS = [
    "/v1/jobs/%00",
    "/v1/jobs/%00/metrics",
    "/v1/jobs/a%00b/model",
    "/v1/sweeps/%00",
    "/v1/sweeps/%00/leaderboard",
    "/v1/datasets/%00",
]
NUL_QUERIES = [
    ("/v1/jobs?tag=%00", "tag"),
    ("/v1/jobs?sweep_id=%00", "sweep_id"),
    ("/v1/jobs?param.name=%00", "param.name"),
    ("/v1/jobs?order_by=metric.%00", "order_by"),
    ("/v1/jobs?cursor=a%00", "cursor"),
    ("/v1/compare?ids=%00,b", "ids"),
    ("/v1/sweeps?cursor=%00", "cursor"),
]


def test_a_nul_in_a_path_is_404_and_in_a_query_422_naming_it(
    client: TestClient, settings: Settings
) -> None:
    job_id = client.post("/v1/jobs", json=DIGITS).json()["id"]
    for path in NUL_PATHS:
        assert "NUL" in problem_of(client.get(path), 404)["detail"], path
    assert problem_of(client.post("/v1/jobs/%00/cancel", headers=JSON), 404)
    assert problem_of(client.delete("/v1/datasets/%00"), 404)
    for url, name in [*NUL_QUERIES, (f"/v1/jobs/{job_id}/metrics?names=loss,%00", "names")]:
        [error] = problem_of(client.get(url), 422)["errors"]
        assert error["loc"] == ["query", name] and "NUL" in error["msg"], url
    [error] = problem_of(client.get("/v1/jobs?param.a%00=1"), 422)["errors"]
    assert error["loc"] == ["query", "param.a\x00"]
    # The same ids without a NUL still answer as before: the check does not get in the way.
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200
    assert client.get("/v1/jobs?tag=baseline").json()["items"][0]["id"] == job_id
    assert stored(settings) == (1, 0, 0)


def test_a_nul_in_any_stored_string_of_a_spec_is_422_at_its_field(
    client: TestClient, settings: Settings
) -> None:
    def job_with(path: tuple, value: object) -> dict:
        spec = copy.deepcopy(DIGITS)
        node = spec
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        return spec

    for path in [("name",), ("model", "layers", 0, "name")]:
        [error] = problem_of(client.post("/v1/jobs", json=job_with(path, "a\x00b")), 422)["errors"]
        assert error["loc"] == list(path) and "NUL" in error["msg"]
    [error] = problem_of(client.post("/v1/jobs", json=job_with(("tags",), ["a\x00"])), 422)[
        "errors"
    ]
    assert error["loc"] == ["tags", 0]

    for spec, loc in [
        (sweep_spec(name="s\x00"), ["name"]),
        (sweep_spec(metric={"name": "val\x00", "goal": "maximize"}), ["metric", "name"]),
    ]:
        [error] = problem_of(client.post("/v1/sweeps", json=spec), 422)["errors"]
        assert error["loc"] == loc and "NUL" in error["msg"]
    # A JSON value anywhere in a sweep (a choice, or a key inside one) is stored with the sweep.
    for choices in (["a", "b\x00"], [{"k\x00": 1}]):
        spec = sweep_spec(parameters={"name": {"values": choices}})
        body = problem_of(client.post("/v1/sweeps", json=spec), 422)
        assert any("NUL" in e["msg"] for e in body["errors"]), body
    # Clones take their name and overrides through the same spec.
    job_id = client.post("/v1/jobs", json=DIGITS).json()["id"]
    r = client.post(f"/v1/jobs/{job_id}/clone", json={"overrides": {"name": "c\x00"}})
    assert problem_of(r, 422)["errors"][0]["loc"] == ["name"]
    assert stored(settings) == (1, 0, 0)

    # Other control characters are text PostgreSQL stores: kept as sent.
    r = client.post("/v1/jobs", json=job_with(("name",), "tab\tbell\x07\x1f"))
    assert r.status_code == 201, r.text
    assert client.get(f"/v1/jobs/{r.json()['id']}").json()["name"] == "tab\tbell\x07\x1f"


def parquet(columns: dict) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def test_a_nul_in_an_upload_name_target_column_or_label_is_422(
    client: TestClient, settings: Settings
) -> None:
    n = 30
    ok = {"x": list(range(n)), "soil": ["clay", "sand"] * (n // 2), "y": [i % 2 for i in range(n)]}
    octet = {"content-type": "application/octet-stream"}

    def upload(columns: dict, **params: str):
        return client.post("/v1/datasets", params=params, content=parquet(columns), headers=octet)

    for params in ({"name": "a\x00", "target": "y"}, {"target": "y\x00"}):
        [error] = problem_of(upload(ok, **params), 422)["errors"]
        [name] = [k for k, v in params.items() if "\x00" in v]
        assert error["loc"] == ["query", name]
    bad_label = {**ok, "soil": ["clay\x00", "sand"] * (n // 2)}
    bad_column = {"x\x00": ok["x"], "y": ok["y"]}
    for columns in (bad_label, bad_column):
        [error] = problem_of(upload(columns, target="y"), 422)["errors"]
        assert error["loc"] == ["file"] and "NUL" in error["msg"]
    assert stored(settings) == (0, 0, 0)
    assert upload(ok, target="y", name="tab\there").status_code == 201


# --- browsers ------------------------------------------------------------------------------


def test_a_request_a_web_page_can_send_without_preflight_changes_nothing(
    sqlite_settings: Settings,
) -> None:
    with browser_client(sqlite_settings) as client:
        job_id = client.post("/v1/jobs", json=DIGITS).json()["id"]
        cancel = f"/v1/jobs/{job_id}/cancel"
        for headers in ({}, {"content-type": "text/plain"}, {"content-type": "text/plain; a=b"}):
            body = problem_of(client.post(cancel, headers=headers), 415)
            [error] = body["errors"]
            assert error["loc"] == ["header", "content-type"]
            assert "application/json" in error["msg"]
        form = client.post(cancel, data={"a": "b"})  # application/x-www-form-urlencoded
        assert problem_of(form, 415)
        multipart = client.post(cancel, files={"f": ("f.txt", b"x")})
        assert problem_of(multipart, 415)
        csv = "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20))
        for content_type in ("text/plain", None):
            headers = {"content-type": content_type} if content_type else {}
            r = client.post("/v1/datasets?target=y", content=csv, headers=headers)
            [error] = problem_of(r, 415)["errors"]
            assert "text/csv" in error["msg"] and "application/octet-stream" in error["msg"]
        body = problem_of(client.post("/v1/jobs", content=b"{}", headers={}), 415)
        assert "application/yaml" in body["errors"][0]["msg"]
        assert client.get(f"/v1/jobs/{job_id}").json()["cancel_requested"] is False
        assert stored(sqlite_settings) == (1, 0, 0)

        # What a script sends: a JSON (or the upload's) type, or an Authorization header.
        assert client.post(cancel, headers=JSON).status_code == 202
        with session_factory(sqlite_settings.database_url)() as session:
            _, key = key_store.create_key(session, project="default", role=Role.WRITE)
            session.commit()
        r = client.post(cancel, headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 409  # reached the route: the job is already cancelled
        r = client.post("/v1/datasets?target=y", content=csv, headers={"content-type": "text/csv"})
        assert r.status_code == 201, r.text
        assert client.delete(f"/v1/datasets/{r.json()['id']}").status_code == 204
        # Reads need nothing.
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200


def test_a_foreign_origin_changes_nothing_and_cors_is_off_by_default(
    sqlite_settings: Settings,
) -> None:
    with browser_client(sqlite_settings) as client:
        job_id = client.post("/v1/jobs", json=DIGITS).json()["id"]
        cancel = f"/v1/jobs/{job_id}/cancel"
        evil = {**JSON, "origin": "https://evil.example"}
        [error] = problem_of(client.post(cancel, headers=evil), 403)["errors"]
        assert error["loc"] == ["header", "origin"]
        assert problem_of(client.post(cancel, headers={**JSON, "origin": "null"}), 403)
        r = client.get(f"/v1/jobs/{job_id}", headers={"origin": "https://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        preflight = client.options(
            cancel,
            headers={
                "origin": "https://evil.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers
        assert client.get(f"/v1/jobs/{job_id}").json()["cancel_requested"] is False
        # A page on another host name with the API's Host (DNS rebinding) may not ...
        rebound = {**JSON, "origin": "http://rebind.example:8000", "host": "rebind.example:8000"}
        assert problem_of(client.post(cancel, headers=rebound), 403)
        # ... nor with a key it made up (past the origin check, the key is checked) ...
        made_up = {**rebound, "authorization": "Bearer epk_made_up"}
        assert problem_of(client.post(cancel, headers=made_up), 401)
        # ... the API's own pages (/docs) on a loopback address may.
        own = {**JSON, "origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"}
        assert client.post(cancel, headers=own).status_code == 202
        # So may the dashboard served on another host name, with its key (tests/ui/test_keys.py).
        with session_factory(sqlite_settings.database_url)() as session:
            _, key = key_store.create_key(session, project="default", role=Role.WRITE)
            session.commit()
        other = client.post("/v1/jobs", json=DIGITS).json()["id"]
        remote = {**JSON, "origin": "http://gpu-box:8000", "host": "gpu-box:8000"}
        assert problem_of(client.post(f"/v1/jobs/{other}/cancel", headers=remote), 403)
        remote["authorization"] = f"Bearer {key}"
        assert client.post(f"/v1/jobs/{other}/cancel", headers=remote).status_code == 202


def test_cors_allows_the_configured_origins_only(sqlite_settings: Settings) -> None:
    app_origin = "https://app.example.com"
    with browser_client(sqlite_settings, cors_origins=(app_origin,)) as client:
        ask = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        }
        ok = client.options("/v1/jobs", headers={"origin": app_origin, **ask})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == app_origin
        refused = client.options("/v1/jobs", headers={"origin": "https://evil.example", **ask})
        assert "access-control-allow-origin" not in refused.headers
        r = client.post("/v1/jobs", json=DIGITS, headers={"origin": app_origin})
        assert r.status_code == 201 and r.headers["access-control-allow-origin"] == app_origin
        r = client.post("/v1/jobs", json=DIGITS, headers={"origin": "https://evil.example"})
        assert r.status_code == 403
        # Allowed origin or not, a request that needs no preflight is still refused.
        r = client.post("/v1/jobs", content=b"{}", headers={"origin": app_origin})
        assert r.status_code == 415 and r.headers["access-control-allow-origin"] == app_origin


def test_cors_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPOCHAL_CORS_ORIGINS", "https://a.example, https://b.example/")
    assert Settings().cors_origins == ("https://a.example", "https://b.example")
    monkeypatch.setenv("EPOCHAL_CORS_ORIGINS", "")
    assert Settings().cors_origins == ()


# --- readiness -----------------------------------------------------------------------------


def test_readyz_names_what_is_down_not_where_it_lives(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_port, broker_port = free_port(), free_port()
    settings = make_settings(
        f"postgresql://hiddenuser@127.0.0.1:{db_port}/hiddendb",
        f"redis://127.0.0.1:{broker_port}/0",
        tmp_path,
    )
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        body = problem_of(client.get("/readyz"), 503)
    assert body["detail"] == "store: unreachable; broker: unreachable"
    for secret in ("127.0.0.1", str(db_port), str(broker_port), "hiddenuser", "hiddendb"):
        assert secret not in str(body), secret
    logged = caplog.text  # where it lives is told to the operator, in the log
    assert str(db_port) in logged and str(broker_port) in logged


def test_a_submission_the_broker_cannot_take_does_not_say_where_it_lives(
    sqlite_settings: Settings,
) -> None:
    port = free_port()
    settings = sqlite_settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{port}/0"})
    with TestClient(create_app(settings)) as client:
        body = problem_of(client.post("/v1/jobs", json=DIGITS), 503)
    assert body["detail"] == "the queue is unreachable; nothing was stored"
    assert str(port) not in str(body)
