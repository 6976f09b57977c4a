"""More hostile input, found by review and fuzzing after the first hostile suites: each is a 4xx
(never a 500), fast, and stores nothing. On SQLite and PostgreSQL (NUL and lone surrogates are
PostgreSQL's problem)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.api.test_dataset_uploads import row_count, stored_files

JSON = {"content-type": "application/json"}
FILE = {"content-type": "application/octet-stream"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def refused(r, status: int = 422) -> dict:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


@pytest.mark.parametrize(
    "value",
    ["[" * 2000 + "]" * 2000, '"\\u0000"', '"a\\ud800b"'],
    ids=["deep json", "escaped NUL", "lone surrogate"],
)
def test_a_param_filter_that_cannot_be_stored_or_parsed_is_422(
    client: TestClient, value: str
) -> None:
    r = client.get("/v1/jobs", params={"param.name": value})
    assert "param.name" in refused(r)["detail"]


def test_a_key_name_that_cannot_be_stored_is_422(client: TestClient) -> None:
    r = client.post("/v1/keys", json={"project": "p", "role": "read", "name": "a\u0000b"})
    assert refused(r)["errors"][0]["loc"][-1] == "name"
    body = b'{"project": "p", "role": "read", "name": "a\\ud800b"}'  # JSON's escape
    refused(client.post("/v1/keys", content=body, headers=JSON))


def test_a_base_60_yaml_integer_is_refused_at_once(client: TestClient, settings: Settings) -> None:
    body = b"name: x\ntraining: {seed: " + b":".join([b"1"] * 200_000) + b"}\n"
    start = time.monotonic()
    r = client.post("/v1/jobs", content=body, headers={"content-type": "application/yaml"})
    assert "base 60" in refused(r)["detail"] and time.monotonic() - start < 5


def test_a_body_on_a_get_is_not_read(client: TestClient) -> None:
    r = client.request("GET", "/v1/jobs", content=b"[" * 4_000_000, headers=JSON)
    assert r.status_code == 200


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def test_parquet_that_would_not_read_cleanly_is_refused(
    client: TestClient, settings: Settings
) -> None:
    upload = "/v1/datasets?target=y"
    # A compression bomb: 10 million constant rows in a few kilobytes.
    bomb = parquet_bytes(
        pa.table({"a": np.zeros(10_000_000, np.int8), "y": np.zeros(10_000_000, np.int8)})
    )
    assert len(bomb) < 200_000
    assert "compression bomb" in refused(client.post(upload, content=bomb, headers=FILE))["detail"]
    # A text column of numbers with more distinct values than a category allows.
    numbers = pa.table({"a": [str(i) for i in range(100)], "y": [i % 2 for i in range(100)]})
    r = client.post(upload, content=parquet_bytes(numbers), headers=FILE)
    assert "EPOCHAL_MAX_CATEGORIES" in refused(r)["detail"]
    assert (
        row_count(settings) == 0 and [f for f in stored_files(settings) if "datasets/" in f] == []
    )
    # Integers past 2**53 are read as the nearest float, as a CSV's would be.
    big = pa.table({"a": [2**60 + i for i in range(20)], "y": [i % 2 for i in range(20)]})
    assert client.post(upload, content=parquet_bytes(big), headers=FILE).status_code == 201


def test_an_npz_with_a_corrupt_deflate_stream_is_refused(
    client: TestClient, settings: Settings
) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, x=np.arange(20_000, dtype=np.float32).reshape(2000, 10), y=np.arange(2000) % 2
    )
    data = bytearray(buffer.getvalue())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(range(64))  # inside the first member's deflate stream
    r = client.post("/v1/datasets", content=bytes(data), headers=FILE)
    assert 400 <= r.status_code < 500, r.text[:300]
    assert row_count(settings) == 0
