"""How the client and the CLI meet what goes wrong on the wire or in a file: dropped and
garbled answers, a read timeout, a proxy's 502/504, an upload still in progress, a spec that
does not parse, a URL without a scheme; and output that stays machine-readable (strict JSON,
one line per event). Each against a real socket: a small HTTP or raw TCP server of the test's
own, or the package's real API and worker."""

from __future__ import annotations

import json
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from epochal_client import Client, EpochalAPIError, EpochalConnectionError
from epochal_client.cli.output import plain
from epochal_client.models import Evaluation
from tests.client.test_data_cli import DATASET
from tests.e2e.stack import service_env
from tests.specs import SLOW_DIGITS

pytestmark = pytest.mark.e2e

# (status, body, headers) of an HTTP answer; a body of None: hang up without answering.
Answer = tuple[int, Any, dict[str, str]]
Route = Callable[[str, str, dict[str, str], bytes], Answer | None]


def cli(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m epochal_client ...` as a script runs it: (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "epochal_client", *argv],
        env=env or service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


@contextmanager
def http_server(route: Route) -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    """A real HTTP server answering each request with `route(method, path, headers, body)`
    (None: drop the connection unanswered); its URL and the requests it saw."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append((self.command, self.path, headers))
            answer = route(self.command, self.path, headers, body)
            if answer is None:
                self.close_connection = True
                return
            status, payload, extra = answer
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", extra.pop("content-type", "application/json"))
            self.send_header("content-length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _any

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def raw_server(reply: bytes | None, hang: float = 0.0) -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server that reads each request's head, waits `hang` seconds, writes `reply` (not
    HTTP; None: nothing) and closes: its URL and the request lines it saw."""
    seen: list[bytes] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            while b"\r\n\r\n" not in data and (chunk := self.request.recv(65536)):
                data += chunk
            seen.append(data.split(b"\r\n", 1)[0])
            time.sleep(hang)
            if reply is not None:
                self.request.sendall(reply)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


JOB = {  # a job as the API answers it
    "id": "job_x",
    "name": "x",
    "tags": [],
    "status": "cancelled",
    "queue": "default",
    "spec": {},
    "progress": {},
    "summary": {"final": {"loss": 0.1}},
    "error": None,
    "attempts": 1,
    "worker": None,
    "device": None,
    "cancel_requested": True,
    "created_at": "2026-01-01T00:00:00Z",
    "started_at": None,
    "finished_at": "2026-01-01T00:00:01Z",
}


def problem(status: int, code: str, detail: str) -> Answer:
    body = {"type": f"urn:epochal:problem:{code}", "title": code, "status": status}
    return status, {**body, "detail": detail}, {"content-type": "application/problem+json"}


# --- 1. network errors other than a refused connection ------------------------------------


@pytest.mark.parametrize("reply", [None, b"this is not HTTP\r\n\r\n"], ids=["hung-up", "garbled"])
def test_a_get_is_retried_on_a_dropped_or_garbled_answer_then_exits_4(reply: bytes | None) -> None:
    with raw_server(reply) as (url, seen):
        code, _, err = cli("status", "job_x", "--server", url)
    assert code == 4 and "cannot reach the Epochal API" in err, err
    assert "Traceback" not in err and len(seen) == 4  # the first try and 3 retries


def test_a_post_without_a_key_is_not_resent_after_it_was_sent_and_says_it_may_be_applied() -> None:
    with raw_server(None) as (url, seen):
        code, _, err = cli("cancel", "job_x", "--server", url)
    assert code == 4 and "may have been applied" in err and "Traceback" not in err, err
    assert seen == [b"POST /v1/jobs/job_x/cancel HTTP/1.1"]


def test_a_read_timeout_is_retried_for_a_get_and_raised_as_a_connection_error() -> None:
    with (
        raw_server(None, hang=1.0) as (url, seen),
        Client(url, timeout=0.2, retries=1, backoff=0.01) as c,
        pytest.raises(EpochalConnectionError, match="cannot reach"),
    ):
        c.get("job_x")
    assert len(seen) == 2


def test_a_url_without_a_scheme_is_a_usage_error_naming_the_flag_and_variable() -> None:
    code, _, err = cli("status", "job_x", "--server", "localhost:8000")
    assert code == 2 and "--server" in err and "EPOCHAL_URL" in err and "http://" in err, err
    assert "Traceback" not in err
    env = {**service_env(), "EPOCHAL_URL": "127.0.0.1:8000"}
    code, _, err = cli("list", env=env)
    assert code == 2 and "'127.0.0.1:8000'" in err and "Traceback" not in err, err


# --- 2. a spec file that does not parse ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("job.yaml", "model:\n  layers: [1, 2\ntraining: {}\n", "line 3"),
        ("job.json", '{"model": {},\n "training": }', "line 2, column 14"),
    ],
)
def test_a_spec_that_does_not_parse_is_a_usage_error_naming_file_and_place(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    server = "http://127.0.0.1:9"  # never reached: the file is read first
    for verb in ("submit", "sweep"):
        code, _, err = cli(verb, str(path), "--server", server)
        assert code == 2 and str(path) in err and where in err, (verb, err)
        assert "Traceback" not in err


# --- 3. which statuses are retried for which requests ---------------------------------------


def test_a_proxy_504_on_a_post_without_a_key_is_not_resent_but_a_503_is() -> None:
    answers = {"resume": [problem(504, "gateway", "proxy timed out")]}

    def route(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path.endswith("/resume"):
            return answers["resume"].pop(0) if answers["resume"] else problem(409, "conflict", "")
        if path.endswith("/cancel"):  # 503 (nothing stored) twice, then cancelled
            cancels = sum(p.endswith("/cancel") for _, p, _ in seen)
            if cancels <= 2:
                return problem(503, "store_busy", "later")
            return 200, JOB, {}
        if method == "GET":  # 502 then 504, then answered
            gets = sum(m == "GET" for m, _, _ in seen)
            return (
                problem(502 if gets == 1 else 504, "gateway", "")
                if gets <= 2
                else problem(404, "not_found", "no job job_x")
            )
        return problem(500, "internal_error", "")

    with http_server(route) as (url, seen), Client(url, backoff=0.01) as c:
        code, _, err = cli("resume", "job_x", "--server", url)
        assert code == 4 and "504" in err and "may have been applied" in err, err
        assert "Traceback" not in err
        assert [p for _, p, _ in seen] == ["/v1/jobs/job_x/resume"]  # sent once
        seen.clear()
        assert c.cancel("job_x").status == "cancelled"  # 503 (nothing stored) twice: resent
        assert len(seen) == 3
        seen.clear()
        with pytest.raises(EpochalAPIError, match="404 not_found"):
            c.get("job_x")
        assert len(seen) == 3


def test_an_idempotent_post_is_resent_after_a_502_with_the_same_key() -> None:
    def route(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if len(seen) == 1:
            return problem(502, "bad_gateway", "")
        return 201, {**DATASET, "size_bytes": len(body)}, {}

    with http_server(route) as (url, seen), Client(url, backoff=0.01) as c:
        ds = c.upload_dataset(Path(__file__))
    keys = [h["idempotency-key"] for _, _, h in seen]
    assert len(keys) == 2 and keys[0] == keys[1] and ds.size_bytes == Path(__file__).stat().st_size


# --- 4. an upload the server is still reading ----------------------------------------------


def test_an_upload_still_in_progress_is_polled_with_its_key_until_the_stored_answer(
    tmp_path: Path,
) -> None:
    """The first try is dropped after its body was read (as a client's read timeout would
    leave it); its repeats find the key still in progress (409, request_in_progress) twice,
    then the server replays the stored 201."""
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n" * 1000)
    bodies: list[bytes] = []

    def route(method: str, path_: str, headers: dict[str, str], body: bytes) -> Answer | None:
        bodies.append(body)
        if len(bodies) == 1:
            return None
        if len(bodies) <= 3:
            return problem(409, "request_in_progress", "still in progress")
        return 201, {**DATASET, "size_bytes": len(body)}, {}

    with http_server(route) as (url, seen), Client(url, retries=1, backoff=0.01) as c:
        ds = c.upload_dataset(path)
    assert len({h["idempotency-key"] for _, _, h in seen}) == 1 and len(seen) == 4
    assert ds.size_bytes == path.stat().st_size and set(bodies) == {path.read_bytes()}


def test_a_409_that_is_not_in_progress_is_not_resent(tmp_path: Path) -> None:
    def route(method: str, path_: str, headers: dict[str, str], body: bytes) -> Answer:
        return problem(409, "conflict", "the name is taken")

    with http_server(route) as (url, seen):
        code, _, err = cli("datasets", "upload", __file__, "--server", url)
    assert code == 3 and "the name is taken" in err and len(seen) == 1, err


# --- 5. strict JSON --------------------------------------------------------------------------


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} in the JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_output_writes_non_finite_values_as_the_api_does() -> None:
    metric = {"final": "NaN", "best": "-Infinity", "best_step": 3}
    comparison = {
        "jobs": [{"id": "a", "name": "a", "status": "failed"}],
        "params": {"training.learning_rate": [1e308]},
        "metrics": {"loss": [metric]},
        "series": {"loss": {"x": [1, 2], "values": [["Infinity", None]]}},
    }
    evaluation = {"job_id": "a", "dataset": "digits", "samples": 3, "metrics": {"loss": "NaN"}}

    def route(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return 200, comparison if path.startswith("/v1/compare") else evaluation, {}

    with http_server(route) as (url, _):
        code, out, err = cli("compare", "a", "b", "--json", "--server", url)
        assert code == 0, err
        assert _strict(out)["metrics"]["loss"] == [metric]
        assert _strict(out)["series"]["loss"]["values"] == [["Infinity", None]]
        code, out, err = cli("evaluate", "a", "digits", "--json", "--server", url)
        assert code == 0, err
        assert _strict(out)["metrics"] == {"loss": "NaN"}
    nested = plain({"x": [Evaluation.model_validate(evaluation)], "y": float("inf")})
    assert nested == {"x": [evaluation], "y": "Infinity"}


# --- 6. submit --wait --json tells the id at once --------------------------------------------


def test_submit_wait_json_says_the_id_on_stderr_at_once_and_ctrl_c_names_it(
    url: str, tmp_path: Path
) -> None:
    spec = tmp_path / "slow.json"
    spec.write_text(
        json.dumps({**SLOW_DIGITS, "training": {**SLOW_DIGITS["training"], "epochs": 300}})
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "epochal_client", "submit", str(spec), "--wait", "--json"],
        env=service_env(url=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().split()
        assert first[0] == "job" and first[2] == "queued", first
        job_id = first[1]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and out == "" and "Traceback" not in err, err
    assert f"stopped watching job {job_id}" in err and f"epochal cancel {job_id}" in err
    with Client(url) as c:
        c.cancel(job_id)
        assert c.wait(job_id, timeout=60, poll=0.2).status == "cancelled"


# --- 8. one line per event, however long --------------------------------------------------


def test_follow_prints_one_line_per_event_and_errors_on_one_line() -> None:
    long_name = "val_" + "m" * 300
    series = {"name": long_name, "steps": [5], "epochs": [1], "values": [0.5]}
    job = {**JOB, "status": "succeeded"}
    stream = (
        f"event: metrics\nid: {long_name}:5\ndata: {json.dumps({'series': [series]})}\n\n"
        f"event: end\ndata: {json.dumps(job)}\n\n"
    ).encode()

    def route(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path.startswith("/v1/jobs/job_x/events"):
            return 200, stream, {"content-type": "text/event-stream"}
        return problem(404, "not_found", "no job named " + "y" * 300)

    with http_server(route) as (url, _):
        code, out, err = cli("follow", "job_x", "--server", url)
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 2 and lines[0].endswith(f"{long_name}=0.5"), out
        code, out, err = cli("status", "job_y", "--server", url)
    assert code == 3 and len(err.splitlines()) == 1 and err.rstrip().endswith("y" * 300), err


def test_the_port_is_free_for_the_spec_tests() -> None:
    """Port 9 (discard) refuses connections here, so a spec test that reached the network
    would fail with 4, not pass with 2."""
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", 9), timeout=1):
        pass
