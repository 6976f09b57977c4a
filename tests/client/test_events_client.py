"""`Client.events`: a job's server-sent events, resumed after a dropped connection with
Last-Event-ID, against a real API and worker (and, for the drop, a real TCP proxy that cuts the
first stream after its first metrics event)."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from epochal_client import Client, Job
from tests.client.test_job_cli import digits, submitted
from tests.e2e.stack import epochal_command, service_env
from tests.specs import SLOW_DIGITS

pytestmark = pytest.mark.e2e


class CuttingProxy:
    """Forwards TCP connections to `upstream`; the first response that carries a metrics event
    is cut right after that event, as a dropped connection would. Keeps each request's head."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.requests: list[str] = []
        self.cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as upstream:
            request = client.recv(65536)
            self.requests.append(request.decode("latin-1"))
            upstream.sendall(request)
            received = b""
            while chunk := upstream.recv(65536):
                received += chunk
                at = received.find(b"event: metrics")
                end = received.find(b"\n\n", at)
                if not self.cut and at >= 0 and end >= 0:
                    self.cut = True
                    client.sendall(chunk[: len(chunk) - (len(received) - end - 2)])
                    client.shutdown(socket.SHUT_RDWR)  # the rest never arrives
                    return
                client.sendall(chunk)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy(url: str) -> Iterator[CuttingProxy]:
    p = CuttingProxy(url)
    yield p
    p.close()


@pytest.fixture
def finished(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Job:
    job_id = submitted(capsys, url, str(digits(tmp_path, "events", epochs=2)))["id"]
    job = Client(url).wait(job_id, timeout=30, poll=0.2)
    assert job.status == "succeeded"
    return job


def test_a_dropped_stream_resumes_without_losing_or_repeating_points(
    url: str, proxy: CuttingProxy, finished: Job
) -> None:
    events = list(Client(proxy.url, backoff=0.05).events(finished.id))
    assert proxy.cut and len(proxy.requests) == 2
    assert "last-event-id" not in proxy.requests[0].lower()
    assert "last-event-id: " in proxy.requests[1].lower()
    assert events[-1].event == "end" and events[-1].job == Client(url).get(finished.id)
    received: dict[str, list[int]] = {}
    for event in events:
        for s in event.series:
            received.setdefault(s.name, []).extend(s.steps)
    assert received == {s.name: s.steps for s in Client(url).metrics(finished.id)}


def test_events_resume_after_the_last_event_id(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a reconnection sends: with Last-Event-ID, only the points after it."""
    client = Client(url)
    job = client.wait(submitted(capsys, url, str(digits(tmp_path, "ev", epochs=2)))["id"], 30, 0.2)
    events = list(client.events(job.id))
    assert events[-1].event == "end" and events[-1].job == client.get(job.id)
    first = [e for e in events if e.event == "metrics"]
    assert first and all(e.id for e in first)
    # As if the stream broke after batch_loss's step 20: that series resumes after it, the
    # others (not seen yet) from the slowest series' step on.
    again = list(client.events(job.id, last_event_id="batch_loss:20"))
    resent: dict[str, list[int]] = {}
    for event in again:
        for s in event.series:
            resent.setdefault(s.name, []).extend(s.steps)
    expected = {
        s.name: [x for x in s.steps if x > (20 if s.name == "batch_loss" else 19)]
        for s in client.metrics(job.id)
    }
    assert resent == {name: steps for name, steps in expected.items() if steps}


def test_ctrl_c_stops_following_not_the_job(url: str) -> None:
    client = Client(url)
    job = client.submit({**SLOW_DIGITS, "training": {**SLOW_DIGITS["training"], "epochs": 300}})
    follow = subprocess.Popen(
        [epochal_command(), "follow", job.id, "--interval", "0.2"],
        env=service_env(url=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()  # the stream is open
        assert first.split()[0] in ("queued", "running"), first
        follow.send_signal(signal.SIGINT)
        _, err = follow.communicate(timeout=30)
    finally:
        follow.kill()
    assert follow.returncode == 130 and "stopped watching" in err and "Traceback" not in err
    assert not client.get(job.id).finished  # it goes on
    client.cancel(job.id)
    assert client.wait(job.id, timeout=60, poll=0.2).status == "cancelled"
