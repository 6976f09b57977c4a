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
    """The job ids of the messages waiting in a queue, newest first (Celery's message: a JSON
    envelope whose base64 body is [args, kwargs, embed])."""
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
        redeliver_every=0,  # each round compares the broker with the store
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


def sent_before(settings: Settings, job_ids: list[str]) -> None:
    """Backdate the jobs' messages past the grace, one second apart, in this order."""
    with session_factory(settings.database_url).begin() as s:
        for i, job_id in enumerate(job_ids):
            age = settings.requeue_unsent_seconds + 10 + len(job_ids) - i
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(enqueued_at=utcnow() - timedelta(seconds=age))
            )


def test_lost_messages_are_sent_again_in_queue_order_ahead_of_later_jobs(
    settings: Settings,
) -> None:
    app, reap = create_celery(settings), reaper(settings)
    a, b, c, d, e = (new_job(settings, "cpu") for _ in range(5))
    sent_before(settings, [a, b, c, d])
    for job_id in (b, d, e):  # the broker kept these; a and c were lost
        app.send_task("epochal.train", args=[job_id], queue="cpu")
    assert reap.run_once() == [a, c]
    # Workers take from the right end: a, then b, c, d, and e, submitted last, after them.
    assert messages(settings, "cpu")[::-1] == [a, b, c, d, e]
    assert reap.run_once() == []  # the broker holds each one now: nothing twice
    assert messages(settings, "cpu")[::-1] == [a, b, c, d, e]


def test_a_queued_job_sent_within_the_grace_or_delivered_to_a_worker_is_not_sent_again(
    settings: Settings,
) -> None:
    app, reap = create_celery(settings), reaper(settings)
    fresh, delivered = new_job(settings, "gpu"), new_job(settings, "gpu")
    sent_before(settings, [delivered])
    app.send_task("epochal.train", args=[delivered], queue="gpu")
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        message = channel.basic_get("gpu", no_ack=False)  # as a worker takes it, unacknowledged
        assert message is not None and messages(settings, "gpu") == []
        assert reap.run_once() == []  # fresh: maybe not sent yet; delivered: a worker has it
        channel.basic_ack(message.delivery_tag)
    assert reap.run_once() == [delivered]  # acknowledged, yet still queued: lost
    sent_before(settings, [fresh])
    assert reap.run_once() == [fresh]
    assert messages(settings, "gpu")[::-1] == [delivered, fresh]
