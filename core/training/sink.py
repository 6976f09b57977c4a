"""`StoreSink`: the callback that streams a run's metrics and progress into the SQL store.

Points are buffered and written in one upsert per flush (every `flush_seconds`, every
`flush_points` points, and at each epoch end), never one commit per step.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from core.store.jobs import record_progress
from core.store.metrics import write_points
from core.training.callbacks import Callback, TrainState

log = logging.getLogger(__name__)

STEP_SERIES = "batch_loss"  # Keras's TensorBoard name for the per-step training loss


class StoreSink(Callback):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: str,
        *,
        flush_seconds: float,
        flush_points: int,
    ):
        self.sessions = sessions
        self.job_id = job_id
        self.flush_seconds = flush_seconds
        self.flush_points = flush_points
        self.buffer: list[tuple[str, int, int, float]] = []
        self.progress: dict[str, int] = {}
        self._due = time.monotonic() + flush_seconds

    def on_train_begin(self, state: TrainState) -> None:
        self._track(state)
        self.flush()

    def on_step_losses(self, state: TrainState, steps: list[int], losses: list[float]) -> None:
        epoch = state.epoch + 1  # the epoch in progress, counted from 1 like Keras's logs
        self.buffer.extend((STEP_SERIES, s, epoch, v) for s, v in zip(steps, losses, strict=True))
        self._track(state)
        if len(self.buffer) >= self.flush_points or time.monotonic() >= self._due:
            self.flush()

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.buffer.extend((name, state.step, state.epoch, value) for name, value in logs.items())
        self._track(state)
        self.flush()

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.flush()

    def _track(self, state: TrainState) -> None:
        self.progress = {
            "epoch": state.epoch,
            "epochs": state.epochs,
            "step": state.step,
            "steps_per_epoch": state.steps_per_epoch,
        }

    def flush(self, quiet: bool = False) -> None:
        """Write the buffer and the progress in one transaction. `quiet`: log a failure instead."""
        try:
            with self.sessions.begin() as session:
                write_points(session, job_id=self.job_id, points=self.buffer)
                if self.progress:
                    record_progress(session, job_id=self.job_id, progress=self.progress)
        except Exception:
            if not quiet:
                raise
            log.warning("job %s: could not write the last metrics", self.job_id, exc_info=True)
            return
        self.buffer = []
        self._due = time.monotonic() + self.flush_seconds
