"""Requeues jobs whose worker died: a thread in each worker's main process.

A job's heartbeat is renewed while it trains; one silent for `job_lease_seconds` goes back to
the queue (or fails after `max_attempts`). Several workers may reap at once: the store's
conditional updates let exactly one of them move each job.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from core.dispatch import TRAIN_TASK
from core.settings import Settings
from core.store import jobs as job_store
from core.store.db import session_factory
from core.store.models import Job

log = logging.getLogger(__name__)


def reap_once(app: Celery, settings: Settings) -> list[str]:
    sessions = session_factory(settings.database_url)
    with sessions.begin() as session:
        requeued = job_store.requeue_stale_jobs(
            session, lease_seconds=settings.job_lease_seconds, max_attempts=settings.max_attempts
        )
        queues = {job_id: session.get(Job, job_id).queue for job_id in requeued}
    for job_id, queue in queues.items():
        log.warning("job %s: its worker went silent; requeued", job_id)
        app.send_task(TRAIN_TASK, args=[job_id], queue=queue)
    return requeued


def install(app: Celery, settings: Settings) -> None:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(settings.job_lease_seconds / 2):
            try:
                reap_once(app, settings)
            except Exception:
                log.warning("reaper round failed", exc_info=True)

    @worker_ready.connect(weak=False)
    def start(**_: object) -> None:
        threading.Thread(target=loop, name="epochal-reaper", daemon=True).start()

    @worker_shutdown.connect(weak=False)
    def shutdown(**_: object) -> None:
        stop.set()
