"""Keeps jobs moving when workers come and go: hooks in each worker's main process.

The reaper (core.running.reaper) runs here as it runs in the API: a running job whose worker
went silent for a lease goes back to the queue, a queued job whose message may have been lost
is sent again. A second thread ticks the sweeps every `sweep_tick_seconds`: each running
sweep is advanced (core.sweeps.controller), so a sweep moves on even when a trial's
completion event was lost. A worker told to stop (SIGTERM, Ctrl-C) asks its running jobs to
step back into the queue.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

from core.dispatch import TRAIN_TASK
from core.running.reaper import Reaper, Send
from core.settings import Settings
from core.store import jobs as job_store
from core.store.db import session_factory
from core.sweeps.controller import tick

log = logging.getLogger(__name__)


def sender(app: Celery) -> Send:
    def send(job_id: str, queue: str) -> None:
        app.send_task(TRAIN_TASK, args=[job_id], queue=queue)

    return send


def reaper(app: Celery, settings: Settings) -> Reaper:
    return Reaper(session_factory(settings.database_url), settings, sender(app))


def install(app: Celery, settings: Settings) -> None:
    stop = threading.Event()
    reaping: list[Reaper] = []
    send = sender(app)

    def sweeps() -> None:
        sessions = session_factory(settings.database_url)
        while not stop.wait(settings.sweep_tick_seconds):
            try:
                tick(sessions, settings=settings, send=send)
            except Exception:
                log.warning("sweep tick failed", exc_info=True)

    @worker_ready.connect(weak=False)
    def start(**_: object) -> None:
        reaping.append(reaper(app, settings).start())
        threading.Thread(target=sweeps, name="epochal-sweeps", daemon=True).start()

    @worker_shutting_down.connect(weak=False)
    def release(sender: str, **_: object) -> None:
        """A warm shutdown waits for running tasks: ask this worker's jobs to step back now
        (they stop within a heartbeat and go back to the queue, uncounted), instead of
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
        for r in reaping:
            r.stop()
