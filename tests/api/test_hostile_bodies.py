"""Hostile request bodies against the real API process: each answers its 4xx problem quickly,
in bounded memory, and stores nothing.

One API (`uvicorn --factory api.app:create_app`, on SQLite with the test Redis as broker) serves
the whole module. Its peak resident memory (VmHWM) is read before the first case and after each;
its address space is capped (RLIMIT_AS), so a body that escapes the bounds fails its case
instead of taking the machine's memory.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, func, select

import migrations
from cli.main import api_command
from core.settings import Settings
from core.store.models import Dataset, Job, Sweep
from tests.e2e.stack import service_env, wait_until
from tests.servers import free_port
from tests.specs import DIGITS

MAX_BODY_BYTES = Settings.model_fields["max_body_bytes"].default  # the server runs on defaults
SECONDS = 10.0  # every hostile body is answered within this (2 busy cores: generous)
GROWTH = 300 * 1024 * 1024  # and the API's peak memory grows by less than this
ADDRESS_SPACE = 3 * 1024**3  # the API's address space: at most this beyond pytest's
JSON, YAML = "application/json", "application/yaml"

# Nine levels of nine aliases: about 387 million strings once expanded, from 400 bytes.
BILLION_LAUGHS = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + b"".join(
    b"%c: &%c [%s]\n" % (c, c, b",".join([b"*%c" % (c - 1)] * 9)) for c in b"bcdefghi"
)
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_YAML = b"{a: " * 100_000 + b"}" * 100_000
DEEP_BLOCK_YAML = b"".join(b" " * i + b"a:\n" for i in range(200)) + b" " * 200 + b"1\n"
# A spec that reuses its optimizer settings through an anchor: harmless, and still refused.
BENIGN_ALIAS = yaml.safe_dump({k: v for k, v in DIGITS.items() if k != "training"}).encode() + (
    b"defaults: &adam {type: adam, learning_rate: 0.001}\n"
    b"training: {loss: sparse_categorical_crossentropy, optimizer: *adam, epochs: 2}\n"
)


@dataclass
class Api:
    url: str
    pid: int
    database_url: str
    artifacts: Path
    baseline_hwm: int

    def peak(self) -> int:
        return _status_bytes(self.pid, "VmHWM")

    def stored(self) -> tuple[int, int, int]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as c:
                return tuple(  # type: ignore[return-value]
                    c.scalar(select(func.count()).select_from(t)) for t in (Job, Sweep, Dataset)
                )
        finally:
            engine.dispose()

    def files(self) -> list[Path]:
        return [p for p in self.artifacts.rglob("*") if p.is_file()]


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir = tmp_path_factory.mktemp("hostile")
    database_url = f"sqlite:///{workdir / 'epochal.db'}"
    migrations.upgrade(database_url)
    env = service_env(
        database_url=database_url,
        broker_url=redis_url,
        broker_key_prefix=f"hostile-{uuid.uuid4().hex[:8]}:",
        artifacts_dir=workdir / "artifacts",
    )
    port = free_port()
    with open(workdir / "api.log", "wb") as log:
        process = subprocess.Popen(
            api_command("127.0.0.1", port, "warning"),
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    # This process's address space (it has imported what the API imports) stands for the API's.
    cap = _status_bytes(os.getpid(), "VmSize") + ADDRESS_SPACE
    resource.prlimit(process.pid, resource.RLIMIT_AS, (cap, cap))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), 60, "the API to be ready")
        # Warm up the paths every case takes (routing, validation, a problem), then measure.
        httpx.post(f"{url}/v1/jobs", content=b"{}", headers={"content-type": JSON}, timeout=30)
        api = Api(url, process.pid, database_url, workdir / "artifacts", 0)
        api.baseline_hwm = api.peak()
        yield api
    finally:
        process.terminate()
        process.wait(20)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def send(api: Api, path: str, body: Any, content_type: str | None = JSON) -> httpx.Response:
    """POST `body`, timed; then check that the API's memory stayed bounded."""
    headers = {"content-type": content_type} if content_type else {}
    start = time.monotonic()
    try:
        r = httpx.post(f"{api.url}{path}", content=body, headers=headers, timeout=3 * SECONDS)
    except httpx.HTTPError as e:
        raise AssertionError(f"no answer within {3 * SECONDS} s: {e!r}") from e
    elapsed = time.monotonic() - start
    assert elapsed < SECONDS, f"answered after {elapsed:.1f} s"
    growth = api.peak() - api.baseline_hwm
    assert growth < GROWTH, f"the API's peak memory grew by {growth / 2**20:.0f} MiB"
    return r


def assert_problem(r: httpx.Response, status: int, code: str, type: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == f"urn:epochal:problem:{code}", problem
    assert problem["status"] == status
    if type is not None:
        assert [e["type"] for e in problem["errors"]] == [type], problem
    return problem


@pytest.fixture(autouse=True)
def nothing_stored(api: Api) -> Iterator[None]:
    before = api.stored()
    yield
    assert api.stored() == before, "a refused body left rows behind"
    assert api.files() == [], "a refused body left files behind"


def test_billion_laughs_is_refused_at_its_first_anchor(api: Api) -> None:
    assert len(BILLION_LAUGHS) < 500
    problem = assert_problem(send(api, "/v1/jobs", BILLION_LAUGHS, YAML), 422, "invalid_spec")
    [error] = problem["errors"]
    assert error["type"] == "yaml_alias" and "&a" in error["msg"]
    first_line = BILLION_LAUGHS.splitlines()[error["line"] - 1]
    assert first_line[error["column"] - 1 :].startswith(b"&a")


def test_a_small_benign_alias_is_refused_too_naming_where(api: Api) -> None:
    problem = assert_problem(send(api, "/v1/jobs", BENIGN_ALIAS, YAML), 422, "invalid_spec")
    [error] = problem["errors"]
    assert error["type"] == "yaml_alias" and "&adam" in error["msg"]
    lines = BENIGN_ALIAS.decode().splitlines()
    assert lines[error["line"] - 1][error["column"] - 1 :].startswith("&adam")
    assert "write each value out in full" in error["msg"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(DEEP_JSON, JSON), (DEEP_YAML, YAML), (DEEP_BLOCK_YAML, YAML)],
    ids=["json-100000", "yaml-flow-100000", "yaml-block-200"],
)
def test_deep_nesting_is_refused(api: Api, body: bytes, content_type: str) -> None:
    problem = assert_problem(send(api, "/v1/jobs", body, content_type), 422, "invalid_spec")
    assert problem["errors"][0]["type"] == "body_too_deep"
    assert "nested deeper than 64 levels" in problem["detail"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/sweeps", "invalid_sweep"),
        ("/v1/jobs/some-job/predict", "invalid_request"),
        ("/v1/jobs/some-job/clone", "invalid_request"),
        ("/v1/jobs/some-job/evaluate", "invalid_request"),
    ],
)
def test_every_json_route_refuses_deep_bodies(api: Api, path: str, code: str) -> None:
    assert_problem(send(api, path, DEEP_JSON), 422, code, "body_too_deep")


def test_brackets_inside_strings_do_not_count(api: Api) -> None:
    body = b'{"name": "' + b"[" * 1000 + b'", "tags": ["\\"{{{{"]}'
    problem = assert_problem(send(api, "/v1/jobs", body), 422, "invalid_spec")
    types = {e["type"] for e in problem["errors"]}
    assert "missing" in types and "body_too_deep" not in types  # parsed, then validated


def test_an_oversize_json_body_is_413(api: Api) -> None:
    problem = assert_problem(send(api, "/v1/jobs", b" " * (MAX_BODY_BYTES + 1)), 413, "too_large")
    assert "EPOCHAL_MAX_BODY_BYTES" in problem["detail"]


def test_an_oversize_chunked_body_is_413(api: Api) -> None:
    chunk = b"[" + b"0," * 32_767 + b"0]"

    def chunks() -> Iterator[bytes]:
        for _ in range(4 * MAX_BODY_BYTES // len(chunk)):
            yield chunk

    for content_type in (JSON, YAML):
        assert_problem(send(api, "/v1/jobs", chunks(), content_type), 413, "too_large")
    # Without a content type, the browser rule refuses it first, before reading the body.
    assert_problem(send(api, "/v1/jobs", chunks(), None), 415, "unsupported_media_type")


def test_a_huge_content_length_is_refused_before_the_body_is_sent(api: Api) -> None:
    """Only the headers are sent: the answer cannot have waited for the body."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=SECONDS) as s:
        s.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nhost: api\r\ncontent-type: application/json\r\n"
            b"content-length: 100000000000\r\n\r\n"
        )
        head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]
    assert b"application/problem+json" in head


@pytest.mark.parametrize(
    ("body", "content_type", "type"),
    [
        (b'{"name": "caf\xe9"}', JSON, "body_not_utf8"),
        (b'name: "caf\xe9"\n', YAML, "yaml_invalid"),
        (b'{"name": "digits", "model": {', JSON, "json_invalid"),
        (b"name: digits\nmodel: [unclosed\n", YAML, "yaml_invalid"),
        (b"a: 1\n---\nb: 2\n", YAML, "yaml_invalid"),
        (b'{"seed": ' + b"9" * 5000 + b"}", JSON, "body_number_too_long"),
        (b"seed: " + b"9" * 5000 + b"\n", YAML, "yaml_invalid"),
        (b"name: !!binary aGVsbG8=\n", YAML, "yaml_invalid"),
        (b"tags: !!set {a, b}\n", YAML, "yaml_invalid"),
        (b"!!python/object/apply:os.system [true]\n", YAML, "yaml_invalid"),
        (b"[" + b"0," * 60_000 + b"0]", YAML, "yaml_too_many_nodes"),
        (b'"a scalar"', JSON, "model_attributes_type"),
        (b"just text\n", YAML, "model_attributes_type"),
    ],
    ids=[
        "json-not-utf8",
        "yaml-not-utf8",
        "json-truncated",
        "yaml-truncated",
        "yaml-two-documents",
        "json-5000-digits",
        "yaml-5000-digits",
        "yaml-binary",
        "yaml-set",
        "yaml-python-tag",
        "yaml-60000-values",
        "json-scalar",
        "yaml-scalar",
    ],
)
def test_a_malformed_body_is_a_422_naming_the_body(
    api: Api, body: bytes, content_type: str, type: str
) -> None:
    problem = assert_problem(send(api, "/v1/jobs", body, content_type), 422, "invalid_spec")
    assert [e["type"] for e in problem["errors"]] == [type], problem


def test_uploads_keep_their_own_limit(api: Api) -> None:
    """A data set file larger than EPOCHAL_MAX_BODY_BYTES reaches the upload route (which
    refuses this one for what it is, not for its size)."""
    body = b"\x00" * (2 * MAX_BODY_BYTES)
    r = send(api, "/v1/datasets", body, "application/octet-stream")
    assert r.status_code in (415, 422), r.text
    assert r.json()["type"] != "urn:epochal:problem:too_large"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" + b"[]," * (MAX_BODY_BYTES // 3 - 2) + b"[]]", JSON),
        (b"[" + b"0," * 49_000 + b"0]", YAML),
    ],
    ids=["json-1-mib-of-empty-lists", "yaml-49001-values"],
)
def test_the_costliest_bodies_within_the_limits_stay_bounded(
    api: Api, body: bytes, content_type: str
) -> None:
    """Read in full, then refused by the route's validation (a list, not an object)."""
    r = send(api, "/v1/jobs/some-job/predict", body, content_type)
    assert_problem(r, 422, "invalid_request", "model_attributes_type")
