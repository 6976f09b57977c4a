"""Keeps jobs moving when workers come and go: hooks in each worker's main process.

The reaper (core.running.reaper) runs here as it runs in the API: a running job whose worker
went silent for a lease goes back to the queue, and a queued job whose message the broker
lost (a Redis restarted without persistence) is sent again, in its queue's order
(core.running.redelivery). The same check runs each time the worker (re)connects to the
broker, before it takes a message. A second thread ticks the sweeps every
`sweep_tick_seconds`: each running sweep is advanced (core.sweeps.controller), so a sweep
moves on even when a trial's completion event was lost. A worker told to stop (SIGTERM,
Ctrl-C) asks its running jobs to step back into the queue.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, bootsteps
from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

from core.dispatch import TRAIN_TASK
from core.running.reaper import Reaper, Send
from core.running.redelivery import redeliver
from core.settings import Settings
from core.store import jobs as job_store
from core.store.db import session_factory
from core.sweeps.controller import tick

log = logging.getLogger(__name__)
CHECK_ON_CONNECT_SECONDS = 10.0  # the longest a (re)connecting worker waits for that check


def sender(app: Celery) -> Send:
    def send(job_id: str, queue: str) -> str:
        return app.send_task(TRAIN_TASK, args=[job_id], queue=queue).id

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

    class RedeliverOnConnect(bootsteps.StartStopStep):
        """Each time this worker (re)connects to the broker, before it takes a message: send
        again what the broker lost, so that after a broker restart the lost jobs are ahead
        of those submitted since, rather than overtaken by them."""

        requires = ("celery.worker.consumer.tasks:Tasks",)

        def start(self, consumer: object) -> None:
            def check() -> None:
                try:
                    redeliver(settings, send)
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
