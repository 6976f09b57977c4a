"""A sweep's trials ranked by its metric: each trial's best value over its epochs (per goal).

Trials without a finite value of the metric (not started, failed early) come after the ranked
ones, unranked, in trial order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.store import sweeps as sweep_store
from core.store.models import Sweep


@dataclass(frozen=True)
class Entry:
    rank: int | None
    job_id: str
    number: int
    status: str
    value: float | None
    epoch: int | None  # the epoch of the best value
    epochs_run: int
    params: dict[str, Any]


def leaderboard(session: Session, sweep: Sweep) -> list[Entry]:
    metric = sweep.spec["metric"]
    maximize = metric["goal"] == "maximize"
    best = sweep_store.best_values(
        session, sweep_id=sweep.id, name=metric["name"], maximize=maximize
    )
    ranked, unranked = [], []
    for trial, job in sweep_store.trials(session, sweep_id=sweep.id):
        value, epoch = best.get(job.id, (None, None))
        epochs_run = job.summary.get("epochs_run", job.progress.get("epoch", 0))
        entry = (trial.number, job.id, job.status, value, epoch, epochs_run, trial.params)
        (ranked if value is not None else unranked).append(entry)
    ranked.sort(key=lambda e: (-e[3] if maximize else e[3], e[0]))
    return [
        Entry(i + 1, job_id, number, status, value, epoch, epochs, params)
        for i, (number, job_id, status, value, epoch, epochs, params) in enumerate(ranked)
    ] + [
        Entry(None, job_id, number, status, None, None, epochs, params)
        for number, job_id, status, _, _, epochs, params in unranked
    ]
