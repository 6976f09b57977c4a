"""EarlyStopping with Keras 3's semantics.

The decision is one pure function of the state, the epoch and its monitored value
(`decide`); the callback wraps it, keeps the best weights when asked, and stores why it
stopped (Lightning's EarlyStoppingReason idea) on the train state, from which it reaches the job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from core.spec.callbacks import EarlyStopping as EarlyStoppingSpec
from core.training.callbacks import Callback, TrainState
from core.training.monitor import improves, maximizes


class StopReason(StrEnum):
    NOT_STOPPED = "not_stopped"
    PATIENCE_EXHAUSTED = "patience_exhausted"


@dataclass(frozen=True)
class EarlyStoppingState:
    best: float | None = None
    best_epoch: int = -1  # 0-based, as in Keras
    wait: int = 0


def decide(
    spec: EarlyStoppingSpec, state: EarlyStoppingState, epoch: int, current: float
) -> tuple[EarlyStoppingState, bool, bool]:
    """Keras's `on_epoch_end` for epoch `epoch` (0-based) whose monitored value is `current`.

    Returns (new state, whether this epoch is the new best, whether to stop now).
    An improvement is a change beyond `min_delta` in the right direction; with a `baseline`,
    patience restarts only once the value beats the baseline too.
    """
    if epoch < spec.start_from_epoch:
        return state, False, False
    better = improves(maximizes(spec.monitor, spec.mode))
    delta = spec.min_delta if maximizes(spec.monitor, spec.mode) else -spec.min_delta

    def is_improvement(value: float, reference: float | None) -> bool:
        return reference is None or better(value - delta, reference)

    wait = state.wait + 1
    if is_improvement(current, state.best):
        beats_baseline = spec.baseline is None or is_improvement(current, spec.baseline)
        return EarlyStoppingState(current, epoch, 0 if beats_baseline else wait), True, False
    stop = wait >= spec.patience and epoch > 0
    return replace(state, wait=wait), False, stop


class EarlyStopping(Callback):
    def __init__(self, spec: EarlyStoppingSpec):
        self.spec = spec
        self.state = EarlyStoppingState()
        self.best_weights: dict[str, Any] | None = None
        self.stopped_epoch: int | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.state, self.best_weights, self.stopped_epoch = EarlyStoppingState(), None, None

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        current = logs.get(self.spec.monitor)
        epoch = state.epoch - 1  # Keras counts epochs from 0 here
        if current is None or epoch < self.spec.start_from_epoch:
            return
        if self.spec.restore_best_weights and self.best_weights is None:
            self.best_weights = _snapshot(state.network)
        self.state, is_best, stop = decide(self.spec, self.state, epoch, current)
        if is_best and self.spec.restore_best_weights:
            self.best_weights = _snapshot(state.network)
        if not stop:
            return
        self.stopped_epoch = epoch
        state.stop_training = True
        restored = ""
        if self.spec.restore_best_weights and self.best_weights is not None:
            state.network.load_state_dict(self.best_weights)
            restored = f"; restored the weights of epoch {self.state.best_epoch + 1}"
        state.stop_reason = (
            f"early_stopping: {self.spec.monitor} did not improve by more than "
            f"min_delta={self.spec.min_delta} for {self.spec.patience} epoch(s) after epoch "
            f"{self.state.best_epoch + 1} (best {self.state.best:.6g}){restored}"
        )

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        """Keras 3 restores the best weights at the end of training even when the epochs ran
        out before the patience did."""
        if (
            self.spec.restore_best_weights
            and self.best_weights is not None
            and self.stopped_epoch is None
        ):
            state.network.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.state.best,
            "best_epoch": self.state.best_epoch,
            "wait": self.state.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = EarlyStoppingState(state["best"], state["best_epoch"], state["wait"])
        self.best_weights = state["best_weights"]


def _snapshot(network: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}
