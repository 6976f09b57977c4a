"""The training task: takes a job id, hands it to `core`, retries only on named transient errors."""

from __future__ import annotations

import logging
from functools import cache

from celery import Celery, Task
from sqlalchemy.exc import OperationalError

from core.dispatch import TRAIN_TASK
from core.errors import NotFoundError
from core.settings import Settings
from core.store.db import session_factory
from core.training.job import Runner

log = logging.getLogger(__name__)

# The API sends the message just before committing the job: a fast worker may look too early.
NOT_VISIBLE_RETRIES, NOT_VISIBLE_DELAY = 20, 0.5
STORE_RETRIES, STORE_DELAY = 5, 5.0


@cache
def _runner(settings: Settings, worker: str) -> Runner:
    # Built in the process that runs tasks (after the fork), never at import.
    return Runner(session_factory(settings.database_url), settings, worker)


def register(app: Celery, settings: Settings) -> None:
    @app.task(name=TRAIN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def train(self: Task, job_id: str) -> str | None:
        try:
            return _runner(settings, self.request.hostname or "worker").run(job_id)
        except NotFoundError as e:
            if self.request.retries >= NOT_VISIBLE_RETRIES:
                log.warning("job %s: no such job; dropping the message", job_id)
                return None
            raise self.retry(
                exc=e, countdown=NOT_VISIBLE_DELAY, max_retries=NOT_VISIBLE_RETRIES
            ) from e
        except OperationalError as e:  # the store is unreachable before training could start
            raise self.retry(exc=e, countdown=STORE_DELAY, max_retries=STORE_RETRIES) from e
