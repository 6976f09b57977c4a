"""A store that cannot be reached: every route family answers 503 `store_unavailable`, never
500 (nor a dropped connection: Starlette's catch-all re-raises, and the test client with it).
The e2e outage test (tests/e2e/test_outages.py) stops a real server; here nothing listens."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings
from tests.servers import free_port
from tests.specs import DIGITS

JOB = "00000000-0000-4000-8000-000000000000"
ROUTES = [
    ("GET", f"/v1/jobs/{JOB}", None),
    ("GET", "/v1/jobs", None),
    ("GET", f"/v1/jobs/{JOB}/metrics", None),
    ("GET", "/v1/sweeps", None),
    ("GET", "/v1/datasets", None),
    ("POST", "/v1/jobs", DIGITS),
    ("POST", f"/v1/jobs/{JOB}/cancel", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_an_unreachable_store_is_a_503_problem(
    method: str, path: str, body: dict | None, redis_url: str, tmp_path: Path
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/epochal"  # nothing listens
    settings = make_settings(nowhere, redis_url, tmp_path)
    with TestClient(create_app(settings), headers={"content-type": "application/json"}) as client:
        r = client.request(method, path, json=body)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "2"
        assert r.json()["type"] == "urn:epochal:problem:store_unavailable"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "store: unreachable" in ready.json()["detail"]
