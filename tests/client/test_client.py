"""`client.Client` against a real API and worker: no mock of the HTTP layer."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from epochal_client import Client, EpochalAPIError, EpochalConnectionError, Job, load_spec
from tests.client.conftest import EXAMPLES
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def digits(epochs: int, tag: str, learning_rate: float = 0.001) -> dict:
    spec = load_spec(EXAMPLES / "digits_mlp.yaml")
    spec["training"]["epochs"] = epochs
    spec["training"]["optimizer"]["learning_rate"] = learning_rate
    spec["tags"] = [tag]
    return spec


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    with Client(url, retries=1) as c:
        yield c


def test_submit_wait_metrics_and_compare_two_runs(client: Client) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    a = client.submit(digits(2, tag))
    b = client.submit(digits(1, tag, learning_rate=0.01))
    assert isinstance(a, Job) and a.status == "queued" and a.tags == [tag]
    assert a.summary["parameter_count"] == 9610
    seen: list[str] = []
    a = client.wait(a.id, timeout=60, poll=0.2, on_progress=lambda j: seen.append(j.status))
    b = client.wait(b.id, timeout=60, poll=0.2)
    assert (a.status, b.status) == ("succeeded", "succeeded"), (a.error, b.error)
    assert seen[-1] == "succeeded" and a.finished
    assert a.progress["epoch"] == 2 and 0.5 < a.final["val_accuracy"] <= 1

    series = {s.name: s for s in client.metrics(a.id, names=["val_accuracy", "loss"])}
    assert set(series) == {"val_accuracy", "loss"}
    assert series["val_accuracy"].epochs == [1, 2]
    assert series["val_accuracy"].values[-1] == pytest.approx(a.final["val_accuracy"])
    newer = client.metrics(a.id, names=["batch_loss"], since_step=40, max_points=2)
    assert newer[0].steps[0] > 40 and len(newer[0].steps) <= 2

    c = client.compare([a.id, b.id])
    assert [j.id for j in c.jobs] == [a.id, b.id]
    assert c.params["training.epochs"] == [2, 1]
    assert c.params["training.optimizer.learning_rate"] == [0.001, 0.01]
    assert c.metrics["val_accuracy"][0].final == pytest.approx(a.final["val_accuracy"])
    assert c.metrics["val_accuracy"][1].final == pytest.approx(b.final["val_accuracy"])
    # Aligned by epoch unless asked by step: a has 2 epochs, b 1 (of 23 steps each).
    assert c.x == "epoch" and c.series["val_accuracy"].x == [1, 2]
    assert c.series["val_accuracy"].values[1][1] is None
    by_step = client.compare([a.id, b.id], x="step")
    assert by_step.x == "step" and by_step.series["val_accuracy"].x == series["val_accuracy"].steps

    # list: filters on status, tag and spec params; iter_jobs follows the cursor.
    assert {j.id for j in client.list(tag=tag).items} == {a.id, b.id}
    only_b = client.list(tag=tag, params={"training.optimizer.learning_rate": 0.01})
    assert [j.id for j in only_b.items] == [b.id]
    page = client.list(tag=tag, limit=1, order_by="metric.val_accuracy", order="asc")
    assert len(page.items) == 1 and page.next_cursor
    assert [j.id for j in client.iter_jobs(tag=tag, limit=1, order="asc")] == [a.id, b.id]
    assert client.list(tag=tag, status="failed").items == []


def test_submit_a_file_then_cancel_it_and_wait_timeouts(client: Client) -> None:
    job = client.submit(str(EXAMPLES / "spiral_mlp.json"))
    assert (job.name, job.status) == ("spiral-mlp", "queued")
    asked = client.cancel(job.id)
    assert asked.cancel_requested
    # Queued: cancelled at once. Just started: its worker reads the request with its next
    # heartbeat (2 s), which a run this short may finish before.
    expected = {"cancelled"} if asked.status != "running" else {"cancelled", "succeeded"}
    running = client.submit(digits(5000, f"t-{uuid.uuid4().hex[:8]}"))
    with pytest.raises(TimeoutError, match=running.id):
        client.wait(running.id, timeout=0.3, poll=0.1)
    assert client.cancel(running.id).cancel_requested
    assert client.wait(running.id, timeout=30, poll=0.2).status == "cancelled"
    assert client.wait(job.id, timeout=30, poll=0.2).status in expected
    with pytest.raises(EpochalAPIError) as e:
        client.cancel(running.id)  # already ended
    assert e.value.status == 409 and "already ended" in str(e.value)


def test_a_bad_spec_raises_the_problem_with_its_locations(client: Client) -> None:
    spec = digits(2, "bad")
    spec["model"]["layers"][0]["units"] = -3
    with pytest.raises(EpochalAPIError) as e:
        client.submit(spec)
    err = e.value
    assert err.status == 422 and err.title and err.detail
    assert err.errors[0]["loc"] == ["model", "layers", 0, "units"]
    assert "model.layers.0.units: " in str(err) and err.detail in str(err)

    with pytest.raises(EpochalAPIError) as e:
        client.get("no-such-job")
    assert e.value.status == 404 and "no-such-job" in str(e.value)


def test_datasets(client: Client) -> None:
    names = {d.name for d in client.datasets()}
    assert {"digits", "spiral"} <= names


def test_connection_errors_are_retried_then_raised() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01) as c,
        pytest.raises(EpochalConnectionError, match="cannot reach"),
    ):
        c.datasets()


DIGITS = {  # a data set as GET /v1/datasets lists a built-in
    "id": "digits",
    "name": "digits",
    "source": "builtin",
    "description": "8x8 handwritten digits",
    "task": "classification",
    "feature_shape": [64],
    "samples": 1797,
    "num_classes": 10,
    "target_shape": [],
    "options": [],
}


def test_503_is_retried_but_4xx_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real HTTP server that answers 503 twice, then 200; and 400 always on another path."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/v1/datasets" and hits.count(self.path) <= 2:
                self._send(503, {"title": "Queue unavailable", "status": 503, "detail": "later"})
            elif self.path == "/v1/datasets":
                self._send(200, [DIGITS])
            else:
                self._send(400, {"title": "Invalid argument", "status": 400, "detail": "no"})

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/problem+json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("EPOCHAL_URL", f"http://127.0.0.1:{server.server_port}")
        with Client(retries=3, backoff=0.01) as c:  # base_url from EPOCHAL_URL
            assert [d.name for d in c.datasets()] == ["digits"]
            assert hits.count("/v1/datasets") == 3
            with pytest.raises(EpochalAPIError, match="400 Invalid argument: no"):
                c.get("x")
            assert hits.count("/v1/jobs/x") == 1
        hits.clear()
        with Client(retries=1, backoff=0.01) as c, pytest.raises(EpochalAPIError) as e:
            c.datasets()  # 503, then 503 again: no retry left
        assert e.value.status == 503 and hits.count("/v1/datasets") == 2
    finally:
        server.shutdown()
        server.server_close()
