"""Early termination of sweep trials, decided from the metric points already in SQL.

- hyperband (asynchronous successive halving, ASHA): rungs at min_iter * eta^k epochs. A trial
  that reaches a rung competes with every trial of its sweep that reached it before (running,
  finished or pruned). It goes on only if it ranks within the top len/eta of them, or is the
  best when fewer than eta have reached the rung: Optuna's SuccessiveHalvingPruner rule. No
  trial waits for others, so the sweep never stalls.
- median: from epoch min_iter on, a trial whose value is worse than the median of the other
  trials' values at the same epoch stops (once `min_trials` others have reached that epoch).

- health: a trial found in one of the listed health conditions stops and ends pruned; the
  trial's own `HealthStop` decides (core/training/health.py), the runner marks it pruned.

The decisions are pure functions of the values; `decide` reads those values for one epoch.
A NaN counts as the worst value.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.store.metrics import decode_value
from core.store.models import MetricPoint, Sweep, SweepTrial
from core.sweeps.spec import Health, Hyperband, Median, SweepSpec
from core.training.callbacks import Callback, TrainState


@dataclass(frozen=True)
class Decision:
    stop: bool
    reason: str = ""


def rungs(min_iter: int, eta: int, epochs: int) -> list[int]:
    """The epochs at which hyperband decides; a rung at or past the last epoch decides nothing."""
    found, rung = [], min_iter
    while rung < epochs:
        found.append(rung)
        rung *= eta
    return found


def _comparable(value: float, maximize: bool) -> float:
    """Larger is better; NaN is the worst."""
    if math.isnan(value):
        return -math.inf
    return value if maximize else -value


def asha(value: float, reached: list[float], eta: int, maximize: bool) -> Decision:
    """`reached`: the values of every trial at this rung, this one's included."""
    ranked = sorted((_comparable(v, maximize) for v in reached), reverse=True)
    keep = max(len(ranked) // eta, 1)
    bar = ranked[keep - 1]
    if _comparable(value, maximize) >= bar:
        return Decision(False)
    shown = -bar if not maximize and math.isfinite(bar) else bar
    return Decision(
        True,
        f"not in the top {keep} of {len(ranked)} trials at this rung (eta={eta}); "
        f"value {value:.6g}, needed {shown:.6g}",
    )


def median_rule(value: float, others: list[float], maximize: bool, min_trials: int) -> Decision:
    if len(others) < min_trials:
        return Decision(False)
    middle = statistics.median(_comparable(v, maximize) for v in others)
    if _comparable(value, maximize) >= middle:
        return Decision(False)
    shown = -middle if not maximize and math.isfinite(middle) else middle
    return Decision(
        True, f"value {value:.6g} worse than the median {shown:.6g} of {len(others)} other trials"
    )


def values_at_epoch(session: Session, *, sweep_id: str, name: str, epoch: int) -> dict[str, float]:
    """Each trial's value of a per-epoch series at `epoch`, by job id."""
    rows = session.execute(
        select(MetricPoint.job_id, MetricPoint.value, MetricPoint.kind)
        .join(SweepTrial, SweepTrial.job_id == MetricPoint.job_id)
        .where(
            SweepTrial.sweep_id == sweep_id,
            MetricPoint.name == name,
            MetricPoint.epoch == epoch,
        )
        .order_by(MetricPoint.step)
    )
    return {job_id: decode_value(value, kind) for job_id, value, kind in rows}


@dataclass(frozen=True)
class PruningRule:
    sweep_id: str
    metric: str
    maximize: bool
    rule: Hyperband | Median | Health

    def decides_at(self, epoch: int, epochs: int) -> bool:
        if isinstance(self.rule, Health):
            return False  # not from the sweep's points: the trial's HealthStop decides
        if isinstance(self.rule, Hyperband):
            return epoch in rungs(self.rule.min_iter, self.rule.eta, epochs)
        return self.rule.min_iter <= epoch < epochs

    def decide(self, session: Session, *, job_id: str, epoch: int) -> Decision:
        values = values_at_epoch(session, sweep_id=self.sweep_id, name=self.metric, epoch=epoch)
        if job_id not in values:
            return Decision(False)  # this trial does not record the metric: nothing to compare
        own = values[job_id]
        if isinstance(self.rule, Hyperband):
            return asha(own, list(values.values()), self.rule.eta, self.maximize)
        others = [v for j, v in values.items() if j != job_id]
        return median_rule(own, others, self.maximize, self.rule.min_trials)


def rule_for(session: Session, *, job_id: str) -> PruningRule | None:
    """The early-termination rule of the sweep this job is a trial of, if any."""
    row = session.execute(
        select(Sweep.id, Sweep.spec)
        .join(SweepTrial, SweepTrial.sweep_id == Sweep.id)
        .where(SweepTrial.job_id == job_id)
    ).first()
    if row is None or not row.spec.get("early_terminate"):
        return None
    spec = SweepSpec.model_validate(row.spec)
    assert spec.early_terminate is not None
    return PruningRule(
        row.id, spec.metric.name, spec.metric.goal == "maximize", spec.early_terminate
    )


class Pruner(Callback):
    """At each deciding epoch: write the epoch's points (`sync`), then ask the rule. A trial
    told to stop ends its training as early stopping would, and `pruned` says why."""

    def __init__(self, rule: PruningRule, sessions: sessionmaker[Session], job_id: str, sync: Any):
        self.rule = rule
        self.sessions = sessions
        self.job_id = job_id
        self.sync = sync
        self.pruned: dict[str, Any] | None = None

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        if state.stop_training or not self.rule.decides_at(state.epoch, state.epochs):
            return  # already stopping (early stopping): the trial ends as such, not pruned
        self.sync()
        with self.sessions() as session:
            decision = self.rule.decide(session, job_id=self.job_id, epoch=state.epoch)
        if not decision.stop:
            return
        kind = "hyperband" if isinstance(self.rule.rule, Hyperband) else "median"
        self.pruned = {"epoch": state.epoch, "rule": kind, "reason": decision.reason}
        state.stop_training = True
        state.stop_reason = f"pruned by {kind} at epoch {state.epoch}: {decision.reason}"
