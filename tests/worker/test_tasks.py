"""The training task's retry policy, run by Celery itself in this process (`apply`): only a
store that cannot be reached is retried, and only so long; any other error fails the task."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import ProgrammingError

from core.dispatch import TRAIN_TASK
from core.settings import Settings
from tests.conftest import make_settings
from tests.servers import free_port
from worker import tasks
from worker.app import create_celery


def test_a_store_that_refuses_the_statement_fails_the_task_without_retrying(
    empty_postgres_url: str, redis_url: str, tmp_path
) -> None:
    """An unmigrated database: a ProgrammingError is no outage, and waiting will not mend it."""
    settings = make_settings(empty_postgres_url, redis_url, tmp_path)
    result = create_celery(settings).tasks[TRAIN_TASK].apply(args=["some-job"])
    assert result.failed() and isinstance(result.result, ProgrammingError)


def test_an_unreachable_store_is_retried_a_bounded_number_of_times(
    redis_url: str, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/gone"  # nothing listens there
    settings: Settings = make_settings(url, redis_url, tmp_path)
    # An eager retry runs the task again at once, in this process.
    with caplog.at_level(logging.WARNING, logger=tasks.__name__):
        result = create_celery(settings).tasks[TRAIN_TASK].apply(args=["some-job"])
    assert result.successful() and result.result is None  # dropped: the reaper sends it again
    said = [r.getMessage() for r in caplog.records]
    assert sum("store unreachable" in m for m in said) == tasks.STORE_RETRIES
    assert "store still unreachable; dropping the message" in said[-1]
