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
for a lease and STORE_STALL_SECONDS after, which gives the live workers' heartbeats (and
their connections stuck on the silent store) time to come back; a worker that really died
meanwhile is requeued that much later. A requeued job's message goes to the front of its
queue: it was taken before the jobs waiting there. A reaper that just started waits one
lease too, since it cannot know whether the store was away before. Several reapers may run at
once: each job moves by one conditional UPDATE, and a duplicate message is harmless because
only one claim can win. Commits come before sends, so a worker never sees a message for a job
that is not queued yet; a send that fails is tried again next round.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import redis
from sqlalchemy.orm import Session, sessionmaker

from core.running.periodic import Periodic
from core.running.redelivery import Send, redeliver, to_front
from core.settings import Settings
from core.store import jobs as job_store
from core.store.db import STORE_STALL_SECONDS, is_transient

log = logging.getLogger(__name__)
REDELIVERY_SECONDS = 30.0  # how often a reaper compares the broker's queues with the store


class Reaper:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        send: Send,
        *,
        clock: Callable[[], float] = time.monotonic,
        redeliver_every: float = REDELIVERY_SECONDS,
    ):
        self.sessions = sessions
        self.settings = settings
        self.send = send
        self.clock = clock
        # After its own trouble with the store, a lease and the time a worker's connection
        # stuck on the silent store takes to give up (core.store.db): their heartbeats first.
        self._quiet_seconds = settings.job_lease_seconds + STORE_STALL_SECONDS
        self._quiet_until = clock() + settings.job_lease_seconds  # no history yet
        self._redelivered_at = -math.inf
        self._redeliver_every = redeliver_every
        self._unsent: dict[str, str] = {}  # committed as queued, not sent yet
        self._rounds = Periodic(settings.reaper_seconds, self._round, "epochal-reaper")

    def run_once(self) -> list[str]:
        """One round; returns the ids sent. Raises what the store or the broker raised."""
        lease = self.settings.job_lease_seconds
        started = self.clock()
        try:
            with self.sessions.begin() as session:
                session.connection()  # a store that makes us wait was away: see below
                waited = self.clock() - started > self.settings.heartbeat_seconds
                if waited:
                    self._quiet_until = self.clock() + self._quiet_seconds
                requeued = []
                if self.clock() >= self._quiet_until:
                    requeued = job_store.requeue_stale_jobs(
                        session, lease_seconds=lease, max_attempts=self.settings.max_attempts
                    )
        except Exception as e:
            if is_transient(e):
                self._quiet_until = self.clock() + self._quiet_seconds
            raise
        for job_id, _ in requeued:
            log.warning("job %s: its worker went silent for %gs; requeued", job_id, lease)
        self._unsent.update(requeued)
        sent, messages = [], []
        for job_id, queue in list(self._unsent.items()):
            messages.append((queue, self.send(job_id, queue)))
            del self._unsent[job_id]
            sent.append(job_id)
        if messages:  # they were running: ahead of the jobs that waited behind them
            to_front(self.settings, messages)
        # Reading the broker's queues whole costs more than the rest: every few rounds (a lost
        # message is sent again within a minute; a worker also checks as it connects).
        if self.clock() - self._redelivered_at >= self._redeliver_every:
            self._redelivered_at = self.clock()
            sent += redeliver(self.settings, self.send)
        return sent

    def start(self) -> Reaper:
        self._rounds.start()
        return self

    def stop(self) -> None:
        self._rounds.stop()

    def _round(self) -> None:
        try:
            self.run_once()
        except Exception as e:
            if not unreachable(e):  # a bug: the whole story
                log.exception("reaper round failed")
            else:  # the store or the broker is away: said once per round, briefly
                log.warning("reaper round failed: %s: %s", type(e).__name__, e)


def unreachable(error: BaseException) -> bool:
    """A store or broker that is away (or slow) rather than a bug: retried next round."""
    return (
        is_transient(error)
        or isinstance(error, (OSError, redis.RedisError))
        or (
            type(error).__name__ == "BrokerUnavailable"  # the API's sender (api.queue)
        )
    )
