"""`Client` sweeps against a real API and worker: create, wait, leaderboard, trials, compare,
pause/resume/cancel and a refused spec. Tiny MLPs on moons, 2 epochs, so a sweep takes seconds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("core.sweeps")  # runs once the sweep engine is merged

from epochal_client import Client, EpochalAPIError, SweepRun
from tests.specs import moons_mlp

pytestmark = pytest.mark.e2e

LR = "training.optimizer.learning_rate"


def moons(epochs: int = 2) -> dict[str, Any]:
    return {"name": "moons-mlp", **moons_mlp(epochs)}


def grid(tag: str, rates: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "name": f"grid-{tag}",
        "tags": [tag],
        "base": moons(),
        "method": "grid",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {LR: {"values": rates}},
        "max_parallel": 2,
        **extra,
    }


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    with Client(url, retries=1) as c:
        yield c


def test_a_grid_sweep_runs_to_a_ranked_leaderboard(client: Client) -> None:
    tag = f"sw-{uuid.uuid4().hex[:8]}"
    rates = [0.001, 0.01, 0.1]
    run = client.sweep(grid(tag, rates))
    assert isinstance(run, SweepRun) and run.state.method == "grid" and run.state.run_cap == 3
    seen: list[int] = []
    sweep = run.wait(timeout=120, poll=0.2, on_progress=lambda s: seen.append(s.counts.done))
    assert sweep.status == "finished" and sweep.finished_at is not None
    assert (sweep.trials, sweep.counts.succeeded, sweep.counts.total) == (3, 3, 3)
    assert seen == sorted(seen) and seen[-1] == 3

    board = run.leaderboard()
    assert [t.rank for t in board.trials] == [1, 2, 3]
    values = [t.value for t in board.trials]
    assert values == sorted(values, reverse=True)  # maximize
    assert sorted(t.params[LR] for t in board.trials) == rates
    assert all(t.epochs_run == 2 for t in board.trials)
    best = run.best()
    assert best is not None and sweep.best is not None
    assert (best.job_id, best.value) == (sweep.best.job_id, sweep.best.value)
    assert best.params == sweep.best.params
    assert len(run.leaderboard(limit=1).trials) == 1

    # The trials are ordinary jobs carrying the sweep's id, its tags and their values.
    trials = run.trials()
    assert {j.id for j in trials} == {t.job_id for t in board.trials}
    for job in trials:
        assert job.sweep_id == run.id and tag in job.tags and job.status == "succeeded"
    by_id = {j.id: j for j in trials}
    winner = by_id[best.job_id]
    assert winner.spec["training"]["optimizer"]["learning_rate"] == best.params[LR]
    assert winner.best["val_accuracy"] == pytest.approx(best.value)
    assert client.list(sweep_id=run.id, status="succeeded", limit=10).items

    comparison = run.compare(top=2)
    assert [j.id for j in comparison.jobs] == [t.job_id for t in board.trials[:2]]
    assert LR in comparison.params

    assert run.id in {s.id for s in client.list_sweeps(status="finished").items}
    assert client.get_sweep(run.id).counts == sweep.counts


def test_pause_resume_and_cancel_a_sweep(client: Client) -> None:
    tag = f"sw-{uuid.uuid4().hex[:8]}"
    spec = grid(tag, [0.001, 0.002, 0.003, 0.004, 0.005], max_parallel=1)
    spec["base"]["training"]["epochs"] = 2000  # long enough to still be running
    run = client.sweep(spec)
    assert run.pause().status == "paused"
    assert run.id in {s.id for s in client.list_sweeps(status="paused").items}
    assert run.resume().status == "running"
    assert run.cancel().status == "cancelled"
    sweep = run.wait(timeout=60, poll=0.2)
    assert sweep.status == "cancelled" and sweep.counts.succeeded == 0 and sweep.trials < 5
    for job in client.iter_jobs(sweep_id=run.id):
        assert client.wait(job.id, timeout=60, poll=0.2).status == "cancelled"
    with pytest.raises(EpochalAPIError) as e:
        run.resume()
    assert e.value.status == 409


def test_a_parameter_that_cannot_apply_is_refused_naming_its_path(client: Client) -> None:
    spec = grid("bad", [0.01])
    spec["parameters"]["model.layers[5].units"] = {"values": [4, 8]}  # two layers only
    with pytest.raises(EpochalAPIError) as e:
        client.create_sweep(spec)
    assert e.value.status == 422 and "model.layers[5].units" in str(e.value)
    with pytest.raises(EpochalAPIError) as e:
        client.get_sweep("no-such-sweep")
    assert e.value.status == 404
