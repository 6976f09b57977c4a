"""The training task: takes a job id, hands it to `core`, retries only on named transient errors."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from celery import Celery, Task

from core.dispatch import TRAIN_TASK
from core.errors import NotFoundError
from core.running.runner import RELEASED, Runner
from core.settings import Settings
from core.store.db import is_transient, session_factory
from core.store.jobs import get_job
from core.sweeps.controller import after_trial

log = logging.getLogger(__name__)

# A message for a job that is not (or no longer) in the store: look a few times, then drop it.
NOT_FOUND_RETRIES, NOT_FOUND_DELAY = 10, 1.0
# The store is unreachable (core.store.db.is_transient: a connection refused or lost, a
# timeout): back off 1, 2, 4 ... 60 s, about 9 minutes in all, then drop the message. The job
# stays queued in the store, where a reaper sends it again (EPOCHAL_REQUEUE_UNSENT_SECONDS),
# or was claimed, and then its lease runs out and a reaper requeues it. Any other error fails
# the task at once (Runner.run has failed the job with the reason, if it held it).
STORE_RETRIES, STORE_DELAY_MAX = 14, 60.0


@cache
def _runner(settings: Settings, worker: str) -> Runner:
    # Built in the process that runs tasks (after the fork), never at import.
    return Runner(session_factory(settings.database_url), settings, worker)


def register(app: Celery, settings: Settings) -> None:
    # Not shared: a second app in the same process (a test's) gets its own task and settings.
    @app.task(name=TRAIN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, shared=False)
    def train(self: Task, job_id: str) -> str | None:
        worker = f"{self.request.hostname or 'worker'}/{os.getpid()}"
        try:
            outcome = _runner(settings, worker).run(job_id)
            if outcome == RELEASED:  # this worker is stopping: hand the job to another one
                app.send_task(TRAIN_TASK, args=[job_id], queue=_queue_of(settings, job_id))
            elif outcome is not None:
                _trial_ended(app, settings, job_id)
            return outcome
        except NotFoundError as e:
            if self.request.retries >= NOT_FOUND_RETRIES:
                log.warning("job %s: no such job; dropping the message", job_id)
                return None
            raise self.retry(exc=e, countdown=NOT_FOUND_DELAY, max_retries=NOT_FOUND_RETRIES) from e
        except Exception as e:
            if not is_transient(e):
                raise
            if self.request.retries >= STORE_RETRIES:
                log.warning("job %s: store still unreachable; dropping the message", job_id)
                return None
            delay = min(STORE_DELAY_MAX, 2.0 ** min(self.request.retries, 6))
            log.warning("job %s: store unreachable (%s); retrying in %.0fs", job_id, e, delay)
            raise self.retry(exc=e, countdown=delay, max_retries=STORE_RETRIES) from e


def _queue_of(settings: Settings, job_id: str) -> str:
    """The job's own queue, as the store has it (a cuda job stays on a GPU queue)."""
    with session_factory(settings.database_url)() as session:
        return get_job(session, job_id=job_id).queue


@cache
def _sweeps() -> ThreadPoolExecutor:
    # One per pool process, made after the fork: sweep advances, one at a time.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="epochal-sweep")


def _trial_ended(app: Celery, settings: Settings, job_id: str) -> None:
    """A sweep trial's completion event: move its sweep on now, from a thread, so that this
    process takes its next job meanwhile (a small trial's advance costs about what its
    training does). Should this fail, or the process stop first, the reaper's periodic tick
    does it a few seconds later."""
    _sweeps().submit(_advance, app, settings, job_id)


def _advance(app: Celery, settings: Settings, job_id: str) -> None:

    def send(trial_id: str, queue: str) -> None:
        app.send_task(TRAIN_TASK, args=[trial_id], queue=queue)

    try:
        with session_factory(settings.database_url)() as session:
            after_trial(session, job_id=job_id, settings=settings, send=send)
    except Exception:
        log.warning("job %s: could not advance its sweep", job_id, exc_info=True)
