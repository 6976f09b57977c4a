"""`StoreSink`: the callback that streams a run's metrics and progress into the SQL store.

Points are buffered and written in one upsert per flush (every `flush_seconds`, every
`flush_points` points, and at each epoch end), never one commit per step. When the store is
briefly unreachable the buffer is kept and written at a later flush; the run fails only if the
store stays away longer than the job's lease.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from core.errors import LeaseLost
from core.store.db import is_transient
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
        attempt: int,
        *,
        flush_seconds: float,
        flush_points: int,
        outage_seconds: float,
    ):
        self.sessions = sessions
        self.job_id = job_id
        self.attempt = attempt
        self.flush_seconds = flush_seconds
        self.flush_points = flush_points
        self.outage_seconds = outage_seconds
        self.buffer: list[tuple[str, int, int, float]] = []
        self.progress: dict[str, int] = {}
        self._due = time.monotonic() + flush_seconds
        self._failing_since: float | None = None

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

    def flush(self) -> None:
        """Write the buffer and the progress in one transaction."""
        try:
            with self.sessions.begin() as session:
                write_points(session, job_id=self.job_id, points=self.buffer)
                if self.progress and not record_progress(
                    session, job_id=self.job_id, attempt=self.attempt, progress=self.progress
                ):
                    raise LeaseLost(f"job {self.job_id}: attempt {self.attempt} lost its lease")
        except Exception as e:
            if not is_transient(e):
                raise
            now = time.monotonic()
            self._failing_since = self._failing_since or now
            if now - self._failing_since > self.outage_seconds:
                raise
            log.warning(
                "job %s: store unreachable; keeping %d points", self.job_id, len(self.buffer)
            )
            self._due = now + self.flush_seconds
            return
        self.buffer = []
        self._failing_since = None
        self._due = time.monotonic() + self.flush_seconds
