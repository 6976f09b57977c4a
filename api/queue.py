"""The API's side of the queue: a Celery client that sends tasks by name (it knows no tasks)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Celery
from kombu import Queue
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.dispatch import QUEUES, TRAIN_TASK, celery_config
from core.settings import EMBEDDED, Settings
from core.store import jobs as job_store
from core.store.models import Job

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):  # an outage, as the reaper reads it
    pass


class Enqueuer:
    def __init__(self, settings: Settings):
        if settings.broker_url == EMBEDDED:
            raise RuntimeError(
                "EPOCHAL_BROKER_URL is 'embedded', which only `epochal serve` (make run) can start; "
                "start the API that way, or set EPOCHAL_BROKER_URL to a Redis URL"
            )
        self.app = Celery("epochal-api", set_as_current=False)
        config = celery_config(settings)
        # Back-pressure: at most broker_pool_limit producers, each waited for at most
        # broker_pool_timeout_seconds (kombu's acquire would otherwise block for ever), and
        # a broker that does not answer is given up on after as long.
        timeout = settings.broker_pool_timeout_seconds
        config["broker_transport_options"] = {
            **config["broker_transport_options"],
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        self.app.conf.update(
            config,
            task_queues=[Queue(q) for q in QUEUES],
            broker_pool_limit=settings.broker_pool_limit,
            broker_pool_acquire_timeout=timeout,
        )
        # Our own count of producers in use: kombu's pools are process-wide and their number of
        # slots follows kombu's global limit, so a wait bounded here is bounded for sure.
        self._producers = threading.BoundedSemaphore(settings.broker_pool_limit)
        self._wait = timeout

    @contextmanager
    def producer(self) -> Iterator[Any]:
        """A producer from the pool, waited for a bounded time: BrokerUnavailable when all are
        in use (or the broker cannot be reached), before the caller has stored anything."""
        if not self._producers.acquire(timeout=self._wait):
            raise BrokerUnavailable(f"the queue is busy: no producer free within {self._wait}s")
        try:
            try:
                acquired = self.app.producer_or_acquire()
                producer = acquired.__enter__()
            except Exception as e:  # celery's OperationalError, a connection error
                raise BrokerUnavailable(f"the queue is busy or unreachable: {e}") from e
            try:
                yield producer
            finally:
                acquired.__exit__(None, None, None)
        finally:
            self._producers.release()

    def send_train(self, job_id: str, queue: str, producer: Any = None) -> str:
        """Send a job's message; returns its id."""
        try:
            return self.app.send_task(
                TRAIN_TASK,
                args=[job_id],
                queue=queue,
                producer=producer,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            ).id
        except Exception as e:  # kombu's connection errors vary by transport
            raise _unreachable(e) from e

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as e:
            raise _unreachable(e) from e

    def queue_lengths(self, queues: Sequence[str]) -> dict[str, int] | None:
        """Messages waiting in the broker, per queue (a Redis list's length: one command
        each); None when the broker does not answer within a couple of seconds."""
        try:
            with self.app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                channel = connection.default_channel
                # On Redis, declaring a queue creates nothing: it answers the list's length.
                return {q: int(channel.queue_declare(queue=q).message_count) for q in queues}
        except Exception as e:  # noqa: BLE001 - kombu's connection errors vary by transport
            _unreachable(e)
            return None

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
    before_commit: Callable[[Job], None] | None = None,
    on_refused: Callable[[], None] | None = None,
    **fields: Any,
) -> Job:
    """Create a job, commit it, then send it; a job was kept exactly when this returns. When
    the broker refuses, the job is deleted again (nothing half-written; `on_refused` removes
    more rows in that same transaction) and BrokerUnavailable propagates as a 503. Should the
    store fail at that point too, the job stays queued, the workers' reaper sends it once the
    broker is back, and it is answered as created. `before_commit` adds to the job's
    transaction.

    Back-pressure: a broker producer is held before anything is stored (a busy broker is a 503
    with nothing written), and the returned job is complete in memory, so the response needs
    no connection after the commit."""
    job: Job | None = None
    try:
        with enqueuer.producer() as producer:
            job = job_store.create_job(session, **fields)
            if before_commit is not None:
                before_commit(job)
            session.commit()
            enqueuer.send_train(job.id, job.queue, producer)
    except BrokerUnavailable:
        # No producer (nothing stored), or a send the broker refused (the job is removed).
        if job is None or _deleted(session, job.id, on_refused):
            raise
    assert job is not None
    return job


def _deleted(session: Session, job_id: str, on_refused: Callable[[], None] | None) -> bool:
    """Removes a job that could not be sent; False when the store refuses too (pool timeout,
    connection lost), in which case the job stays for the reaper to send."""
    try:
        job_store.delete_job(session, job_id=job_id)
        if on_refused is not None:
            on_refused()
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.warning("job %s could not be sent nor removed; the reaper sends it", job_id)
        return False
    return True
