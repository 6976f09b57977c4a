"""Sends again, in their queue's order, the queued jobs whose message the broker lost.

A queued job has a message in the broker until a worker claims it. The broker can lose
messages: a Redis restarted without persistence (or whose last second of appends was lost), a
flush, a failover to a replica that was behind, an API that died between committing a job and
sending it. Each round (the reaper's) compares the two:

1. what the broker holds (core.running.broker_queues): each queue's waiting messages, in the
   order workers will take them, and the messages delivered to a worker in the last
   `DELIVERED_HOLD_SECONDS` and not acknowledged yet (a job being claimed, or waiting for a
   store that is down: a worker holds such a message until it retries);
2. then, what the store has queued for longer than `grace_seconds` (a job just submitted may
   be committed a moment before its message is sent), in the order the jobs entered their
   queue.

A queued job with neither is sent again, and its new message is moved right behind the waiting
message of the job before it in its queue (to the front when there is none): the lost jobs run
in their original order, before any job submitted after them. A job is sent again only while
the broker holds no message for it, so a round sends nothing twice and a second round finds
the first one's messages; should a duplicate slip through (a worker took the message in the
instant of the read), only one claim can win.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from core.dispatch import QUEUES
from core.running.broker_queues import RedisQueues
from core.settings import Settings
from core.store.db import session_factory
from core.store.jobs import waiting_jobs

log = logging.getLogger(__name__)

Send = Callable[[str, str], str]  # (job id, queue) -> the id of the message sent
DELIVERED_HOLD_SECONDS = 120.0  # past this, a delivered, unclaimed message's worker is gone


def redeliver(settings: Settings, send: Send) -> list[str]:
    """One round against the settings' store and broker: what the reaper calls."""
    broker = RedisQueues.connect(settings.broker_url, settings.broker_key_prefix)
    try:
        sessions = session_factory(settings.database_url)
        return resend_lost(sessions, broker, send, grace_seconds=settings.requeue_unsent_seconds)
    finally:
        broker.close()


def to_front(settings: Settings, sent: list[tuple[str, str]]) -> None:
    """Move the messages just sent, as (queue, message id) in this order, to the front of
    their queues: jobs requeued after their worker died were taken before those waiting. A
    message a worker took meanwhile is fine where it is; a broker that cannot be read leaves
    them at the back (logged)."""
    try:
        broker = RedisQueues.connect(settings.broker_url, settings.broker_key_prefix)
        try:
            for queue, message_id in reversed(sent):
                broker.place(queue, message_id, None)
        finally:
            broker.close()
    except Exception:
        log.warning("could not move requeued jobs to the front of their queues", exc_info=True)


def resend_lost(
    sessions: sessionmaker[Session], broker: RedisQueues, send: Send, *, grace_seconds: float
) -> list[str]:
    """One round; returns the ids of the jobs sent again, in the order they were sent."""
    held = broker.held(QUEUES, delivered_since=time.time() - DELIVERED_HOLD_SECONDS)
    with sessions() as session:
        waiting = waiting_jobs(session, sent_before_seconds=grace_seconds)
    waiting_ids = {job_id for messages in held.waiting.values() for job_id, _ in messages}
    resent: list[str] = []
    for queue in dict.fromkeys(queue for _, queue in waiting):
        messages: dict[str, bytes] = {}
        for job_id, raw in held.waiting.get(queue, []):
            messages.setdefault(job_id, raw)  # the first one out is the one that claims
        behind: bytes | None = None  # the message the next lost job must follow
        for job_id in (j for j, q in waiting if q == queue):
            if job_id in messages:
                behind = messages[job_id]
            elif job_id not in waiting_ids and job_id not in held.delivered:
                placed = broker.place(queue, send(job_id, queue), behind)
                behind = placed or behind
                resent.append(job_id)
    if resent:
        log.warning(
            "the broker had lost the messages of %d queued job(s); sent again: %s",
            len(resent),
            ", ".join(resent),
        )
    return resent
