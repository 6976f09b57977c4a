"""Back-pressure: a request that cannot get a database connection, a broker producer or a write
slot in time answers 503 with Retry-After and stores nothing; a created job's response needs no
connection after its commit. Real PostgreSQL/SQLite and Redis; the limits are set tiny."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.admission import WriteGate
from api.app import create_app
from api.queue import Enqueuer, create_and_send
from api.schemas import JobOut
from core.settings import Settings
from core.store.db import PoolLimits, get_engine, session_factory
from tests.api.test_jobs_api import job_rows, queued_messages
from tests.conftest import make_settings
from tests.specs import DIGITS


def tight(database_url: str, redis_url: str, tmp_path: Path, **limits: object) -> Settings:
    return make_settings(
        database_url,
        redis_url,
        tmp_path,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=0.3,
        broker_pool_limit=1,
        broker_pool_timeout_seconds=0.3,
        **limits,
    )


def assert_busy(response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:epochal:problem:{code}"
    assert "nothing was stored" in response.json()["detail"]


def test_no_database_connection_in_time_is_a_503_and_nothing_is_stored(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = tight(database_url, redis_url, tmp_path)
    with TestClient(create_app(settings)) as client:
        engine = get_engine(settings.database_url, PoolLimits(1, 0, 0.3))  # the API's engine
        with engine.connect():  # holds its only connection
            assert_busy(client.post("/v1/jobs", json=DIGITS), "store_busy")
        assert job_rows(settings) == 0
        assert queued_messages(settings) == 0
        assert client.post("/v1/jobs", json=DIGITS).status_code == 201  # and it recovers
        assert job_rows(settings) > 0
        assert queued_messages(settings) == 1


def test_no_broker_producer_in_time_is_a_503_and_nothing_is_stored(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = tight(database_url, redis_url, tmp_path)
    with TestClient(create_app(settings)) as client:
        with client.app.state.enqueuer.producer():  # holds its only producer
            assert_busy(client.post("/v1/jobs", json=DIGITS), "broker_unavailable")
        assert job_rows(settings) == 0
        assert queued_messages(settings) == 0
        assert client.post("/v1/jobs", json=DIGITS).status_code == 201
        assert queued_messages(settings) == 1


@pytest.mark.parametrize("store_kind", ["postgresql"], indirect=True)
def test_writes_beyond_the_limit_are_refused_at_once_and_reads_still_answer(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        redis_url,
        tmp_path,
        max_inflight_writes=1,
        admission_wait_seconds=0.2,
        broker_pool_limit=1,
        broker_pool_timeout_seconds=30,
    )
    with TestClient(create_app(settings)) as client:
        gate = write_gate(client)
        first: list = []
        submit = threading.Thread(target=lambda: first.append(client.post("/v1/jobs", json=DIGITS)))
        with client.app.state.enqueuer.producer():
            submit.start()  # it waits for the held producer, inside the gate
            deadline = time.monotonic() + 30
            while gate.in_flight == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert gate.in_flight == 1
            assert_busy(client.post("/v1/jobs", json=DIGITS), "overloaded")
            assert client.get("/v1/jobs").status_code == 200  # reads are not gated
        submit.join(timeout=60)
        assert first[0].status_code == 201, first[0].text
        assert gate.in_flight == 0
        assert queued_messages(settings) == 1


def write_gate(client: TestClient) -> WriteGate:
    layer = client.app.middleware_stack
    while not isinstance(layer, WriteGate):
        layer = layer.app
    return layer


def test_a_created_job_is_answered_without_the_store(settings: Settings) -> None:
    """The response is built from the job in memory: after the commit the session may be gone
    (here: closed, so any lazy load would raise DetachedInstanceError)."""
    enqueuer = Enqueuer(settings)
    try:
        with session_factory(settings.database_url)() as session:
            job = create_and_send(
                session,
                enqueuer,
                spec=DIGITS,
                name="n",
                tags=["a", "b"],
                queue="cpu",
                summary={},
                epochs=1,
            )
        out = JobOut.of(job)
    finally:
        enqueuer.close()
    assert (out.tags, out.sweep_id, out.sweep_params, out.status) == (
        ["a", "b"],
        None,
        None,
        "queued",
    )


def test_slow_uploads_hold_none_of_the_slots_of_submissions() -> None:
    """The gate alone, around an app whose uploads take as long as the test says: a full upload
    lane refuses the next upload, and submissions still get their own slot."""

    release = asyncio.Event()

    async def app(scope, receive, send) -> None:
        if scope["path"] == "/v1/datasets":
            await release.wait()  # a body trickling in
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gate = WriteGate(app, limit=1, upload_limit=1, wait=0.1)

    async def call(path: str) -> int:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}
        await gate(scope, receive, send)
        return sent[0]["status"]

    async def scenario() -> tuple[int, int, int]:
        slow = asyncio.create_task(call("/v1/datasets"))
        await asyncio.sleep(0.05)
        assert gate.uploads.in_flight == 1
        second_upload = await call("/v1/datasets")
        submission = await call("/v1/jobs")
        release.set()
        return await slow, second_upload, submission

    assert asyncio.run(scenario()) == (201, 503, 201)
