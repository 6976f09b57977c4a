"""What the dashboard's browser tests share: submitting a job and waiting for its end through
the API, Playwright's expect, and the screenshot a failed test leaves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack


def submit(stack: Stack, spec: dict, tags: list[str] | None = None, **training: Any) -> dict:
    """POST /v1/jobs with `spec`, its training fields overridden by `training`."""
    body = {**spec, "training": {**spec["training"], **training}}
    if tags is not None:
        body["tags"] = tags
    r = httpx.post(f"{stack.url}/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def cancel(stack: Stack, what: str, kind: str = "jobs") -> None:
    """Cancel a job (or a sweep, kind="sweeps") that a test leaves running, so that the next
    tests' jobs do not wait behind it on the package's one worker. A POST needs a Content-Type
    (the browser guard refuses one without): a cleanup that sent none was refused, unseen."""
    r = httpx.post(f"{stack.url}/v1/{kind}/{what}/cancel", json={})
    assert r.status_code in (200, 202, 409), r.text  # 409: it had ended already


def wait_ended(stack: Stack, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{stack.url}/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def expect(locator: Any) -> Any:
    """Playwright's expect, imported when used: without playwright the tests skip (conftest)."""
    from playwright.sync_api import expect

    return expect(locator)


def screenshot_if_failed(request: pytest.FixtureRequest, page: Any, folder: Path) -> None:
    """A failed test's page, whole, in its temporary folder (conftest's makereport hook keeps
    the call's report on the item); the path is printed in the report."""
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shot = folder / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failed page: {shot}")
