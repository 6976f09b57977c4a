"""The API's side of the queue: a Celery client that sends tasks by name (it knows no tasks)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from core.dispatch import QUEUES, TRAIN_TASK, celery_config
from core.settings import EMBEDDED, Settings


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
            raise BrokerUnavailable(f"the queue is unreachable: {e}") from e

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as e:
            raise BrokerUnavailable(f"the queue is unreachable: {e}") from e

    def close(self) -> None:
        self.app.close()
