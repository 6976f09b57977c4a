"""The workers' reaper against a real store and a real Redis broker (no worker runs): what it
requeues reaches the job's queue as a Celery message."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import redis
from sqlalchemy import update

from core.running.reaper import Reaper
from core.settings import Settings
from core.store import jobs
from core.store.base import utcnow
from core.store.db import session_factory
from core.store.models import Job
from worker.app import create_celery
from worker.recovery import sender


def messages(settings: Settings, queue: str) -> list[str]:
    """The job ids of the messages waiting in a queue (Celery's message: a JSON envelope whose
    base64 body is [args, kwargs, embed])."""
    key = f"{settings.broker_key_prefix}{queue}"
    ids = []
    for raw in redis.Redis.from_url(settings.broker_url).lrange(key, 0, -1):
        envelope = json.loads(raw)
        assert envelope["headers"]["task"] == "epochal.train"
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        ids.append(args[0])
    return ids


def new_job(settings: Settings, queue: str) -> str:
    with session_factory(settings.database_url).begin() as s:
        return jobs.create_job(s, spec={}, name="r", tags=[], queue=queue, summary={}, epochs=1).id


def reaper(settings: Settings) -> Reaper:
    """The worker's reaper, past the lease it waits for after it starts."""
    started = [0.0]
    r = Reaper(
        session_factory(settings.database_url),
        settings,
        sender(create_celery(settings)),
        clock=lambda: started[0],
    )
    started[0] = settings.job_lease_seconds
    return r


def test_a_silent_workers_job_is_requeued_and_sent_to_its_queue(settings: Settings) -> None:
    reap = reaper(settings)
    job_id = new_job(settings, "gpu")
    sessions = session_factory(settings.database_url)
    with sessions.begin() as s:
        jobs.claim_job(s, job_id=job_id, worker="dead/1", device="cuda")
    assert reap.run_once() == []  # its lease is fresh
    with sessions.begin() as s:
        s.execute(
            update(Job).values(
                heartbeat_at=utcnow() - timedelta(seconds=settings.job_lease_seconds + 1)
            )
        )
    assert reap.run_once() == [job_id]
    assert messages(settings, "gpu") == [job_id]
    with sessions() as s:
        assert jobs.get_job(s, job_id=job_id).status == "queued"


def test_a_queued_job_whose_message_is_old_is_sent_again(settings: Settings) -> None:
    reap = reaper(settings)
    job_id = new_job(settings, "cpu")
    assert reap.run_once() == []
    with session_factory(settings.database_url).begin() as s:
        s.execute(
            update(Job).values(
                enqueued_at=utcnow() - timedelta(seconds=settings.requeue_unsent_seconds + 1)
            )
        )
    assert reap.run_once() == [job_id]
    assert reap.run_once() == []  # once per interval, not every round
    assert messages(settings, "cpu") == [job_id]
