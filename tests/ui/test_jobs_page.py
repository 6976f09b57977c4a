"""The jobs list in a real browser: filters kept in the URL, the order by a final metric, cursor
paging, live status, and the compare button with the selected jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.stack import Stack
from tests.specs import DIGITS, SLOW_DIGITS
from tests.ui.helpers import expect, submit, wait_ended

pytestmark = pytest.mark.e2e

# The compare page belongs to another part of the dashboard: a stand-in shows the ids it got.
COMPARE_STUB = (
    "export function render(root, route) {"
    " const p = document.createElement('p'); p.dataset.testid = 'compared';"
    " p.textContent = route.query.get('ids'); root.append(p); }"
)


@pytest.fixture(scope="module")
def tagged(stack: Stack) -> Iterator[tuple[str, list[dict]]]:
    """Three finished jobs under a tag of their own, oldest first: 1, 1 and 2 epochs."""
    tag = f"ui-{uuid.uuid4().hex[:8]}"
    jobs = [
        submit(stack, DIGITS, [tag], epochs=epochs, seed=seed)
        for epochs, seed in ((1, 0), (1, 1), (2, 0))
    ]
    yield tag, [wait_ended(stack, j["id"]) for j in jobs]


def wait_rows(page: Any, ids: list[str]) -> None:
    """Until the table lists these jobs, in this order."""
    page.wait_for_function(
        "ids => [...document.querySelectorAll('[data-testid=jobs-table] tbody tr[data-job-id]')]"
        ".map(r => r.dataset.jobId).join() === ids.join()",
        arg=ids,
        timeout=10_000,
    )


def test_filters_stay_in_the_url_and_compare_takes_the_selected_jobs(
    page: Any, tagged: tuple[str, list[dict]]
) -> None:
    tag, jobs = tagged
    assert all(j["status"] == "succeeded" for j in jobs)
    page.goto("/#/jobs")
    page.get_by_test_id("filter-tag").fill(tag)
    page.get_by_test_id("filter-tag").press("Enter")
    newest_first = [j["id"] for j in reversed(jobs)]
    wait_rows(page, newest_first)

    page.get_by_test_id("filter-status").select_option("failed")
    expect(page.locator("main")).to_contain_text("No jobs match")
    wait_rows(page, [])
    page.get_by_test_id("filter-status").select_option("succeeded")
    wait_rows(page, newest_first)

    page.get_by_test_id("filter-param").fill("training.epochs=2")
    page.get_by_test_id("filter-param").press("Enter")
    wait_rows(page, [jobs[2]["id"]])
    assert "param=training.epochs%3D2" in page.url and "status=succeeded" in page.url
    page.reload()  # the filters come back from the URL
    wait_rows(page, [jobs[2]["id"]])
    assert page.get_by_test_id("filter-param").input_value() == "training.epochs=2"
    assert page.get_by_test_id("filter-status").input_value() == "succeeded"

    page.get_by_test_id("filter-param").fill("training.seed=1")
    page.get_by_test_id("filter-param").press("Enter")
    wait_rows(page, [jobs[1]["id"]])
    page.get_by_test_id("filter-param").fill("")
    page.get_by_test_id("filter-param").press("Enter")
    wait_rows(page, newest_first)
    ids = newest_first

    page.route(
        "**/ui/pages/compare.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=COMPARE_STUB),
    )
    compare = page.get_by_test_id("compare-selected")
    page.locator(f'tr[data-job-id="{ids[0]}"] input[data-select]').check()
    assert compare.is_disabled()  # one job is not a comparison
    page.locator(f'tr[data-job-id="{ids[2]}"] input[data-select]').check()
    compare.click()
    page.get_by_test_id("compared").wait_for()
    assert page.url.endswith(f"#/compare?ids={ids[0]},{ids[2]}")
    assert page.get_by_test_id("compared").inner_text() == f"{ids[0]},{ids[2]}"


def test_the_list_sorts_by_a_final_metric_and_pages_with_the_cursor(
    page: Any, tagged: tuple[str, list[dict]]
) -> None:
    tag, jobs = tagged
    by_loss = sorted(jobs, key=lambda j: j["summary"]["final"]["loss"])
    page.goto(f"/#/jobs?tag={tag}")
    wait_rows(page, [j["id"] for j in reversed(jobs)])
    page.get_by_test_id("order-by").fill("loss")
    page.get_by_test_id("order-by").press("Enter")
    page.wait_for_url("**metric=loss**")
    expect(page.get_by_test_id("jobs-table")).to_contain_text("final loss")
    wait_rows(page, [j["id"] for j in reversed(by_loss)])  # desc: the highest loss first
    page.get_by_test_id("order").select_option("asc")
    page.wait_for_url("**order=asc**")
    wait_rows(page, [j["id"] for j in by_loss])

    page.goto(f"/#/jobs?tag={tag}&limit=2")
    wait_rows(page, [jobs[2]["id"], jobs[1]["id"]])
    assert page.get_by_test_id("page-previous").is_disabled()
    page.get_by_test_id("page-next").click()
    page.wait_for_url("**cursor=**")
    wait_rows(page, [jobs[0]["id"]])
    assert page.get_by_test_id("page-next").is_disabled()
    page.get_by_test_id("page-previous").click()
    wait_rows(page, [jobs[2]["id"], jobs[1]["id"]])


def test_a_running_job_s_row_follows_its_status_without_a_reload(page: Any, stack: Stack) -> None:
    tag = f"ui-{uuid.uuid4().hex[:8]}"
    job = submit(stack, SLOW_DIGITS, [tag], epochs=15)
    page.goto(f"/#/jobs?tag={tag}")
    row = page.locator(f'tr[data-job-id="{job["id"]}"]')
    row.wait_for()
    assert row.get_attribute("data-status") in ("queued", "running")
    page.wait_for_selector(
        f'tr[data-job-id="{job["id"]}"][data-status="succeeded"]', timeout=30_000
    )
    assert "15/15" in row.inner_text()
