"""The heartbeat on SQLite and PostgreSQL: each renewal reads back what the training loop must
obey, and a store it cannot reach changes nothing the loop sees."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from core.errors import LeaseLost, TrainingReleased
from core.running.lease import Heartbeat
from core.settings import Settings
from core.store import jobs
from core.store.db import session_factory
from core.store.models import Job
from tests.servers import free_port


def test_each_beat_renews_the_lease_and_brings_back_cancel_release_and_loss(
    settings: Settings,
) -> None:
    sessions = session_factory(settings.database_url)
    with sessions.begin() as s:
        job_id = jobs.create_job(
            s, spec={}, name="h", tags=[], queue="cpu", summary={}, epochs=1
        ).id
        jobs.claim_job(s, job_id=job_id, worker="w/1", device="cpu")
        s.execute(update(Job).values(heartbeat_at=Job.created_at))  # an old heartbeat
    with sessions() as s:
        before = jobs.get_job(s, job_id=job_id).heartbeat_at
    heartbeat = Heartbeat(sessions, job_id, 1, every_seconds=60)
    heartbeat.beat()
    with sessions() as s:
        assert jobs.get_job(s, job_id=job_id).heartbeat_at > before
    assert heartbeat.check() is False

    with sessions.begin() as s:
        jobs.request_cancel(s, job_id=job_id)
    assert heartbeat.check() is False  # not seen before the next beat: no query of its own
    heartbeat.beat()
    assert heartbeat.check() is True

    # The store is away: the beat fails quietly and the loop goes on with what it knew.
    heartbeat.sessions = session_factory(f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    heartbeat.beat()
    assert heartbeat.check() is True
    heartbeat.sessions = sessions

    with sessions.begin() as s:
        jobs.request_release(s, worker_prefix="w/")
    heartbeat.beat()
    with pytest.raises(TrainingReleased):
        heartbeat.check()

    with sessions.begin() as s:  # requeued and taken by another attempt
        s.execute(update(Job).values(status="queued"))
        jobs.claim_job(s, job_id=job_id, worker="w/2", device="cpu")
    heartbeat.beat()
    with pytest.raises(LeaseLost):
        heartbeat.check()
