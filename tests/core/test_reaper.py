"""The reaper on SQLite and PostgreSQL: what it requeues, when it holds back, and that several
at once move each job once. Its clock (for the holding back) is the test's; staleness is the
store's, so a silent worker is made by dating its heartbeat back."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from core.running.reaper import Reaper
from core.settings import Settings
from core.store import jobs
from core.store.base import utcnow
from core.store.db import STORE_STALL_SECONDS, session_factory
from core.store.models import Job
from tests.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sent(list):
    def __call__(self, job_id: str, queue: str) -> None:
        self.append((job_id, queue))


def running_job(settings: Settings, worker: str = "dead/1", queue: str = "cpu") -> str:
    with session_factory(settings.database_url).begin() as s:
        job_id = jobs.create_job(
            s, spec={}, name="r", tags=[], queue=queue, summary={}, epochs=1
        ).id
        jobs.claim_job(s, job_id=job_id, worker=worker, device="cpu")
    return job_id


def silence(settings: Settings, seconds: float) -> None:
    """Every running job's last heartbeat, `seconds` ago."""
    with session_factory(settings.database_url).begin() as s:
        s.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def job(settings: Settings, job_id: str) -> Job:
    with session_factory(settings.database_url)() as s:
        return jobs.get_job(s, job_id=job_id)


def test_a_silent_workers_job_is_requeued_sent_and_shown_lost(settings: Settings) -> None:
    clock, sent = Clock(), Sent()
    reaper = Reaper(session_factory(settings.database_url), settings, sent, clock=clock)
    job_id = running_job(settings, queue="gpu")
    lease = settings.job_lease_seconds
    clock.now += lease
    assert reaper.run_once() == [] and sent == []  # its heartbeat is fresh
    silence(settings, lease - 2)
    assert reaper.run_once() == []  # still within the lease
    silence(settings, lease + 1)
    assert reaper.run_once() == [job_id] and sent == [(job_id, "gpu")]
    lost = job(settings, job_id)
    assert (lost.status, lost.worker, lost.attempts) == ("queued", None, 1)
    assert [w.code for w in jobs.warnings_of(lost)] == ["worker_lost"]
    assert reaper.run_once() == []  # moved once


def test_a_reaper_that_just_started_waits_one_lease(settings: Settings) -> None:
    """It cannot know whether the store was away just before (every heartbeat stale)."""
    clock, sent = Clock(), Sent()
    reaper = Reaper(session_factory(settings.database_url), settings, sent, clock=clock)
    job_id = running_job(settings)
    silence(settings, settings.job_lease_seconds + 1)
    clock.now += settings.job_lease_seconds - 0.1
    assert reaper.run_once() == []
    assert job(settings, job_id).status == "running"
    clock.now += 0.1
    assert reaper.run_once() == [job_id]


def test_after_its_own_store_errors_a_reaper_gives_heartbeats_one_lease(
    settings: Settings,
) -> None:
    """A store outage stops every heartbeat: right after it, every lease looks expired. The
    reaper that saw the outage requeues nothing until the workers have had a lease to beat
    again (and their connections stuck on the silent store the time to give up); a worker
    that really died is requeued after that."""
    clock, sent = Clock(), Sent()
    sessions = session_factory(settings.database_url)
    reaper = Reaper(sessions, settings, sent, clock=clock)
    clock.now += settings.job_lease_seconds
    job_id = running_job(settings)
    # The store is away: a server that refuses connections.
    reaper.sessions = session_factory(f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    with pytest.raises(OperationalError):
        reaper.run_once()
    reaper.sessions = sessions  # back
    silence(settings, settings.job_lease_seconds + 5)
    quiet = settings.job_lease_seconds + STORE_STALL_SECONDS
    clock.now += quiet - 0.1
    assert reaper.run_once() == []
    assert job(settings, job_id).status == "running"
    clock.now += 0.1
    assert reaper.run_once() == [job_id]


def test_a_reaper_kept_waiting_by_the_store_holds_back_too(settings: Settings) -> None:
    """A store that hangs instead of refusing: the round that waited longer than a heartbeat
    for its connection requeues nothing, nor do the rounds of the next lease."""
    lease, beat = settings.job_lease_seconds, settings.heartbeat_seconds
    clock, sent = Clock(), Sent()
    # made at 1000; its round starts a lease later and gets its connection a heartbeat after
    times = iter([1000.0, 1000.0 + lease + 1, 1000.0 + lease + 1 + beat + 1])
    reaper = Reaper(
        session_factory(settings.database_url), settings, sent, clock=lambda: next(times, clock())
    )
    clock.now = 1000.0 + lease + beat + 2
    job_id = running_job(settings)
    silence(settings, settings.job_lease_seconds + 1)
    assert reaper.run_once() == []  # it waited for the store: maybe it was away
    assert job(settings, job_id).status == "running"
    clock.now += lease + STORE_STALL_SECONDS - 0.1
    assert reaper.run_once() == []
    clock.now += 0.1
    assert reaper.run_once() == [job_id]


def test_several_reapers_at_once_move_each_job_once(settings: Settings) -> None:
    sent = Sent()
    ids = {running_job(settings, worker=f"dead/{i}") for i in range(5)}
    silence(settings, settings.job_lease_seconds + 1)
    clocks = [Clock() for _ in range(4)]
    reapers = [
        Reaper(session_factory(settings.database_url), settings, sent, clock=c) for c in clocks
    ]
    for c in clocks:
        c.now += settings.job_lease_seconds
    barrier = threading.Barrier(len(reapers))
    rounds: list[list[str]] = []

    def reap(reaper: Reaper) -> None:
        barrier.wait()
        rounds.append(reaper.run_once())

    threads = [threading.Thread(target=reap, args=(r,)) for r in reapers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j for r in rounds for j in r) == sorted(ids)  # each sent by one reaper
    assert sorted(j for j, _ in sent) == sorted(ids)
    for job_id in ids:
        requeued = job(settings, job_id)
        assert (requeued.status, requeued.attempts, requeued.error["lost"]) == ("queued", 1, 1)


def test_a_send_that_fails_is_tried_again_next_round(settings: Settings) -> None:
    sent, clock = Sent(), Clock()
    broker_down = [True]

    def send(job_id: str, queue: str) -> None:
        if broker_down[0]:
            raise ConnectionError("the broker is away")
        sent(job_id, queue)

    reaper = Reaper(session_factory(settings.database_url), settings, send, clock=clock)
    clock.now += settings.job_lease_seconds
    job_id = running_job(settings)
    silence(settings, settings.job_lease_seconds + 1)
    with pytest.raises(ConnectionError):
        reaper.run_once()
    assert job(settings, job_id).status == "queued"  # committed before the send
    broker_down[0] = False
    assert reaper.run_once() == [job_id] and sent == [(job_id, "cpu")]


def test_a_silent_job_asked_to_cancel_is_cancelled_not_requeued(settings: Settings) -> None:
    clock, sent = Clock(), Sent()
    reaper = Reaper(session_factory(settings.database_url), settings, sent, clock=clock)
    clock.now += settings.job_lease_seconds
    job_id = running_job(settings)
    with session_factory(settings.database_url).begin() as s:
        jobs.request_cancel(s, job_id=job_id)
    silence(settings, settings.job_lease_seconds + 1)
    assert reaper.run_once() == [] and sent == []
    assert job(settings, job_id).status == "cancelled"
