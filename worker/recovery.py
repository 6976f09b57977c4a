"""Keeps jobs moving when workers come and go: hooks in each worker's main process.

A reaper thread recovers jobs that would otherwise wait forever:

- A running job whose heartbeat stopped for `job_lease_seconds` (its worker died) goes back to
  the queue, or fails after `max_attempts`.
- A queued job whose message the broker lost (a Redis restarted without persistence) is sent
  again, in its queue's order (core.running.redelivery).
The same check runs each time the worker (re)connects to the broker, before it takes a message.
A second thread ticks the sweeps every `sweep_tick_seconds`: each running sweep is advanced
(core.sweeps.controller), so a sweep moves on even when a trial's completion event was lost.
A worker told to stop (SIGTERM, Ctrl-C) asks its running jobs to step back into the queue.
Several workers may reap at once: the store's conditional updates let one move each job, and
a duplicate message is harmless because only one claim can win.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, bootsteps
from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

from core.dispatch import TRAIN_TASK
from core.running.redelivery import redeliver
from core.settings import Settings
from core.store import jobs as job_store
from core.store.db import session_factory
from core.sweeps.controller import tick

log = logging.getLogger(__name__)
CHECK_ON_CONNECT_SECONDS = 10.0  # the longest a (re)connecting worker waits for that check


def reap_once(app: Celery, settings: Settings) -> list[str]:
    """One round; returns the ids sent. Commits before sending, so a worker never sees a
    message for a job that is not queued yet; a send that fails is retried next round."""
    with session_factory(settings.database_url).begin() as session:
        requeued = job_store.requeue_stale_jobs(
            session, lease_seconds=settings.job_lease_seconds, max_attempts=settings.max_attempts
        )
    for job_id, _ in requeued:
        log.warning("job %s: its worker went silent; requeued", job_id)
    for job_id, queue in requeued:
        app.send_task(TRAIN_TASK, args=[job_id], queue=queue)
    resent = redeliver(settings, lambda j, q: app.send_task(TRAIN_TASK, args=[j], queue=q).id)
    return [job_id for job_id, _ in requeued] + resent


def install(app: Celery, settings: Settings) -> None:
    stop = threading.Event()

    def send_and_name(job_id: str, queue: str) -> str:
        return app.send_task(TRAIN_TASK, args=[job_id], queue=queue).id

    interval = min(settings.job_lease_seconds, settings.requeue_unsent_seconds) / 2

    def loop() -> None:
        while not stop.wait(interval):
            try:
                reap_once(app, settings)
            except Exception:
                log.warning("reaper round failed", exc_info=True)

    def send(job_id: str, queue: str) -> None:
        app.send_task(TRAIN_TASK, args=[job_id], queue=queue)

    def sweeps() -> None:
        sessions = session_factory(settings.database_url)
        while not stop.wait(settings.sweep_tick_seconds):
            try:
                tick(sessions, settings=settings, send=send)
            except Exception:
                log.warning("sweep tick failed", exc_info=True)

    class RedeliverOnConnect(bootsteps.StartStopStep):
        """Each time this worker (re)connects to the broker, before it takes a message: send
        again what the broker lost, so that after a broker restart the lost jobs are ahead
        of those submitted since, rather than overtaken by them."""

        requires = ("celery.worker.consumer.tasks:Tasks",)

        def start(self, consumer: object) -> None:
            def check() -> None:
                try:
                    redeliver(settings, send_and_name)
                except Exception:
                    log.warning("could not check the broker for lost messages", exc_info=True)

            # Waited for a bounded time: a store that does not answer must not keep this
            # worker from its queue (the reaper's next round does the check then).
            thread = threading.Thread(target=check, name="epochal-redeliver", daemon=True)
            thread.start()
            thread.join(CHECK_ON_CONNECT_SECONDS)

    app.steps["consumer"].add(RedeliverOnConnect)

    @worker_ready.connect(weak=False)
    def start(**_: object) -> None:
        threading.Thread(target=loop, name="epochal-reaper", daemon=True).start()
        threading.Thread(target=sweeps, name="epochal-sweeps", daemon=True).start()

    @worker_shutting_down.connect(weak=False)
    def release(sender: str, **_: object) -> None:
        """A warm shutdown waits for running tasks: ask this worker's jobs to step back now
        (they stop within a poll interval and go back to the queue, uncounted), instead of
        making the shutdown wait for, or be killed in the middle of, a long training run."""

        def ask() -> None:
            with session_factory(settings.database_url).begin() as session:
                n = job_store.request_release(session, worker_prefix=f"{sender}/")
            if n:
                log.warning("worker stopping: %d running job(s) go back to the queue", n)

        threading.Thread(target=ask, name="epochal-release").start()  # not in the signal handler

    @worker_shutdown.connect(weak=False)
    def shutdown(**_: object) -> None:
        stop.set()
