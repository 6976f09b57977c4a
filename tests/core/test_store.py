"""The job and metric repositories on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.errors import ConflictError, InvalidArgumentError, NotFoundError
from core.store import jobs
from core.store.base import utcnow
from core.store.db import session_factory
from core.store.metrics import delete_points, read_series, write_points
from core.store.models import Job, JobStatus, MetricPoint, MetricRollup


@pytest.fixture
def session(database_url: str) -> Session:
    with session_factory(database_url)() as s:
        yield s


def new_job(session: Session, name: str = "j", tags: tuple[str, ...] = ()) -> Job:
    job = jobs.create_job(
        session, spec={"k": 1}, name=name, tags=list(tags), queue="cpu", summary={}, epochs=3
    )
    session.commit()
    return job


def test_list_is_newest_first_with_keyset_pages_and_filters(session: Session) -> None:
    created = [new_job(session, f"j{i}", tags=("even",) if i % 2 == 0 else ()) for i in range(7)]
    seen, cursor = [], None
    while True:
        page, cursor = jobs.list_jobs(session, limit=3, cursor=cursor)
        seen += [j.name for j in page]
        if cursor is None:
            break
    assert seen == [j.name for j in reversed(created)]
    even, _ = jobs.list_jobs(session, tag="even", limit=10)
    assert [j.name for j in even] == ["j6", "j4", "j2", "j0"]
    jobs.request_cancel(session, job_id=created[0].id)
    session.commit()
    assert [j.name for j in jobs.list_jobs(session, status="cancelled")[0]] == ["j0"]
    with pytest.raises(InvalidArgumentError):
        jobs.list_jobs(session, cursor="not-a-cursor")


def test_concurrent_claims_are_won_by_exactly_one_worker(
    database_url: str, session: Session
) -> None:
    job = new_job(session)
    sessions = session_factory(database_url)
    barrier = threading.Barrier(4)

    def claim(worker: str) -> bool:
        with sessions.begin() as s:
            barrier.wait()
            return jobs.claim_job(s, job_id=job.id, worker=worker, device="cpu") is not None

    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(claim, ["a", "b", "c", "d"]))
    assert won.count(True) == 1
    session.expire_all()
    assert jobs.get_job(session, job_id=job.id).attempts == 1


def test_a_worker_that_lost_its_lease_can_no_longer_write(session: Session) -> None:
    job = new_job(session)
    assert jobs.claim_job(session, job_id=job.id, worker="a", device="cpu").attempts == 1
    session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=61)))
    assert jobs.requeue_stale_jobs(session, lease_seconds=60, max_attempts=3) == [(job.id, "cpu")]
    assert jobs.claim_job(session, job_id=job.id, worker="b", device="cpu").attempts == 2
    # a, waking up, tries every write it would make: all refused
    assert jobs.touch(session, job_id=job.id, attempt=1) == (False, False, False)
    assert not jobs.record_progress(session, job_id=job.id, attempt=1, progress={"epoch": 9})
    assert not jobs.finish_job(session, job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED)
    assert jobs.finish_job(session, job_id=job.id, attempt=2, status=JobStatus.SUCCEEDED)
    session.commit()
    done = jobs.get_job(session, job_id=job.id)
    session.refresh(done)
    assert (done.status, done.worker, done.progress["epoch"]) == ("succeeded", "b", 0)


def test_waiting_jobs_are_the_queued_ones_sent_before_the_grace_in_queue_order(
    session: Session,
) -> None:
    fresh = new_job(session)  # its message may not be sent yet
    first, second, running = new_job(session), new_job(session), new_job(session)
    for job, age in ((first, 30), (second, 20), (running, 40)):
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(enqueued_at=utcnow() - timedelta(seconds=age))
        )
    jobs.claim_job(session, job_id=running.id, worker="w", device="cpu")
    expected = [(first.id, "cpu"), (second.id, "cpu")]
    assert jobs.waiting_jobs(session, sent_before_seconds=10) == expected
    assert jobs.waiting_jobs(session, sent_before_seconds=10) == expected  # a read: no mark
    everyone = jobs.waiting_jobs(session, sent_before_seconds=-1)
    assert [j for j, _ in everyone] == [first.id, second.id, fresh.id]


def test_cancel_queued_at_once_running_by_flag_finished_refused(session: Session) -> None:
    queued, running = new_job(session), new_job(session)
    assert jobs.request_cancel(session, job_id=queued.id).status == "cancelled"
    jobs.claim_job(session, job_id=running.id, worker="w", device="cpu")
    flagged = jobs.request_cancel(session, job_id=running.id)
    assert (flagged.status, flagged.cancel_requested) == ("running", True)
    assert jobs.touch(session, job_id=running.id, attempt=1) == (True, True, False)
    with pytest.raises(ConflictError, match=r"already ended \(cancelled\)"):
        jobs.request_cancel(session, job_id=queued.id)
    with pytest.raises(NotFoundError):
        jobs.request_cancel(session, job_id="nope")


def test_a_job_that_keeps_losing_its_worker_fails_after_max_attempts(session: Session) -> None:
    """Out of memory, say: each attempt kills its worker. Requeued with a visible warning
    (attempts and losses counted), then failed on the third loss with the reason."""
    job = new_job(session)
    for attempt in (1, 2, 3):
        assert (
            jobs.claim_job(session, job_id=job.id, worker=f"w{attempt}", device="cpu").attempts
            == attempt
        )
        assert jobs.requeue_stale_jobs(session, lease_seconds=60, max_attempts=3) == []  # fresh
        session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=61)))
        requeued = jobs.requeue_stale_jobs(session, lease_seconds=60, max_attempts=3)
        session.commit()
        lost = jobs.get_job(session, job_id=job.id)
        session.refresh(lost)
        assert (lost.error["type"], lost.error["lost"], lost.error["worker"]) == (
            "worker_lost",
            attempt,
            f"w{attempt}",
        )
        if attempt < 3:
            assert requeued == [(job.id, "cpu")]
            assert (lost.status, lost.worker, lost.finished_at) == ("queued", None, None)
            [warning] = jobs.warnings_of(lost)
            assert warning.code == "worker_lost"
            assert f"attempt {attempt} stopped: its worker (w{attempt})" in warning.message
    assert requeued == []
    assert (lost.status, lost.attempts) == ("failed", 3) and lost.finished_at is not None
    assert "lost 3 times in a row" in lost.error["message"]
    assert (
        "out of memory" in lost.error["message"]
        and "EPOCHAL_MAX_ATTEMPTS=3" in lost.error["message"]
    )
    assert jobs.warnings_of(lost) == []  # an ended job has its error, not a warning


def test_losses_are_counted_afresh_once_an_attempt_ends_or_the_job_is_resumed(
    session: Session,
) -> None:
    job = new_job(session)
    jobs.claim_job(session, job_id=job.id, worker="w", device="cpu")
    session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=61)))
    jobs.requeue_stale_jobs(session, lease_seconds=60, max_attempts=2)
    assert jobs.claim_job(session, job_id=job.id, worker="w", device="cpu").attempts == 2
    # the second attempt fails on its own (a bad data set, say): the user resumes the job
    assert jobs.finish_job(
        session,
        job_id=job.id,
        attempt=2,
        status=JobStatus.FAILED,
        error={"type": "x", "message": "y"},
    )
    jobs.reopen_job(session, job_id=job.id)
    jobs.claim_job(session, job_id=job.id, worker="w", device="cpu")
    session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=61)))
    assert jobs.requeue_stale_jobs(session, lease_seconds=60, max_attempts=2) == [(job.id, "cpu")]
    session.commit()
    again = jobs.get_job(session, job_id=job.id)
    session.refresh(again)
    assert (again.status, again.attempts, again.error["lost"]) == ("queued", 3, 1)
    assert jobs.request_cancel(session, job_id=job.id).error is None  # cancelled, not lost


def test_metric_writes_are_idempotent_and_keep_nan_and_infinity(session: Session) -> None:
    job = new_job(session)
    points = [
        ("loss", 1, 1, 0.5),
        ("loss", 2, 1, math.nan),
        ("loss", 3, 1, math.inf),
        ("lr", 3, 1, -math.inf),
    ]
    write_points(session, job_id=job.id, points=points)
    write_points(
        session, job_id=job.id, points=[*points[:1], ("loss", 1, 1, 0.25)]
    )  # retried + corrected
    session.commit()
    assert session.scalar(select(func.count()).select_from(MetricPoint)) == 4
    series = {s.name: s for s in read_series(session, job_id=job.id)}
    assert series["loss"].steps == [1, 2, 3]
    assert series["loss"].values[0] == 0.25
    assert math.isnan(series["loss"].values[1]) and series["loss"].values[2] == math.inf
    assert series["lr"].values == [-math.inf]
    assert [s.name for s in read_series(session, job_id=job.id, names=["lr"])] == ["lr"]


def test_only_the_attempt_holding_a_job_publishes_its_checkpoints(session: Session) -> None:
    job = new_job(session)
    jobs.claim_job(session, job_id=job.id, worker="a", device="cpu")
    pointers = {"last": {"key": "k1", "epoch": 1, "step": 5, "attempt": 1}}
    assert jobs.record_checkpoint(session, job_id=job.id, attempt=1, checkpoint=pointers)
    session.execute(update(Job).values(status="queued"))
    jobs.claim_job(session, job_id=job.id, worker="b", device="cpu")
    stale = {"last": {"key": "k9", "epoch": 9, "step": 45, "attempt": 1}}
    assert not jobs.record_checkpoint(session, job_id=job.id, attempt=1, checkpoint=stale)
    session.commit()
    assert session.get(Job, job.id, populate_existing=True).checkpoint == pointers


def test_a_resumed_series_keeps_its_points_up_to_the_checkpoint(session: Session) -> None:
    job = new_job(session)
    points = [("batch_loss", s, 1 + (s - 1) // 100, float(s)) for s in range(1, 351)]
    write_points(session, job_id=job.id, points=[*points, ("val_loss", 300, 3, 0.5)])
    delete_points(session, job_id=job.id, after_step=150)
    session.commit()
    [batch] = read_series(session, job_id=job.id)
    assert batch.steps == list(range(1, 151))
    # The rollups follow: downsampling reads them, and sees no point after step 150.
    [down] = read_series(session, job_id=job.id, names=["batch_loss"], max_points=1)
    assert (down.steps, down.max) == ([150], [150.0])
    rollups = session.execute(
        select(MetricRollup.bucket, MetricRollup.points, MetricRollup.last_step)
        .where(MetricRollup.job_id == job.id)
        .order_by(MetricRollup.name, MetricRollup.bucket)
    ).all()
    assert [tuple(r) for r in rollups] == [(0, 100, 100), (1, 50, 150)]
    delete_points(session, job_id=job.id)
    assert read_series(session, job_id=job.id) == []
