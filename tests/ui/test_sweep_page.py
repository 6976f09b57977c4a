"""The sweeps list and a sweep's page: a small grid sweep paused and resumed from its buttons,
then its leaderboard, trial curves and parameter scatter once the trials finish."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.specs import moons_mlp
from tests.ui.helpers import expect

pytestmark = pytest.mark.e2e

LR = "training.optimizer.learning_rate"
RATES = [0.003, 0.01, 0.03, 0.1]


def grid() -> dict[str, Any]:
    # One trial at a time, each long enough (tens of epochs) for the page to pause the sweep
    # while it still runs.
    return {
        "name": "ui-grid",
        "base": {"name": "moons-mlp", **moons_mlp(60)},
        "method": "grid",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {LR: {"values": RATES}},
        "max_parallel": 1,
    }


def test_a_sweep_is_paused_and_resumed_from_its_page_and_ranks_its_trials(
    page: Any, stack: Stack
) -> None:
    r = httpx.post(f"{stack.url}/v1/sweeps", json=grid())
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]

    page.goto("/#/sweeps")
    row = page.get_by_test_id("sweeps-table").locator(f'tr[data-sweep-id="{sweep_id}"]')
    expect(row).to_contain_text("ui-grid")
    row.get_by_role("link", name=sweep_id).click()

    status = page.get_by_test_id("sweep-status")
    expect(status).to_have_text("running")
    page.get_by_test_id("pause").click()
    expect(status).to_have_text("paused")
    expect(page.get_by_test_id("pause")).to_be_disabled()
    page.get_by_test_id("resume").click()
    expect(status).to_have_text("running")

    expect(status).to_have_text(
        "finished", timeout=150_000
    )  # the page refreshes itself (slow when loaded)
    expect(page.get_by_test_id("sweep-counts")).to_contain_text("4/4 done")
    board = page.get_by_test_id("leaderboard").locator("tbody tr[data-job-id]")
    expect(board).to_have_count(4)
    ranks = [board.nth(i).locator("td").first.inner_text() for i in range(4)]
    assert ranks == ["1", "2", "3", "4"]
    shown_rates = sorted(float(board.nth(i).locator("td").nth(6).inner_text()) for i in range(4))
    assert shown_rates == RATES
    # The trials' curves: 60 epochs each; the scatter: one point per trial.
    curves = page.get_by_test_id("chart-trials").locator(".uplot")
    expect(curves).to_have_attribute("data-points", str(4 * 60))
    expect(page.get_by_test_id("chart-params").locator(".uplot")).to_have_attribute(
        "data-points", "4"
    )
    expect(page.get_by_test_id("cancel")).to_be_disabled()
