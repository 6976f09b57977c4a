"""The compare page: two jobs that differ in their learning rate, side by side."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack, wait_for_job
from tests.specs import DIGITS
from tests.ui.helpers import expect

pytestmark = pytest.mark.e2e


def num(value: Any) -> str:
    """lib/dom.js's num: JavaScript's toPrecision(4) for a fraction (1.235e+4 and 0.0001235
    beyond its range), grouped thousands for a whole number, the API's text ("NaN") as it is."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return f"{int(value):,}"
    mantissa, exponent = f"{value:.3e}".split("e")
    e = int(exponent)
    if e < -6 or e >= 4:
        return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return f"{value:.{3 - e}f}"


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

    # Each metric's final and best value per job, as GET /v1/compare gives them.
    metrics = page.get_by_test_id("compare-metrics")
    expect(metrics.locator("tbody tr")).to_have_count(2 * len(by_step["metrics"]))
    shown = {
        (cells[0], cells[1]): cells[2:]
        for cells in (r.locator("td").all_inner_texts() for r in metrics.locator("tbody tr").all())
    }
    expected = {}
    for name, per_job in by_step["metrics"].items():
        expected[(name, "final")] = [num(m and m["final"]) for m in per_job]
        expected[(name, "best")] = [
            f"{num(m['best'])} @ step {m['best_step']}" if m and m["best"] is not None else "-"
            for m in per_job
        ]
    assert shown == expected
    assert {"loss", "val_accuracy"} <= {name for name, _ in shown}

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
    assert "x=step" in page.url  # a reload keeps the axis
    points = sum(v is not None for run in by_step["series"]["loss"]["values"] for v in run)
    expect(page.get_by_test_id("chart-loss").locator(".uplot")).to_have_attribute(
        "data-points", str(points)
    )


def test_fewer_than_two_jobs_is_said_on_the_page(page: Any) -> None:
    page.goto("/#/compare?ids=only-one")
    expect(page.locator("main .error")).to_contain_text("choose 2 to 20 jobs")


def test_the_axis_survives_a_reload(page: Any, stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as client:
        ids = [client.post("/v1/jobs", json=digits(lr)).json()["id"] for lr in (0.001, 0.01)]
        for job_id in ids:
            wait_for_job(client, job_id, {"succeeded"}, 60, stack)
    page.goto(f"/#/compare?ids={','.join(ids)}")
    page.get_by_test_id("x-axis").select_option("step")
    expect(page.get_by_test_id("chart-loss")).to_contain_text("step")
    page.reload()
    expect(page.get_by_test_id("x-axis")).to_have_value("step")
    expect(page.get_by_test_id("chart-loss")).to_contain_text("step")
