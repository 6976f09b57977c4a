"""`StoreSink`: the callback that streams a run's metrics and progress into the SQL store.

The training thread only appends to a buffer; a writer thread, started with the sink, upserts
what has accumulated in one transaction per flush: at most one flush every `flush_seconds`
(checked at each step report and each epoch end), or sooner once `flush_points` points wait —
never one commit per step, and never on the training step's path. The writer's SQL holds the
interpreter's lock while it runs, so fewer flushes leave more of it to the training thread.
The end of training only hands over the last buffer; the worker waits for the writer
(`close`) after it has saved the model, so the last write overlaps that save. When the store
is briefly unreachable the points are kept and written once it is back; the run fails only if
the store stays away longer than `outage_seconds`. A writer's error (the lease lost, the store
gone for good) is raised in the training thread at its next flush.

Each flush also counts the points it writes and records the run's steps per second on the
job (for /metrics, without a scan of the points).

Checkpoint pointers (`publish_checkpoint`) ride with the points: they are written in the
same transaction as, or after, every point up to the checkpoint's step, so a published
checkpoint never names a step the stored series does not reach.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from core.errors import LeaseLost
from core.logs import ContextThread
from core.series import STEP_SERIES
from core.store.db import is_transient
from core.store.jobs import record_checkpoint, record_progress
from core.store.metrics import write_points
from core.training.callbacks import Callback, TrainState

log = logging.getLogger(__name__)

Point = tuple[str, int, int, float]


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
        self.buffer: list[Point] = []  # the training thread's, until handed over
        self.progress: dict[str, int] = {}
        self.ended = -1  # the step of the last epoch end whose points are buffered
        self.steps_per_second: float | None = None  # over the last flush_seconds or so
        self._mark: tuple[float, int] | None = None  # (time, step) the speed is measured from
        self._due = time.monotonic() + flush_seconds
        # Shared with the writer thread, under the condition's lock:
        self._cv = threading.Condition()
        self._handed: list[Point] = []
        self._handed_progress: dict[str, int] = {}
        self._handed_ended = -1
        self._handed_speed: float | None = None
        self._checkpoint: tuple[dict, int, Callable[[], None]] | None = None
        self._requested = self._writing = self._closing = False
        self._error: BaseException | None = None
        self._closed = False
        # Started now, not at the first flush: no thread start on the training step's path.
        self._thread = ContextThread(target=self._write_loop, name=f"sink-{job_id}", daemon=True)
        self._thread.start()

    # --- callback hooks (training thread) ---------------------------------------------------

    def add(self, name: str, step: int, epoch: int, value: float) -> None:
        """A point from another callback (diagnostics); written with the next flush."""
        self.buffer.append((name, step, epoch, value))

    def publish_checkpoint(self, pointers: dict, step: int, committed: Callable[[], None]) -> None:
        """Record `pointers` on the job with the first write that covers `step` (any thread);
        `committed` is called once they are stored. A newer call replaces an unwritten one."""
        with self._cv:
            self._checkpoint = (pointers, step, committed)

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
        self.ended = state.step
        self._track(state)
        # An epoch's end is written at once if a flush is due, otherwise with the next one
        # (within `flush_seconds`): short epochs do not mean more writes.
        if time.monotonic() >= self._due:
            self.flush()

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        """Hand over the last points without waiting: the worker saves the model meanwhile and
        then waits for the writer (`close`)."""
        self.flush()

    def _track(self, state: TrainState) -> None:
        self.progress = {
            "epoch": state.epoch,
            "epochs": state.epochs,
            "step": state.step,
            "steps_per_epoch": state.steps_per_epoch,
        }

    def _measure(self) -> None:
        """Steps per second since the last measure at least half a flush period ago. A pause
        without steps (validation at an epoch's end) is averaged into the next measure."""
        now, step = time.monotonic(), self.progress.get("step", 0)
        if self._mark is None or step < self._mark[1]:
            self._mark = (now, step)
        elif step > self._mark[1] and now - self._mark[0] >= self.flush_seconds / 2:
            self.steps_per_second = (step - self._mark[1]) / (now - self._mark[0])
            self._mark = (now, step)

    def flush(self) -> None:
        """Hand the buffer and the progress to the writer; raise the writer's error, if any."""
        self._measure()
        with self._cv:
            if self._error is not None:
                raise self._error
            self._handed.extend(self.buffer)
            self._handed_progress = dict(self.progress)
            self._handed_ended = self.ended
            self._handed_speed = self.steps_per_second
            self._requested = True
            self._cv.notify_all()
        self.buffer = []
        self._due = time.monotonic() + self.flush_seconds

    def sync(self) -> None:
        """Write everything buffered and wait until it is in the store (a reader in another
        session, such as a sweep's pruning rule, then sees this epoch's points)."""
        self.flush()
        with self._cv:
            while (self._requested or self._writing) and self._error is None:
                self._cv.wait()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Write everything still buffered, stop the writer, and raise its error, if any.
        Once closed, a second call only raises that error again."""
        if not self._closed:
            try:
                self.flush()
            finally:
                self._stop()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Stop the writer without writing what is left (the lease is lost: the points are no
        longer this attempt's to write); waits for a write in progress."""
        with self._cv:
            self._handed, self._requested = [], False
        self._stop()

    def _stop(self) -> None:
        with self._cv:
            self._closing = True
            self._cv.notify_all()
            while self._requested or self._writing:
                if self._error is not None:
                    break
                self._cv.wait()
        self._thread.join()
        self._closed = True

    # --- the writer thread --------------------------------------------------------------------

    def _write_loop(self) -> None:
        failing_since: float | None = None
        while True:
            with self._cv:
                while not self._requested and not self._closing:
                    self._cv.wait()
                if not self._requested:
                    return
                points, progress = self._handed, self._handed_progress
                speed = self._handed_speed
                checkpoint = self._checkpoint
                if checkpoint is not None and checkpoint[1] > self._handed_ended:
                    # Its epoch's points are not all handed over yet: a flush at the epoch's
                    # last step carries its step losses but not the epoch's own series.
                    checkpoint = None
                self._handed, self._requested, self._writing = [], False, True
            try:
                self._write(points, progress, checkpoint, speed)
                failing_since = None
            except Exception as e:  # noqa: BLE001 - every error goes to the training thread
                now = time.monotonic()
                failing_since = failing_since or now
                retry = is_transient(e) and now - failing_since <= self.outage_seconds
                with self._cv:
                    if retry:  # keep the points, in order, for the next round
                        self._handed[:0] = points
                        self._requested = True
                    else:
                        self._error = e
                        self._requested = False
                        self._handed = []
                if retry:
                    # The line names the job: this thread logs under the run's (core.logs).
                    log.warning("store unreachable; keeping %d points", len(points))
                    time.sleep(min(self.flush_seconds, 1.0))
            with self._cv:
                self._writing = False
                self._cv.notify_all()
                if self._error is not None:
                    return

    def _write(
        self,
        points: list[Point],
        progress: dict[str, int],
        checkpoint: tuple[dict, int, Callable[[], None]] | None,
        speed: float | None = None,
    ) -> None:
        lost = LeaseLost(f"job {self.job_id}: attempt {self.attempt} lost its lease")
        with self.sessions.begin() as session:
            write_points(session, job_id=self.job_id, points=points)
            if progress and not record_progress(
                session,
                job_id=self.job_id,
                attempt=self.attempt,
                progress=progress,
                points=len(points),
                steps_per_second=speed,
            ):
                raise lost
            if checkpoint is not None and not record_checkpoint(
                session, job_id=self.job_id, attempt=self.attempt, checkpoint=checkpoint[0]
            ):
                raise lost
        if checkpoint is not None:
            with self._cv:
                if self._checkpoint is checkpoint:
                    self._checkpoint = None
            checkpoint[2]()
