"""What issue 15 added, on a job's page and a sweep's: the learning-rate finder's curve against
the rate with its suggestions and a clone at the suggested rate, why a job stopped on its
health (training.stop_on), the initial-loss pre-flight among the warnings, and why a sweep's
trial was pruned on health."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.stack import Stack
from tests.specs import DIGITS, moons_mlp
from tests.ui.helpers import cancel, expect, submit, wait_ended

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "examples"
LR = "training.optimizer.learning_rate"


def deep_sigmoid(epochs: int) -> dict[str, Any]:
    spec = yaml.safe_load((EXAMPLES / "diagnostics_deep_sigmoid.yaml").read_text())
    spec["training"]["epochs"] = epochs
    return spec


def test_the_lr_finder_s_curve_suggestion_and_clone_at_the_suggested_rate(
    page: Any, stack: Stack
) -> None:
    # A numeric learning rate: the job is the range test alone.
    job = wait_ended(stack, submit(stack, DIGITS, lr_finder={"steps": 30})["id"])
    assert job["status"] == "succeeded", job
    found = job["summary"]["lr_finder"]
    series = httpx.get(
        f"{stack.url}/v1/jobs/{job['id']}/metrics", params={"names": "lr_finder/lr"}
    ).json()["series"]
    n = len(series[0]["steps"])
    assert 3 <= n <= 30

    page.goto(f"/#/jobs/{job['id']}")
    chart = page.locator('[data-testid="chart-lr_finder"] .uplot')
    chart.wait_for()
    # The smoothed and the raw loss, a point per step each (the diverged step's raw loss may
    # and the smoothed one be gaps), and a mark per suggestion (steepest, valley, lowest loss,
    # lowest / 10).
    drawn = int(chart.get_attribute("data-points") or 0)
    assert 2 * n - 2 <= drawn <= 2 * n + 4, (drawn, n)
    text = page.get_by_test_id("chart-lr_finder").inner_text()
    assert "learning rate" in text and "valley (fastai)" in text
    suggested = page.locator('[data-testid="lr-suggestions"] [data-suggestion="suggested_lr"] td')
    assert float(suggested.get_attribute("data-value") or "nan") == found["suggested_lr"]
    for key in ("steepest_lr", "valley_lr", "min_loss_lr", "min_lr_div_10"):
        row = page.locator(f'[data-testid="lr-suggestions"] [data-suggestion="{key}"] td')
        assert float(row.get_attribute("data-value") or "nan") == found[key]
    # The finder's series are not drawn again among the curves by step.
    assert page.locator('[data-testid^="chart-lr_finder/"]').count() == 0

    page.get_by_test_id("clone-suggested").click()
    page.wait_for_url(re.compile(r"#/jobs/(?!" + job["id"] + ")"))
    clone_id = page.url.rsplit("/", 1)[1]
    try:
        clone = httpx.get(f"{stack.url}/v1/jobs/{clone_id}").json()
        assert clone["source_job_id"] == job["id"]
        assert clone["spec"]["training"]["optimizer"]["learning_rate"] == found["suggested_lr"]
        assert not clone["spec"]["training"].get("lr_finder")
        expect(page.get_by_test_id("job-spec")).to_contain_text("learning_rate:")
    finally:  # its 20 epochs are not this test's: the next tests' jobs must not wait behind it
        cancel(stack, clone_id)
    wait_ended(stack, clone_id)


def test_a_job_stopped_on_its_health_shows_why(page: Any, stack: Stack) -> None:
    job = submit(stack, deep_sigmoid(6), stop_on=["vanishing_gradients"])
    job = wait_ended(stack, job["id"])
    assert job["status"] == "succeeded", job
    stopped = job["summary"]["stopped_on"]
    assert stopped["type"] == "vanishing_gradients"

    page.goto(f"/#/jobs/{job['id']}")
    box = page.get_by_test_id("job-stop-reason").locator('[data-stopped-on="vanishing_gradients"]')
    expect(box).to_contain_text("Stopped on vanishing gradients")
    text = box.inner_text()
    assert f"layer {stopped['layer']}" in text and f"epoch {stopped['epoch']}" in text
    assert page.get_by_test_id("stop-reason-text").inner_text() == job["summary"]["stop_reason"]


def test_the_initial_loss_warning_is_among_the_job_s_warnings(page: Any, stack: Stack) -> None:
    spec = {"name": "bad-init", **moons_mlp(1)}
    # Logits in the hundreds: the first loss is far above ln 2, whatever the draw.
    spec["model"]["layers"][-1]["kernel_initializer"] = {"type": "random_normal", "stddev": 100}
    job = wait_ended(stack, submit(stack, spec)["id"])
    assert job["status"] == "succeeded", job
    page.goto(f"/#/jobs/{job['id']}")
    warning = page.get_by_test_id("job-warnings").locator('[data-warning="initial_loss"]')
    expect(warning).to_have_count(1)
    assert "dense_1" in warning.inner_text() and "untrained classifier" in warning.inner_text()


def test_a_trial_pruned_on_health_shows_why_on_the_sweep_s_page(page: Any, stack: Stack) -> None:
    sweep = {
        "name": "ui-health",
        "base": deep_sigmoid(6),
        "method": "grid",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {LR: {"values": [0.1]}},
        "early_terminate": {"type": "health", "on": ["vanishing_gradients"]},
        "max_parallel": 1,
    }
    r = httpx.post(f"{stack.url}/v1/sweeps", json=sweep)
    assert r.status_code == 201, r.text
    page.goto(f"/#/sweeps/{r.json()['id']}")
    expect(page.get_by_test_id("sweep-status")).to_have_text("finished", timeout=90_000)
    reason = page.get_by_test_id("leaderboard").get_by_test_id("pruned-reason")
    expect(reason).to_have_count(1)
    assert reason.get_attribute("data-rule") == "health"
    assert re.match(r"by health at epoch \d+: .*vanishing_gradients.*dense_0", reason.inner_text())
