"""GET /v1/jobs/{id}/events against a real store (SQLite and PostgreSQL): a worker's writes,
made from another thread while the client streams, arrive as progress, metrics and end events."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes import events
from api.routes.events import Cursor
from core.errors import InvalidArgumentError
from core.settings import Settings
from core.store import jobs as job_store
from core.store.db import session_factory
from core.store.metrics import Series, write_points
from core.store.models import JobStatus


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def new_job(settings: Settings) -> str:
    with session_factory(settings.database_url).begin() as s:
        job = job_store.create_job(
            s, spec={}, name="watched", tags=[], queue="cpu", summary={}, epochs=2
        )
        return job.id


def write(settings: Settings, job_id: str, points: list[tuple[str, int, int, float]]) -> None:
    with session_factory(settings.database_url).begin() as s:
        write_points(s, job_id=job_id, points=points)


def claim(settings: Settings, job_id: str) -> None:
    with session_factory(settings.database_url).begin() as s:
        assert job_store.claim_job(s, job_id=job_id, worker="w", device="cpu")
        job_store.record_progress(
            s, job_id=job_id, attempt=1, progress={"epoch": 1, "epochs": 2, "step": 6}
        )


def finish(settings: Settings, job_id: str) -> None:
    with session_factory(settings.database_url).begin() as s:
        assert job_store.finish_job(s, job_id=job_id, attempt=1, status=JobStatus.SUCCEEDED)


def stream(
    client: TestClient,
    job_id: str,
    seen: Callable[[dict[str, Any]], None] = lambda event: None,
    **headers: str,
) -> list[dict[str, Any]]:
    """The events of one connection, in order: {"event", "id", "data"} or {"comment"}; each
    also handed to `seen` as it arrives (a writer in another thread waits on what the client
    has read, not on a sleep that a busy machine outlasts)."""
    url = f"/v1/jobs/{job_id}/events"
    found: list[dict[str, Any]] = []
    with client.stream("GET", url, params={"interval": 0.1}, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        for line in r.iter_lines():
            if not line:
                if current:
                    found.append(current)
                    seen(current)
                current = {}
            elif line.startswith(":"):
                found.append({"comment": line[1:].strip()})
                seen(found[-1])
            else:
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
    return found


def points_of(found: list[dict[str, Any]]) -> dict[str, list[tuple[int, int, Any]]]:
    out: dict[str, list[tuple[int, int, Any]]] = {}
    for e in found:
        for s in e["data"]["series"] if e.get("event") == "metrics" else []:
            points = zip(s["steps"], s["epochs"], s["values"], strict=True)
            out.setdefault(s["name"], []).extend(points)
    return out


def test_a_run_streams_as_progress_metrics_and_end(client: TestClient, settings: Settings) -> None:
    job_id = new_job(settings)
    write(settings, job_id, [("batch_loss", s, 1, 1.0 / s) for s in (1, 2, 3)])
    first_points, running = threading.Event(), threading.Event()

    def seen(event: dict[str, Any]) -> None:
        if event.get("event") == "metrics":
            first_points.set()
        if event.get("event") == "progress" and event["data"]["status"] == "running":
            running.set()

    def worker() -> None:
        first_points.wait(30)  # the client has the points written before the claim
        claim(settings, job_id)
        write(settings, job_id, [("batch_loss", s, 1, 1.0 / s) for s in (4, 5, 6)])
        write(settings, job_id, [("val_loss", 6, 1, math.nan), ("val_acc", 6, 1, math.inf)])
        running.wait(30)  # else the client never sees "running", which the test asserts
        write(settings, job_id, [("batch_loss", 7, 2, 0.5), ("val_loss", 7, 2, 0.25)])
        finish(settings, job_id)

    thread = threading.Thread(target=worker)
    thread.start()
    found = stream(client, job_id, seen)
    thread.join()

    kinds = [e.get("event") for e in found]
    assert kinds[0] == "progress" and kinds[-1] == "end" and kinds.count("end") == 1
    assert found[0]["data"] == {
        "status": "queued",
        "progress": {"epoch": 0, "epochs": 2, "step": 0},
    }
    statuses = [e["data"]["status"] for e in found if e.get("event") == "progress"]
    assert statuses == ["queued", "running", "succeeded"]
    assert found[-1]["data"]["id"] == job_id and found[-1]["data"]["status"] == "succeeded"
    assert "metrics" in kinds[: kinds.index("progress", 1)]  # the first points before the claim
    assert all(e["id"] for e in found if e.get("event") == "metrics")
    # Every point exactly once, NaN and infinity spelled as JavaScript's Number() reads them.
    assert points_of(found) == {
        "batch_loss": [(s, 1, 1.0 / s) for s in range(1, 7)] + [(7, 2, 0.5)],
        "val_loss": [(6, 1, "NaN"), (7, 2, 0.25)],
        "val_acc": [(6, 1, "Infinity")],
    }


def test_last_event_id_resumes_after_the_points_already_sent(
    client: TestClient, settings: Settings
) -> None:
    job_id = new_job(settings)
    write(settings, job_id, [("batch_loss", s, 1, float(s)) for s in range(1, 6)])
    write(settings, job_id, [("val_loss", 3, 1, 0.5)])
    claim(settings, job_id)
    finish(settings, job_id)
    first = stream(client, job_id)
    assert [e["event"] for e in first] == ["progress", "metrics", "end"]
    last_id = first[1]["id"]
    assert last_id == "batch_loss:5,val_loss:3"

    # A series behind the others (val_loss) still gets its points between the two steps.
    write(settings, job_id, [("batch_loss", 6, 2, 6.0), ("val_loss", 5, 2, 0.4)])
    resumed = stream(client, job_id, **{"Last-Event-ID": last_id})
    assert [e["event"] for e in resumed] == ["progress", "metrics", "end"]
    assert points_of(resumed) == {"batch_loss": [(6, 2, 6.0)], "val_loss": [(5, 2, 0.4)]}
    assert resumed[1]["id"] == "batch_loss:6,val_loss:5"
    assert points_of(stream(client, job_id, **{"Last-Event-ID": resumed[1]["id"]})) == {}

    bad = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "x:y"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_a_quiet_stream_sends_keep_alive_comments(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "HEARTBEAT_SECONDS", 0.2)
    job_id = new_job(settings)
    claim(settings, job_id)
    kept_alive = threading.Event()

    def finish_once_kept_alive() -> None:
        kept_alive.wait(30)  # else the stream ends with no comment and the test fails
        finish(settings, job_id)

    thread = threading.Thread(target=finish_once_kept_alive)
    thread.start()
    found = stream(client, job_id, lambda e: "comment" in e and kept_alive.set())
    thread.join()
    assert found[0]["event"] == "progress" and found[-1]["event"] == "end"
    assert {"comment": "keep-alive"} in found[1:-1]


def test_unknown_jobs_and_bad_intervals_are_refused_before_streaming(client: TestClient) -> None:
    r = client.get("/v1/jobs/nope/events")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    job_id = new_job(client.app.state.settings)
    for interval in (0.01, 11):
        r = client.get(f"/v1/jobs/{job_id}/events", params={"interval": interval})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "interval"]


def test_cursor_ids_round_trip_any_series_name() -> None:
    cursor = Cursor()
    odd = "diag/grad, norm:dense 1%"
    cursor.newer([Series("loss", [1, 2], [1, 1], [0.5, 0.4]), Series(odd, [2], [1], [1.0])])
    cursor.newer([Series("loss", [2, 3], [1, 1], [0.4, 0.3])])  # from the floor: step 2 again
    assert cursor.steps == {"loss": 3, odd: 2}
    assert Cursor.decode(cursor.encode()).steps == cursor.steps
    # A new series' first point at the floor's step is still sent: e.g. epoch-end metrics.
    [new] = cursor.newer([Series("loss", [3], [1], [0.3]), Series("val", [2], [1], [0.9])])
    assert (new.name, new.steps) == ("val", [2])
    for bad in ("loss", "loss:-1", "loss:x", ","):
        with pytest.raises(InvalidArgumentError):
            Cursor.decode(bad)


def test_a_client_can_leave_a_stream_that_has_not_ended(
    client: TestClient, settings: Settings
) -> None:
    job_id = new_job(settings)  # queued, and stays so
    url = f"/v1/jobs/{job_id}/events"
    with client.stream("GET", url, params={"interval": 0.1}) as r:
        lines = r.iter_lines()
        assert next(lines) == "event: progress"
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"  # the app still serves
