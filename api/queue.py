"""The API's side of the queue: a Celery client that sends tasks by name (it knows no tasks)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Queue
from sqlalchemy.orm import Session

from core.dispatch import QUEUES, TRAIN_TASK, celery_config
from core.settings import EMBEDDED, Settings
from core.store import jobs as job_store
from core.store.models import Job

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    pass


class Enqueuer:
    def __init__(self, settings: Settings):
        if settings.broker_url == EMBEDDED:
            raise RuntimeError(
                "EPOCHAL_BROKER_URL is 'embedded', which only `epochal serve` (make run) can start; "
                "start the API that way, or set EPOCHAL_BROKER_URL to a Redis URL"
            )
        self.app = Celery("epochal-api", set_as_current=False)
        self.app.conf.update(celery_config(settings), task_queues=[Queue(q) for q in QUEUES])

    def send_train(self, job_id: str, queue: str) -> None:
        try:
            self.app.send_task(
                TRAIN_TASK,
                args=[job_id],
                queue=queue,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as e:  # kombu's connection errors vary by transport
            raise _unreachable(e) from e

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as e:
            raise _unreachable(e) from e

    def close(self) -> None:
        self.app.close()


def _unreachable(error: Exception) -> BrokerUnavailable:
    """The detail (host, port) goes to the log; a client learns only that the queue is down."""
    log.warning("the broker is unreachable: %s: %s", type(error).__name__, error)
    return BrokerUnavailable("the queue is unreachable")


def create_and_send(
    session: Session,
    enqueuer: Enqueuer,
    /,
    *,
    undo: Callable[[], None] | None = None,
    before_commit: Callable[[Job], None] | None = None,
    on_refused: Callable[[], None] | None = None,
    **fields: Any,
) -> Job:
    """Create a job, commit it, then send it. When the broker refuses, the job is deleted again
    (nothing half-written; `on_refused` removes more rows in that same transaction, `undo`
    anything else made for it) and BrokerUnavailable propagates as a 503. Should the store fail
    at that point too, the workers' reaper sends the queued job once the broker is back.
    `before_commit` adds to the job's transaction."""
    job = job_store.create_job(session, **fields)
    if before_commit is not None:
        before_commit(job)
    session.commit()
    try:
        enqueuer.send_train(job.id, job.queue)
    except BrokerUnavailable:
        job_store.delete_job(session, job_id=job.id)
        if on_refused is not None:
            on_refused()
        session.commit()
        if undo is not None:
            undo()
        raise
    return job
