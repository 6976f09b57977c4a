"""The dashboard is served by the API at / and lists a job submitted through the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.specs import DIGITS, SLOW_DIGITS
from tests.ui.helpers import cancel

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


def test_every_ui_file_carries_the_page_s_headers_and_index_html_is_only_at_root(
    stack: Stack,
) -> None:
    for path in ("/", "/ui/app.js", "/ui/lib/api.js", "/ui/vendor/uPlot.min.css"):
        r = httpx.get(f"{stack.url}{path}")
        assert r.status_code == 200, path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["cache-control"] == "no-cache", path
    assert httpx.get(f"{stack.url}/ui/index.html").status_code == 404
    assert httpx.get(f"{stack.url}/ui/").status_code == 404


def submit(stack: Stack, spec: dict[str, Any], epochs: int) -> str:
    body = {**spec, "training": {**spec["training"], "epochs": epochs}}
    r = httpx.post(f"{stack.url}/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_crafted_id_shows_an_error_and_calls_nothing(page: Any, stack: Stack) -> None:
    victim = submit(stack, DIGITS, epochs=1)  # only needs to exist
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(f"/#/sweeps/..%2Fjobs%2F{victim}")
    error = page.get_by_test_id("page-error")
    error.wait_for()
    assert "not a valid id" in error.inner_text()
    assert page.locator("[data-testid=cancel], [data-testid=sweep-status]").count() == 0
    # And api() itself refuses a path that climbs out (whatever a page might pass it).
    refused = page.evaluate(
        """async (id) => {
          const { api } = await import("/ui/lib/api.js");
          const out = [];
          for (const path of [`/v1/sweeps/../jobs/${id}/cancel`, `/v1/jobs/${id}?x=1`]) {
            try { await api(path, { method: "POST" }); out.push("sent"); }
            catch (e) { out.push(e.message); }
          }
          return out;
        }""",
        victim,
    )
    assert all(m.startswith("refused an unsafe API path") for m in refused), refused
    assert not [u for u in urls if victim in u], urls
    assert httpx.get(f"{stack.url}/v1/jobs/{victim}").json()["status"] != "cancelled"


@pytest.mark.parametrize("delay_ms", [0, 60, 200])
def test_leaving_a_page_while_it_loads_stops_it(page: Any, stack: Stack, delay_ms: int) -> None:
    job = submit(stack, SLOW_DIGITS, epochs=1000)
    try:
        page.goto("/#/datasets")
        page.get_by_test_id("datasets-table").wait_for()
        events: list[Any] = []
        ended: list[Any] = []
        page.on(
            "request", lambda r: events.append(r) if f"/v1/jobs/{job}/events" in r.url else None
        )
        page.on("requestfinished", lambda r: ended.append(r))
        page.on("requestfailed", lambda r: ended.append(r))
        page.evaluate(
            """async ([id, delay]) => {
              location.hash = `#/jobs/${id}`;
              await new Promise((resolve) => setTimeout(resolve, delay));
              location.hash = "#/datasets";
            }""",
            [job, delay_ms],
        )
        page.wait_for_timeout(2000)
        main = page.locator("#main")
        assert main.get_by_test_id("datasets-table").count() == 1
        assert main.get_by_test_id("job-status").count() == 0
        # The job page's events stream, if it was opened at all, was closed (aborted).
        assert [r.url for r in events if r not in ended] == []
        assert main.locator(":scope > *").count() == 1  # one page's container
    finally:
        cancel(stack, job)
