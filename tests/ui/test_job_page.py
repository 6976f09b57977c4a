"""A job's page in a real browser: its curves grow while it trains, it shows the summary, the
spec and the diagnostics' warnings, its buttons cancel, resume and clone it, and a long
batch_loss is read downsampled to the chart's width."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml

from tests.e2e.stack import Stack
from tests.specs import DIGITS, SLOW_DIGITS
from tests.ui.helpers import cancel, expect, submit, wait_ended

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "examples"


def points(page: Any, chart: str) -> int:
    root = page.locator(f'[data-testid="chart-{chart}"] .uplot')
    return int(root.get_attribute("data-points") or 0)


def wait_points_above(page: Any, chart: str, n: int, timeout: float = 20_000) -> int:
    page.wait_for_function(
        """([chart, n]) => {
            const root = document.querySelector(`[data-testid="chart-${chart}"] .uplot`);
            return root && Number(root.dataset.points) > n;
        }""",
        arg=[chart, n],
        timeout=timeout,
    )
    return points(page, chart)


def test_the_curves_grow_while_the_job_trains_and_it_succeeds(page: Any, stack: Stack) -> None:
    job = submit(stack, SLOW_DIGITS, epochs=25)
    page.goto(f"/#/jobs/{job['id']}")
    first = wait_points_above(page, "loss", 0, timeout=60_000)  # a fresh worker starts slowly
    assert page.get_by_test_id("job-status").inner_text() in ("queued", "running")
    later = wait_points_above(page, "loss", first)  # drawn from the events, without a reload
    assert later > first
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=30_000)
    # Every epoch's loss and val_loss, once each, after the end.
    expect(page.locator('[data-testid="chart-loss"] .uplot')).to_have_attribute("data-points", "50")
    assert points(page, "accuracy") == 50
    assert "epoch 25/25" in page.get_by_test_id("job-progress").inner_text()

    summary = page.get_by_test_id("job-summary").inner_text()
    layers = httpx.get(f"{stack.url}/v1/jobs/{job['id']}").json()["summary"]
    for layer in layers["layers"]:
        assert layer["name"] in summary
    assert f"{layers['parameter_count']:,}" in page.get_by_test_id("parameter-count").inner_text()
    spec = yaml.safe_load(page.get_by_test_id("job-spec").inner_text())
    assert spec == httpx.get(f"{stack.url}/v1/jobs/{job['id']}").json()["spec"]
    assert page.get_by_test_id("job-warnings").locator("[data-warning]").count() == 0
    for fmt in ("safetensors", "onnx", "torchscript"):
        link = page.get_by_test_id(f"download-{fmt}")
        assert f"format={fmt}" in (link.get_attribute("href") or "")
    with page.expect_download() as download:
        page.get_by_test_id("download-safetensors").click()
    assert download.value.suggested_filename.endswith(".safetensors")

    page.get_by_test_id("x-axis").select_option("epoch")
    expect(page.get_by_test_id("chart-loss")).to_contain_text("epoch")
    assert wait_points_above(page, "loss", 49) == 50
    page.get_by_test_id("log-scale").check()
    assert points(page, "loss") == 50


def test_the_buttons_cancel_resume_and_clone_a_job(page: Any, stack: Stack) -> None:
    job = submit(stack, SLOW_DIGITS, epochs=1000)
    try:
        page.goto(f"/#/jobs/{job['id']}")
        expect(page.get_by_test_id("job-status")).to_have_text("running", timeout=60_000)
        page.get_by_test_id("cancel").click()
        expect(page.get_by_test_id("job-status")).to_have_text("cancelled", timeout=20_000)
    finally:  # the next tests' jobs must not wait behind this one
        cancel(stack, job["id"])
    assert httpx.get(f"{stack.url}/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    assert page.get_by_test_id("cancel").count() == 0

    # Resumed, it is queued again and the page follows it until it is cancelled once more.
    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("job-status")).to_have_text(re.compile("queued|running"))
    page.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("job-status")).to_have_text("cancelled", timeout=20_000)
    assert wait_ended(stack, job["id"])["status"] == "cancelled"

    # Clone it with an override: the page moves to the new job, whose spec has the override.
    page.get_by_test_id("clone").click()
    page.get_by_test_id("clone-overrides").fill("training.epochs=1\ntraining.seed=7")
    page.get_by_test_id("clone-submit").click()
    page.wait_for_url(re.compile(r"#/jobs/(?!" + job["id"] + ")"))
    clone_id = page.url.rsplit("/", 1)[1]
    clone = wait_ended(stack, clone_id)
    assert clone["source_job_id"] == job["id"]
    assert clone["spec"]["training"]["epochs"] == 1 and clone["spec"]["training"]["seed"] == 7
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=20_000)
    assert "epochs: 1" in page.get_by_test_id("job-spec").inner_text()


def test_the_diagnostics_warnings_and_gradient_norms_are_shown(page: Any, stack: Stack) -> None:
    spec = yaml.safe_load((EXAMPLES / "diagnostics_deep_sigmoid.yaml").read_text())
    job = wait_ended(stack, submit(stack, spec, epochs=2)["id"])
    assert job["status"] == "succeeded"
    page.goto(f"/#/jobs/{job['id']}")
    warning = page.get_by_test_id("job-warnings").locator('[data-warning="vanishing_gradients"]')
    warning.first.wait_for()
    assert "dense_0" in warning.first.inner_text()
    assert warning.count() == len(job["summary"]["diagnostics"]["warnings"])
    # One gradient-norm curve per layer, every point of each.
    series = httpx.get(f"{stack.url}/v1/jobs/{job['id']}/metrics").json()["series"]
    norms = [s for s in series if s["name"].startswith("diag/grad_norm/")]
    assert len(norms) == len(job["summary"]["layers"])
    assert wait_points_above(page, "grad_norms", 0) == sum(len(s["steps"]) for s in norms)
    legend = page.get_by_test_id("chart-grad_norms").inner_text()
    assert "dense_0" in legend and "dense_10" in legend


def test_a_long_batch_loss_is_read_downsampled_to_the_chart_s_width(
    page: Any, stack: Stack
) -> None:
    job = wait_ended(stack, submit(stack, DIGITS, epochs=2, batch_size=1)["id"])
    steps = job["progress"]["step"]
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/metrics" in r.url else None)
    page.goto(f"/#/jobs/{job['id']}")
    drawn = wait_points_above(page, "batch_loss", 0)
    assert asked, "the page did not ask for the metrics"
    queries = [parse_qs(urlparse(u).query) for u in asked]
    assert all("max_points" in q for q in queries), asked
    max_points = int(queries[0]["max_points"][0])
    assert 100 <= max_points < steps
    # The buckets' last values with their min and max: at most three numbers a bucket.
    assert drawn <= 3 * max_points < 3 * steps
    assert re.search(r"batch loss", page.get_by_test_id("chart-batch_loss").inner_text())


def test_a_series_that_turns_nan_stops_there_and_says_from_where(page: Any) -> None:
    """lib/chart.js on its own, in the dashboard's document: a loss that diverges at step 3 is
    not drawn over (2 points, not 4 bridged) and its legend says "NaN from step 3"."""
    page.goto("/#/jobs")
    note = page.evaluate(
        """async () => {
          const { lineChart } = await import("/ui/lib/chart.js");
          const box = document.createElement("div");
          document.body.append(box);
          const chart = lineChart(box, { xLabel: "step", series: [
            { label: "loss", x: [1, 2], y: [1.5, 1.2] },
            { label: "val_loss", x: [1, 2], y: [1.6, 1.3] },
          ] });
          const before = [chart.points(), box.innerText];
          chart.update([
            { label: "loss", x: [1, 2, 3, 4], y: [1.5, 1.2, NaN, Infinity] },
            { label: "val_loss", x: [1, 2, 3, 4], y: [1.6, 1.3, 1.1, 1.0] },
          ]);
          const root = box.querySelector(".uplot");
          return { before, points: chart.points(), text: box.innerText,
                   nonFinite: root.dataset.nonFinite };
        }"""
    )
    assert note["before"][0] == 4 and "NaN" not in note["before"][1]
    assert note["points"] == 2 + 4
    assert "loss (NaN from step 3)" in note["text"]
    assert note["nonFinite"] == "loss: NaN from step 3"


def test_the_gradient_norms_warn_while_the_job_runs(page: Any, stack: Stack) -> None:
    """The diagnostics write their warnings at the end; the page says what the gradient norms
    already show (a live note) while the job runs."""
    spec = yaml.safe_load((EXAMPLES / "diagnostics_deep_sigmoid.yaml").read_text())
    job = submit(stack, spec, epochs=1000)
    try:
        page.goto(f"/#/jobs/{job['id']}")
        live = page.locator('[data-testid="job-warnings"] [data-warning="vanishing_gradients"]')
        expect(live.first).to_be_visible(timeout=30_000)
        assert live.first.get_attribute("data-live") == ""
        assert "(live)" in live.first.inner_text().lower()  # the CSS capitalizes it
        assert any("(dense_0, step" in text for text in live.all_inner_texts())
        assert page.get_by_test_id("job-status").inner_text() == "running"
    finally:  # the next tests' jobs must not wait behind this one
        cancel(stack, job["id"])
    wait_ended(stack, job["id"])
