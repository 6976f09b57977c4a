"""ReduceLROnPlateau with Keras 3's semantics: after `patience` epochs without an improvement
beyond `min_delta`, multiply the learning rate by `factor` (not below `min_lr`), then wait
`cooldown` epochs before counting again."""

from __future__ import annotations

import math
from typing import Any

from core.spec.callbacks import ReduceLROnPlateau as ReduceLROnPlateauSpec
from core.training.callbacks import Callback, TrainState
from core.training.monitor import maximizes


class ReduceLROnPlateau(Callback):
    def __init__(self, spec: ReduceLROnPlateauSpec):
        self.spec = spec
        # mode "auto" follows the monitored metric's direction, as early_stopping does (Keras 3's
        # ReduceLROnPlateau only looks for "acc" in the name, and would minimise an AUC).
        self.maximize = maximizes(spec.monitor, spec.mode)
        self.best = -math.inf if self.maximize else math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, current: float) -> bool:
        if self.maximize:
            return current > self.best + self.spec.min_delta
        return current < self.best - self.spec.min_delta

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        current = logs.get(self.spec.monitor)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait < self.spec.patience:
            return
        for group in state.optimizer.param_groups:
            if group["lr"] > self.spec.min_lr:
                group["lr"] = max(group["lr"] * self.spec.factor, self.spec.min_lr)
        self.cooldown_counter = self.spec.cooldown
        self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait, self.cooldown_counter = (
            state["best"],
            state["wait"],
            state["cooldown_counter"],
        )
