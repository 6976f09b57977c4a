"""Hostile uploads against a real API process (uvicorn, SQLite, Redis): each is refused with a
4xx within a generous time, the API's peak memory grows by less than MEMORY_BOUND, and nothing
is left: no data set row, no staging file, no artifact."""

from __future__ import annotations

import io
import socket
import struct
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings
from tests.core.test_bounded_uploads import zipped
from tests.e2e.stack import Stack, own_stack, wait_until

MEMORY_BOUND = 300 * 2**20  # bytes of peak resident memory an upload may add to the API
TIME_BOUND = 20.0  # seconds: generous, on a busy 2-core machine
UPLOAD_TIMEOUT = 3.0  # EPOCHAL_UPLOAD_TIMEOUT_SECONDS of the server under test


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-artifacts")


@pytest.fixture(scope="module")
def stack(
    redis_url: str, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("hostile-stack")
    settings = {
        "database_url": f"sqlite:///{workdir / 'epochal.db'}",
        "broker_url": redis_url,
        "broker_key_prefix": f"hostile-{uuid.uuid4().hex[:8]}:",
        "artifacts_dir": artifacts,
        "upload_timeout_seconds": UPLOAD_TIMEOUT,
    }
    with own_stack(workdir, **settings) as s:
        yield s


def peak_memory(stack: Stack) -> int:
    """VmHWM of the API process: the most resident memory it has held, in bytes."""
    status = Path(f"/proc/{stack.processes['api'].pid}/status").read_text()
    line = next(row for row in status.splitlines() if row.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def assert_nothing_left(stack: Stack, artifacts: Path) -> None:
    with stack.client() as client:
        listed = client.get("/v1/datasets").json()
    assert [d["id"] for d in listed if d["source"] == "upload"] == []
    wait_until(lambda: not files_under(artifacts), 10, "the staging files to be removed", stack)


FILE = {"content-type": "application/octet-stream"}  # what a script sends (see api/browsers.py)


def post(stack: Stack, body: bytes, **params: str) -> tuple[httpx.Response, float, int]:
    """(response, seconds, growth of the API's peak memory in bytes)."""
    before = peak_memory(stack)
    start = time.monotonic()
    with httpx.Client(base_url=stack.url, timeout=120) as client:
        response = client.post("/v1/datasets", params=params, content=body, headers=FILE)
    return response, time.monotonic() - start, peak_memory(stack) - before


def refused(stack: Stack, artifacts: Path, body: bytes, status: int, **params: str) -> dict:
    response, seconds, growth = post(stack, body, **params)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert seconds < TIME_BOUND, f"refused after {seconds:.1f} s"
    assert growth < MEMORY_BOUND, f"the API's peak memory grew by {growth / 2**20:.0f} MiB"
    assert_nothing_left(stack, artifacts)
    return response.json()


def wide_csv(columns: int, rows: int = 12) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns - 1)) + ",label"
    row = ",".join("1" for _ in range(columns - 1))
    return (header + "\n" + "".join(f"{row},{i % 2}\n" for i in range(rows))).encode()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A .npy version 1.0 header declaring `shape`, whatever data follows it."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def zeros_member(archive: zipfile.ZipFile, name: str, header: bytes, zero_bytes: int) -> None:
    """Write a member of `header` then `zero_bytes` zeros, streamed (never held whole)."""
    with archive.open(name, "w") as member:
        member.write(header)
        chunk = bytes(1 << 22)
        for start in range(0, zero_bytes, len(chunk)):
            member.write(chunk[: min(len(chunk), zero_bytes - start)])


def labels(rows: int = 20) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(rows) % 2)
    return buffer.getvalue()


def test_a_wide_csv_is_refused_at_its_header(stack: Stack, artifacts: Path) -> None:
    problem = refused(stack, artifacts, wide_csv(40_000), 422, target="label")
    assert "40,000 columns" in problem["detail"]
    assert "EPOCHAL_MAX_COLUMNS" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["file", "header"]


HUGE_HEADERS = {
    "quoted": b'"' + b"a" * (20 * 2**20) + b'",label',  # one 20 MiB column name
    "columns": ",".join(f"c{i}" for i in range(1_200_000)).encode() + b",label",  # 9.6 MB
}


@pytest.mark.parametrize("header", HUGE_HEADERS.values(), ids=HUGE_HEADERS.keys())
def test_a_huge_header_line_is_refused_quickly(
    stack: Stack, artifacts: Path, header: bytes
) -> None:
    problem = refused(stack, artifacts, header + b"\n" + b"1,0\n" * 12, 422, target="label")
    assert "line 1 is longer than 8,388,608 characters" in problem["detail"]


@pytest.mark.parametrize(
    ("method", "named"), [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")]
)
def test_npz_compressions_other_than_deflate_are_refused(
    stack: Stack, artifacts: Path, method: int, named: str
) -> None:
    buffer = io.BytesIO()
    zero_bytes = 256 * 2**20 if method == zipfile.ZIP_BZIP2 else 2**20  # bzip2: a 256 MiB bomb
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        zeros_member(archive, "x.npy", npy_header((zero_bytes // 80, 10)), zero_bytes)
        archive.writestr("y.npy", labels(zero_bytes // 80))
    problem = refused(stack, artifacts, buffer.getvalue(), 415)
    assert named in problem["detail"] and "'x.npy'" in problem["detail"]


def test_an_npz_declaring_a_trillion_rows_is_refused(stack: Stack, artifacts: Path) -> None:
    body = zipped({"x.npy": npy_header((10**12, 10)) + bytes(80), "y.npy": labels()})
    problem = refused(stack, artifacts, body, 422)
    assert "'x.npy'" in problem["detail"] and "EPOCHAL_MAX_DATA_VALUES" in problem["detail"]
    assert "10,000,000,000,000 values" in problem["detail"]


def test_an_npz_member_whose_zip_sizes_lie_is_refused(stack: Stack, artifacts: Path) -> None:
    """The .npy header and the zip's file_size say 80 kB; the member inflates to 64 MiB."""
    header = npy_header((1000, 10))
    declared = len(header) + 80_000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        zeros_member(archive, "x.npy", header, 64 * 2**20)
        archive.writestr("y.npy", labels(1000))
    data = bytearray(buffer.getvalue())
    central = data.index(b"PK\x01\x02")  # x.npy's central directory entry
    struct.pack_into("<I", data, central + 24, declared)  # its uncompressed size
    problem = refused(stack, artifacts, bytes(data), 422)
    assert "x" in problem["detail"]


def test_an_object_array_is_refused_unread(stack: Stack, artifacts: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([{"a": i} for i in range(20)], dtype=object), y=np.arange(20))
    problem = refused(stack, artifacts, buffer.getvalue(), 422)
    assert "pickled Python objects" in problem["detail"]


def raw_request(stack: Stack, content_length: int) -> socket.socket:
    port = int(stack.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /v1/datasets?target=label HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: text/csv\r\nContent-Length: %d\r\n\r\n" % content_length
    )
    return sock


def test_a_client_that_disconnects_mid_upload_leaves_nothing(stack: Stack, artifacts: Path) -> None:
    sock = raw_request(stack, 4 * 2**20)
    sock.sendall(b"a,label\n" + b"1,0\n" * (2**20 // 4))  # half the body
    staging = artifacts / ".uploads"
    wait_until(lambda: files_under(staging), 10, "the upload to be staged", stack)
    sock.close()
    assert_nothing_left(stack, artifacts)


def test_a_slow_upload_is_stopped_at_the_time_limit(stack: Stack, artifacts: Path) -> None:
    start = time.monotonic()
    sock = raw_request(stack, 2**20)
    sock.sendall(b"a,label\n")
    answer = b""
    sock.settimeout(0.5)
    while time.monotonic() - start < TIME_BOUND and not answer.endswith(b"}"):  # the problem
        try:
            if b"\r\n\r\n" not in answer:
                sock.sendall(b"1,0\n")  # a trickle: a slow-loris client
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert UPLOAD_TIMEOUT - 0.5 <= time.monotonic() - start < TIME_BOUND
    assert b"EPOCHAL_UPLOAD_TIMEOUT_SECONDS" in answer
    assert_nothing_left(stack, artifacts)


def test_a_file_that_takes_too_long_to_read_is_stopped(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """In-process, with a 0.1 s limit: the body arrives at once, reading 200,000 rows does not
    finish in time; the reader stops at its deadline and nothing is kept."""
    settings = make_settings(database_url, redis_url, tmp_path, upload_timeout_seconds=0.1)
    rows = "".join(f"{i % 97}.5,{i % 13},{i % 7},{i % 2}\n" for i in range(200_000))
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/v1/datasets",
            params={"target": "label"},
            content=f"a,b,c,label\n{rows}".encode(),
            headers=FILE,
        )
        assert response.status_code == 408, response.text[:300]
        assert "reading the upload took longer than 0.1 s" in response.json()["detail"]
        assert [d for d in client.get("/v1/datasets").json() if d["source"] == "upload"] == []
    assert files_under(settings.artifacts_dir) == []
