"""The dashboard is served by the API at / and lists a job submitted through the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.specs import DIGITS

pytestmark = pytest.mark.e2e


def test_the_page_lists_a_job_submitted_through_the_api(page: Any, stack: Stack) -> None:
    job = httpx.post(
        f"{stack.url}/v1/jobs", json={**DIGITS, "training": {**DIGITS["training"], "epochs": 1}}
    ).json()
    page.goto("/")
    row = page.get_by_test_id("jobs-table").locator("tr", has_text=job["id"])
    row.wait_for()
    assert job["name"] in row.inner_text()


def test_the_page_s_files_come_from_the_api_with_a_strict_policy(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/")
    assert r.status_code == 200 and "<main" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert httpx.get(f"{stack.url}/ui/vendor/uPlot.iife.min.js").status_code == 200
    assert httpx.get(f"{stack.url}/ui/no-such.js").status_code == 404
