"""Metric series queries: incremental polling and downsampling that never hides a spike."""

from __future__ import annotations

import math

import pytest
from sqlalchemy.orm import Session

from core.store import jobs
from core.store.db import session_factory
from core.store.metrics import read_series, write_points


@pytest.fixture
def session(database_url: str) -> Session:
    with session_factory(database_url)() as s:
        yield s


@pytest.fixture
def job_id(session: Session) -> str:
    job = jobs.create_job(session, spec={}, name="m", tags=[], queue="cpu", summary={}, epochs=1)
    # 10,000 steps of a smooth curve with one spike and one NaN, and a short per-epoch series
    points = [("batch_loss", step, 1 + step // 1000, 1.0 / step) for step in range(1, 10_001)]
    points[4_321] = ("batch_loss", 4_322, 5, 99.0)
    points[7_000] = ("batch_loss", 7_001, 8, math.nan)
    points += [("val_loss", 1000 * e, e, 0.5 / e) for e in range(1, 11)]
    write_points(session, job_id=job.id, points=points)
    session.commit()
    return job.id


def test_downsampling_keeps_the_extremes_and_the_last_value_of_each_bucket(
    session: Session, job_id: str
) -> None:
    loss, val = read_series(session, job_id=job_id, max_points=100)
    assert (loss.name, len(loss.steps)) == ("batch_loss", 100)
    assert loss.steps[:2] == [100, 200] and loss.steps[-1] == 10_000  # each bucket's last step
    assert loss.values[0] == pytest.approx(1 / 100)
    assert max(loss.max) == 99.0  # the spike survives inside its bucket
    spiky = loss.max.index(99.0)
    assert loss.steps[spiky - 1] < 4_322 <= loss.steps[spiky]
    assert loss.min[0] == pytest.approx(1 / 100) and loss.max[0] == 1.0
    assert val.min is None and val.steps == [1000 * e for e in range(1, 11)]  # short: untouched


def test_a_nan_stays_out_of_its_buckets_extremes_and_is_kept_in_the_raw_series(
    session: Session, job_id: str
) -> None:
    [loss] = read_series(session, job_id=job_id, names=["batch_loss"], max_points=100)
    bucket = next(i for i, step in enumerate(loss.steps) if step >= 7_001)
    assert loss.min[bucket] == pytest.approx(1 / 7_100)
    assert loss.max[bucket] == pytest.approx(1 / 7_002)  # step 7,001 holds the NaN
    [raw] = read_series(session, job_id=job_id, names=["batch_loss"], since_step=7_000)
    assert raw.steps[0] == 7_001 and math.isnan(raw.values[0])


def test_since_step_returns_only_newer_points(session: Session, job_id: str) -> None:
    [loss, val] = read_series(session, job_id=job_id, since_step=9_990)
    assert loss.steps == list(range(9_991, 10_001))
    assert val.steps == [10_000]
    assert read_series(session, job_id=job_id, since_step=10_000) == []


def test_rollups_give_the_same_buckets_as_scanning_every_point(
    session: Session, job_id: str
) -> None:
    from_rollups = read_series(session, job_id=job_id, names=["batch_loss"], max_points=50)
    # since_step=0 keeps every point but takes the scanning path (rollups are used without it)
    scanned = read_series(session, job_id=job_id, names=["batch_loss"], since_step=0, max_points=50)
    assert from_rollups == scanned
    assert len(from_rollups[0].steps) == 50


def test_rollups_follow_rewritten_points(session: Session, job_id: str) -> None:
    write_points(
        session, job_id=job_id, points=[("batch_loss", 4_322, 5, 0.5)]
    )  # the spike, corrected
    session.commit()
    [loss] = read_series(session, job_id=job_id, names=["batch_loss"], max_points=100)
    assert max(loss.max) == 1.0  # step 1's 1/1 is now the largest value
