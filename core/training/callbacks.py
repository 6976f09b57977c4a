"""Callbacks: the few hooks through which the training loop reports and can be stopped.

The same `fit` runs in a worker, a test or a notebook; what happens to progress and metrics
is decided by the callbacks it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import TrainingCancelled


@dataclass
class TrainState:
    epochs: int
    steps_per_epoch: int
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken, over all epochs
    stop_training: bool = False
    stop_reason: str | None = None
    network: Any = None  # the Network being trained, for callbacks that read or restore it
    optimizer: Any = None  # its torch optimizer, for callbacks that change the learning rate
    save_best: bool = False  # set by model_checkpoint at an epoch's end: this epoch is `best`
    precision: Any = (
        None  # its Precision (core/training/precision.py), whose state checkpoints carry
    )


class Callback:
    def on_train_begin(self, state: TrainState) -> None: ...

    def on_before_optimizer_step(self, state: TrainState) -> None:
        """After backward, before the step: gradients are there (unscaled under fp16), weights
        not yet updated. Not called for an fp16 step skipped because its gradients overflowed."""

    def on_batch_end(self, state: TrainState) -> None:
        """After every optimizer step: cheap checks only (no device sync)."""

    def on_step_losses(self, state: TrainState, steps: list[int], losses: list[float]) -> None:
        """Per-step training losses, delivered a few steps at a time to avoid a sync per step."""

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None: ...

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class CancelCheck(Callback):
    """Raises `TrainingCancelled` once `is_cancelled()` says so, asked after every step: it
    must be a flag's read (a worker's heartbeat thread keeps it), never a query."""

    def __init__(self, is_cancelled: Callable[[], bool]):
        self.is_cancelled = is_cancelled

    def on_batch_end(self, state: TrainState) -> None:
        if self.is_cancelled():
            raise TrainingCancelled(f"cancelled at epoch {state.epoch + 1}, step {state.step}")
