"""The Celery application factory for workers."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from core.dispatch import QUEUES, celery_config
from core.settings import EMBEDDED, Settings, get_settings
from worker import recovery, registry, tasks


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    if settings.broker_url == EMBEDDED:
        raise RuntimeError(
            "EPOCHAL_BROKER_URL is 'embedded', which only `epochal serve` (make run) starts; "
            "set EPOCHAL_BROKER_URL to the broker's URL to run a worker on its own"
        )
    app = Celery("epochal-worker", set_as_current=True)
    app.conf.update(celery_config(settings))
    app.conf.update(
        # A job's message is acknowledged only when the task ends, and put back when the
        # process running it dies: a crash loses no job. One message at a time per process.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name) for name in QUEUES],
        worker_send_task_events=False,
    )
    tasks.register(app, settings)
    recovery.install(app, settings)
    registry.install(app, settings)
    return app
