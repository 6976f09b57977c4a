"""Response models of /v1/sweeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from api.schemas import json_float
from core.store.models import Sweep
from core.sweeps.leaderboard import Entry


class MetricOut(BaseModel):
    name: str
    goal: str


class BestOut(BaseModel):
    job_id: str
    value: float | str
    params: dict[str, Any]


class SweepOut(BaseModel):
    id: str
    name: str
    status: str
    method: str
    metric: MetricOut
    run_cap: int
    max_parallel: int
    trials: int  # created so far
    counts: dict[str, int]  # trials per job status
    best: BestOut | None  # the leader so far; null until a trial has the metric
    spec: dict[str, Any]  # normalized, seeds included
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, sweep: Sweep, counts: dict[str, int], leader: Entry | None) -> SweepOut:
        best = None
        if leader is not None and leader.value is not None:
            best = BestOut(
                job_id=leader.job_id, value=json_float(leader.value), params=leader.params
            )
        return cls(
            id=sweep.id,
            name=sweep.name,
            status=sweep.status,
            method=sweep.method,
            metric=MetricOut(**sweep.spec["metric"]),
            run_cap=sweep.run_cap,
            max_parallel=sweep.max_parallel,
            trials=sweep.trials,
            counts=counts,
            best=best,
            spec=sweep.spec,
            created_at=sweep.created_at,
            finished_at=sweep.finished_at,
        )


class SweepPage(BaseModel):
    items: list[SweepOut]
    next_cursor: str | None


class PrunedOut(BaseModel):
    """Why a trial was pruned: its job's `summary.pruned`."""

    epoch: int  # the epoch it stopped after
    rule: str  # the sweep's early_terminate type: hyperband, median or health
    reason: str | None  # the rule's words (a health condition's layer and figure included)


class TrialOut(BaseModel):
    rank: int | None
    job_id: str
    trial: int  # its number in the sweep
    status: str
    value: float | str | None
    epoch: int | None  # the epoch of its best value
    epochs_run: int
    params: dict[str, Any]
    pruned: PrunedOut | None  # why it was pruned; null unless pruned

    @classmethod
    def of(cls, e: Entry) -> TrialOut:
        value = json_float(e.value) if e.value is not None else None
        return cls(
            rank=e.rank,
            job_id=e.job_id,
            trial=e.number,
            status=e.status,
            value=value,
            epoch=e.epoch,
            epochs_run=e.epochs_run,
            params=e.params,
            pruned=PrunedOut.model_validate(e.pruned) if e.pruned else None,
        )


class LeaderboardOut(BaseModel):
    sweep_id: str
    metric: MetricOut
    trials: list[TrialOut]
