"""ModelCheckpoint with Keras 3's semantics: which epochs replace the job's `best` checkpoint.

The callback only decides (`state.save_best`); the checkpoint is taken by `fit` after every
callback has run, and written off the training thread (core/training/checkpointing.py).
"""

from __future__ import annotations

from typing import Any

from core.spec.callbacks import ModelCheckpoint as ModelCheckpointSpec
from core.training.callbacks import Callback, TrainState
from core.training.monitor import improves, maximizes


class ModelCheckpoint(Callback):
    def __init__(self, spec: ModelCheckpointSpec):
        self.spec = spec
        self.better = improves(maximizes(spec.monitor, spec.mode))
        self.best: float | None = spec.initial_value_threshold
        self.best_epoch: int | None = None  # counted from 1, as the job's series are

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        if not self.spec.save_best_only:
            state.save_best = True  # Keras overwrites its file at every epoch
            self.best_epoch = state.epoch
            return
        current = logs.get(self.spec.monitor)
        if current is None:  # Keras warns and skips the epoch
            return
        if self.best is None or self.better(current, self.best):  # strictly, no min_delta
            self.best, self.best_epoch = current, state.epoch
            state.save_best = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
