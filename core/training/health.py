"""`HealthStop`: end a job on what its diagnostics find, or on its loss diverging
(`training.stop_on`, and a sweep's `early_terminate: {type: health}`).

A condition is counted per epoch: an epoch "has" it when a measurement in it found it (any
layer). The job stops at the end of the epoch in which the condition has been found in
`patience` + 1 successive measured epochs; an epoch without a diagnostics measurement (one
shorter than `every_n_steps`) neither counts nor breaks the run. The vanishing, exploding and
dead-ReLU findings, and their thresholds, are the diagnostics' (core/training/diagnostics.py).

`divergence`, judged on every step's training loss:

- a NaN or infinite loss ends the job at once, whatever the patience, and FAILED (error type
  `divergence`, as without stop_on): the weights are NaN too, no later epoch can recover and
  nothing usable is saved. `stopped_on` names it all the same;
- or the smoothed loss above DIVERGENCE_FACTOR (4) times its lowest and above its first value:
  a finite blow-up, which stops the job as early stopping does (it succeeds, with its
  stop_reason; the weights are finite). Smoothed: an exponential moving average with factor
  0.98 (about the last 50 steps) with bias correction, as fastai's `lr_find` and Lightning's
  learning-rate finder smooth it; 4 times the minimum is their divergence test too. "Above its
  first value" keeps a loss that neared zero from counting as diverged when it merely rises
  from 0.001 to 0.005: the run must have lost all it learned. Warm-up: divergence is judged
  from step WARMUP_STEPS (1/(1-0.98) = 50) on, the first and lowest values being tracked from
  step 1. Before that the bias-corrected average rests on a few batches (at step 2, about the
  mean of two), and one early outlier batch would count as a divergence in epoch 1; by step 50
  its weight in the average has faded to about 1/80. A range test can do without a warm-up, a training-long
  monitor should not. A run shorter than 50 steps is judged on non-finite losses only.

Two rules may hold conditions: the job's `training.stop_on` and a sweep's health rule
(`early_terminate: {type: health}`). The trial runs under their union; a condition listed by
both stops after the smaller patience, and `pruned` says whether the sweep's rule (with its own
patience) is met: the runner then marks the trial pruned, else it ends as the job alone would.
"""

from __future__ import annotations

import math
from typing import Any

from core.spec.diagnostics import StopOnSpec
from core.spec.job import TrainingSpec
from core.training.callbacks import Callback, TrainState
from core.training.diagnostics import ADVICE, Diagnostics, Emit
from core.training.smoothing import Smoother, diverged

SMOOTHING = 0.98
WARMUP_STEPS = round(1 / (1 - SMOOTHING))  # 50
DIVERGENCE_FACTOR = 4.0
DIAGNOSED = ("exploding_gradients", "vanishing_gradients", "dead_relu")
DIVERGENCE_ADVICE = (
    "lower the learning rate, normalise the inputs and targets, or clip the gradients"
)


class LossWatch:
    """The smoothed training loss, its first and lowest values: `diverged` says whether it is
    over DIVERGENCE_FACTOR times the lowest and above the first, from WARMUP_STEPS losses on."""

    def __init__(self) -> None:
        self.smoother = Smoother(SMOOTHING)
        self.first = math.nan
        self.best = math.inf

    @property
    def smoothed(self) -> float:
        return self.smoother.value

    def add(self, loss: float) -> None:
        smoothed = self.smoother.add(loss)
        if self.smoother.count == 1:
            self.first = smoothed
        self.best = min(self.best, smoothed)

    def diverged(self) -> bool:
        s = self.smoothed
        return (
            self.smoother.count >= WARMUP_STEPS
            and diverged(s, self.best, DIVERGENCE_FACTOR)
            and s > self.first
        )

    def state_dict(self) -> dict[str, float]:
        return {
            "average": self.smoother.average,
            "count": self.smoother.count,
            "first": self.first,
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.smoother.average, self.smoother.count = float(state["average"]), int(state["count"])
        self.first, self.best = float(state["first"]), float(state["best"])


class HealthStop(Callback):
    """Stops training on the conditions of `spec` and of `sweep` (a sweep's health rule), see
    the module's docstring; `stopped_on` then holds {type, layer, step, epoch, value} and the
    train state's `stop_reason` says it in words (for a non-finite loss: the job fails)."""

    def __init__(
        self,
        spec: StopOnSpec | None,
        diagnostics: Diagnostics | None,
        sweep: StopOnSpec | None = None,
    ):
        rules = [r for r in (spec, sweep) if r is not None]
        if not rules:
            raise ValueError("HealthStop needs a stop_on rule")
        self.patience: dict[str, int] = {}  # per condition: the smaller of the rules'
        for rule in rules:
            for kind in rule.conditions:
                self.patience[kind] = min(self.patience.get(kind, rule.patience), rule.patience)
        self.conditions = list(self.patience)
        if diagnostics is None and set(self.conditions) & set(DIAGNOSED):
            raise ValueError(f"stop_on {self.conditions} needs the diagnostics")
        self.sweep = sweep
        self.diagnostics = diagnostics
        if diagnostics is not None:
            diagnostics.keep_findings()
        self.loss = LossWatch()
        self.streaks: dict[str, int] = {}
        self.found: dict[str, dict[str, Any]] = {}  # this epoch's first finding per condition
        self.epoch_start = 0  # the step before the epoch's first
        self.stopped_on: dict[str, Any] | None = None
        self.pruned = False  # the sweep's rule is what stopped it
        self.reason: str | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.epoch_start = state.step

    def on_step_losses(self, state: TrainState, steps: list[int], losses: list[float]) -> None:
        if "divergence" not in self.conditions or self.stopped_on is not None:
            return
        for step, loss in zip(steps, losses, strict=True):
            if not math.isfinite(loss):
                finding = _finding(
                    "divergence", None, step, state, loss, f"the loss became {loss} at step {step}"
                )
                # The loop raises DivergenceError on it: the job fails, nothing NaN is saved.
                self._stop(state, finding, persisted=False, stop=False)
                return
            self.loss.add(loss)
            if "divergence" not in self.found and self.loss.diverged():
                s, best = self.loss.smoothed, self.loss.best
                why = (
                    f"the smoothed training loss is {s:.3g} at step {step}, {s / best:.2g} times "
                    f"its lowest ({best:.3g}) and above its first ({self.loss.first:.3g})"
                )
                self.found["divergence"] = _finding("divergence", None, step, state, s, why)

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        measured = self.diagnostics is not None and any(
            self.diagnostics.measures(s) for s in range(self.epoch_start + 1, state.step + 1)
        )
        self.epoch_start = state.step
        for finding in self.diagnostics.take_findings() if self.diagnostics else []:
            if finding["type"] in self.conditions:
                self.found.setdefault(finding["type"], finding)
        found, self.found = self.found, {}
        if self.stopped_on is not None or state.stop_training:
            return
        for kind in self.conditions:
            if kind in found:
                self.streaks[kind] = self.streaks.get(kind, 0) + 1
            elif kind == "divergence" or measured:
                self.streaks[kind] = 0
        for kind in self.conditions:
            if kind in found and self.streaks[kind] > self.patience[kind]:
                self.pruned = self.sweep is not None and (
                    kind in self.sweep.conditions and self.streaks[kind] > self.sweep.patience
                )
                self._stop(state, found[kind], persisted=self.patience[kind] > 0)
                return

    def _stop(
        self, state: TrainState, finding: dict[str, Any], *, persisted: bool, stop: bool = True
    ) -> None:
        kind = finding["type"]
        self.stopped_on = {k: finding[k] for k in ("type", "layer", "step", "epoch", "value")}
        during = f" (found in {self.patience[kind] + 1} successive epochs)" if persisted else ""
        advice = ADVICE.get(kind, DIVERGENCE_ADVICE)
        self.reason = (
            f"stopped on {kind} at epoch {finding['epoch']}: {finding['message']}{during}; {advice}"
        )
        if stop:
            state.stop_training = True
            state.stop_reason = self.reason

    def state_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss.state_dict(),
            "streaks": dict(self.streaks),
            "stopped_on": self.stopped_on,
            "pruned": self.pruned,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss.load_state_dict(state["loss"])
        self.streaks = {k: int(v) for k, v in state["streaks"].items()}
        self.stopped_on = state["stopped_on"]
        self.pruned = bool(state.get("pruned", False))


def _finding(
    kind: str, layer: str | None, step: int, state: TrainState, value: float, message: str
) -> dict[str, Any]:
    return {
        "type": kind,
        "layer": layer,
        "step": step,
        "epoch": state.epoch + 1,
        "value": value,
        "message": message,
    }


def health_callbacks(
    training: TrainingSpec, emit: Emit, sweep: StopOnSpec | None = None
) -> tuple[Diagnostics | None, HealthStop | None]:
    """The diagnostics a job runs (its own, or those its rules need: at the job's
    `every_n_steps`) and the `HealthStop` that acts on them. `sweep`: a sweep's health rule,
    merged with the job's `training.stop_on` (the union of their conditions)."""
    rules = [r for r in (training.stop_on, sweep) if r is not None]
    wanted = any(set(r.conditions) & set(DIAGNOSED) for r in rules)
    diagnostics = (
        Diagnostics(training.diagnostics.every_n_steps, emit)
        if training.diagnostics.enabled or wanted
        else None
    )
    health = HealthStop(training.stop_on, diagnostics, sweep) if rules else None
    return diagnostics, health
