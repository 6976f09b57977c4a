"""An attempt's lease on its job, kept by a heartbeat thread of its own.

The thread renews the lease every `heartbeat_seconds`, from the claim until the attempt has
written how it ended, whatever the training thread is doing (a long epoch, a stalled disk, a
step that keeps the C++ busy for minutes). Each renewal reads back, in the same statement,
what the training loop must obey: a cancel request, the worker's own shutdown, or another
attempt holding the job. The loop reads those as flags (`check`), never querying the store.

A renewal that fails because the store is unreachable keeps the last answer and tries again
at the next beat: the training goes on, and the reapers give the lease back its time once the
store is back (core.running.reaper).
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from core.errors import LeaseLost, TrainingReleased
from core.running.periodic import Periodic
from core.store import jobs as job_store
from core.store.db import is_transient

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, sessions: sessionmaker[Session], job_id: str, attempt: int, every_seconds: float
    ):
        self.sessions = sessions
        self.job_id = job_id
        self.attempt = attempt
        self.every_seconds = every_seconds
        self.state = job_store.LeaseState(
            held=True, cancel_requested=False, release_requested=False
        )
        self._failing = False
        self._beating = Periodic(every_seconds, self.beat, f"heartbeat-{job_id}")

    def beat(self) -> None:
        """Renew the lease once; a store error is logged (once per outage) and kept quiet."""
        try:
            with self.sessions.begin() as session:
                self.state = job_store.touch(session, job_id=self.job_id, attempt=self.attempt)
        except Exception as e:
            if not self._failing:
                log.warning(
                    "job %s: heartbeat failed (%s: %s); retrying every %gs",
                    self.job_id,
                    type(e).__name__,
                    e,
                    self.every_seconds,
                    exc_info=not is_transient(e),
                )
            self._failing = True
            return
        if self._failing:
            log.info("job %s: heartbeat back", self.job_id)
        self._failing = False

    def check(self) -> bool:
        """For the training thread: whether a cancel was requested. Raises LeaseLost when
        another attempt holds the job, TrainingReleased when its worker is stopping."""
        state = self.state
        if not state.held:
            raise LeaseLost(f"job {self.job_id}: attempt {self.attempt} lost its lease")
        if state.release_requested:
            raise TrainingReleased(f"job {self.job_id}: the worker is stopping")
        return state.cancel_requested

    def start(self) -> Heartbeat:
        self._beating.start()
        return self

    def stop(self) -> None:
        self._beating.stop()
