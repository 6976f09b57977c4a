"""A sweep's trials ranked by its metric: each trial's best value over its epochs (per goal).

Trials without a finite value of the metric (not started, failed early) come after the ranked
ones, unranked, in trial order. A pruned trial carries why (its job's `summary.pruned`: epoch,
rule and reason), so a reader of the leaderboard needs no request per trial.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    pruned: dict[str, Any] | None = None  # the job's summary.pruned: {epoch, rule, reason}


def leaderboard(session: Session, sweep: Sweep) -> list[Entry]:
    metric = sweep.spec["metric"]
    maximize = metric["goal"] == "maximize"
    best = sweep_store.best_values(
        session, sweep_id=sweep.id, name=metric["name"], maximize=maximize
    )
    ranked: list[tuple[float, Entry]] = []
    unranked: list[Entry] = []
    for trial, job in sweep_store.trials(session, sweep_id=sweep.id):
        value, epoch = best.get(job.id, (None, None))
        entry = Entry(
            rank=None,
            job_id=job.id,
            number=trial.number,
            status=job.status,
            value=value,
            epoch=epoch,
            epochs_run=job.summary.get("epochs_run", job.progress.get("epoch", 0)),
            params=trial.params,
            pruned=job.summary.get("pruned"),
        )
        if value is None:
            unranked.append(entry)
        else:
            ranked.append((value, entry))
    ranked.sort(key=lambda v_e: (-v_e[0] if maximize else v_e[0], v_e[1].number))
    return [replace(e, rank=i + 1) for i, (_, e) in enumerate(ranked)] + unranked
