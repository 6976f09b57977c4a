"""The compare page: two jobs that differ in their learning rate, side by side."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) saying what to install
    expect = None

from tests.e2e.stack import Stack, wait_for_job
from tests.specs import DIGITS

pytestmark = pytest.mark.e2e


def digits(lr: float) -> dict[str, Any]:
    spec = copy.deepcopy(DIGITS)
    spec["training"].update(epochs=2, optimizer={"type": "adam", "learning_rate": lr})
    return spec


def test_two_jobs_show_their_differing_parameter_curves_and_values(page: Any, stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as client:
        ids = [client.post("/v1/jobs", json=digits(lr)).json()["id"] for lr in (0.001, 0.01)]
        for job_id in ids:
            wait_for_job(client, job_id, {"succeeded"}, 60, stack)
        by_step = client.get("/v1/compare", params={"ids": ",".join(ids), "x": "step"}).json()
    page.goto(f"/#/compare?ids={','.join(ids)}")

    params = page.get_by_test_id("compare-params")
    row = params.locator("tr", has_text="training.optimizer.learning_rate")
    expect(row).to_have_count(1)
    assert row.locator("td").all_inner_texts() == [
        "training.optimizer.learning_rate",
        "0.001",
        "0.01",
    ]
    assert params.locator("tbody tr").count() == 1  # nothing else differs (name, tags aside)
    headers = params.locator("th").all_inner_texts()
    assert [h.split(" (")[1].rstrip(")") for h in headers[1:]] == [i[:8] for i in ids]

    metrics = page.get_by_test_id("compare-metrics")
    final_loss = metrics.locator("tr", has_text="loss").filter(has_text="final").first
    assert len(final_loss.locator("td").all_inner_texts()) == 4  # metric, kind, one per job

    # One curve per job on each chart: 2 epochs each by epoch...
    loss = page.get_by_test_id("chart-loss").locator(".uplot")
    expect(loss).to_have_attribute("data-points", "4")
    expect(page.get_by_test_id("chart-val_accuracy").locator(".uplot")).to_have_attribute(
        "data-points", "4"
    )
    assert "epoch" in page.get_by_test_id("chart-loss").inner_text()
    # ... and by step on request: the page asks the API again (x=step), same points, step axis.
    page.get_by_test_id("x-axis").select_option("step")
    expect(page.get_by_test_id("chart-loss")).to_contain_text("step")
    points = sum(v is not None for run in by_step["series"]["loss"]["values"] for v in run)
    expect(page.get_by_test_id("chart-loss").locator(".uplot")).to_have_attribute(
        "data-points", str(points)
    )


def test_fewer_than_two_jobs_is_said_on_the_page(page: Any) -> None:
    page.goto("/#/compare?ids=only-one")
    expect(page.locator("main .error")).to_contain_text("choose 2 to 20 jobs")
