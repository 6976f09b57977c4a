"""The reaper: finds the jobs that would otherwise wait forever and puts them back in the queue.

It runs in every worker's main process and in the API, so that a job whose worker died is
noticed even when no worker is left: every `reaper_seconds` it

- requeues a running job whose heartbeat is older than `job_lease_seconds` (its worker died,
  hangs, or is cut off) and sends it again; the job says so (`worker_lost`) until a worker
  takes it, and fails after `max_attempts` such losses in a row;
- sends again, in its queue's order, a queued job whose message the broker lost
  (core.running.redelivery).

Staleness is judged by the store's clock (core.store.jobs.store_now), never this host's. A
store outage stops every heartbeat, so right after one every lease looks expired: a reaper
that could not reach the store (or waited for it longer than a heartbeat) requeues nothing
for one lease after, which gives the live workers' heartbeats time to come back; a worker
that really died meanwhile is requeued one lease later. A reaper that just started waits one
lease too, since it cannot know whether the store was away before. Several reapers may run at
once: each job moves by one conditional UPDATE, and a duplicate message is harmless because
only one claim can win. Commits come before sends, so a worker never sees a message for a job
that is not queued yet; a send that fails is tried again next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from core.running.redelivery import Send, redeliver
from core.settings import Settings
from core.store import jobs as job_store
from core.store.db import is_transient

log = logging.getLogger(__name__)


class Reaper:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        send: Send,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sessions = sessions
        self.settings = settings
        self.send = send
        self.clock = clock
        self._quiet_until = clock() + settings.job_lease_seconds  # no history yet
        self._unsent: dict[str, str] = {}  # committed as queued, not sent yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[str]:
        """One round; returns the ids sent. Raises what the store or the broker raised."""
        lease = self.settings.job_lease_seconds
        started = self.clock()
        try:
            with self.sessions.begin() as session:
                session.connection()  # a store that makes us wait was away: see below
                waited = self.clock() - started > self.settings.heartbeat_seconds
                if waited:
                    self._quiet_until = self.clock() + lease
                requeued = []
                if self.clock() >= self._quiet_until:
                    requeued = job_store.requeue_stale_jobs(
                        session, lease_seconds=lease, max_attempts=self.settings.max_attempts
                    )
        except Exception as e:
            if is_transient(e):
                self._quiet_until = self.clock() + lease
            raise
        for job_id, _ in requeued:
            log.warning("job %s: its worker went silent for %gs; requeued", job_id, lease)
        self._unsent.update(requeued)
        sent = []
        for job_id, queue in list(self._unsent.items()):
            self.send(job_id, queue)
            del self._unsent[job_id]
            sent.append(job_id)
        return sent + redeliver(self.settings, self.send)

    def start(self, name: str = "epochal-reaper") -> Reaper:
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.reaper_seconds):
            try:
                self.run_once()
            except Exception as e:
                if not is_transient(e):  # a bug, or a broker that refuses: the whole story
                    log.exception("reaper round failed")
                else:  # the store is away: said once per round, briefly
                    log.warning("reaper round failed: %s: %s", type(e).__name__, e)
