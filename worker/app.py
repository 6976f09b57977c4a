"""The Celery application factory for workers."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals
from kombu import Queue

from core import logs
from core.dispatch import QUEUES, celery_config
from core.settings import EMBEDDED, Settings, get_settings
from worker import recovery, registry, tasks, threads

# billiard's logger (a pool process that died, ...), which propagates nowhere.
POOL_LOGGER = "multiprocessing"


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
        # A broker outage (Redis restarting) neither stops the running jobs, which need only
        # the store, nor makes the worker give up reconnecting: it retries for as long as it
        # takes, and the reaper sends again what the broker lost (core.running.redelivery).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
    )
    tasks.register(app, settings)
    recovery.install(app, settings)
    _log_as_configured(settings)
    registry.install(app, settings)
    threads.install()  # each pool process's share of the cores
    return app


def _log_as_configured(settings: Settings) -> None:
    """Celery leaves the logging to whoever answers its setup_logging signal (its own handlers,
    formats and stdout redirection stay off): every line, Celery's too, as EPOCHAL_LOG_FORMAT
    says, at the level of --loglevel. The pool's processes inherit it when they fork."""

    def setup(loglevel: int | None = None, **_: Any) -> None:
        logs.configure(settings.log_format, loglevel or settings.log_level, own=[POOL_LOGGER])
        logging.getLogger(POOL_LOGGER).setLevel(logging.ERROR)  # as Celery's own set-up has it

    def no_banner(instance: Any, **_: Any) -> None:
        if settings.log_format == "json":  # the start banner is no log line: JSON only
            instance.quiet = True

    signals.setup_logging.connect(setup, weak=False, dispatch_uid="epochal-logging")
    signals.celeryd_after_setup.connect(no_banner, weak=False, dispatch_uid="epochal-banner")
