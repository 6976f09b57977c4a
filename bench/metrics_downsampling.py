"""Downsampled metric queries on PostgreSQL: 1,000 points out of a 1,000,000-point series.

    python bench/metrics_downsampling.py [POSTGRES_SERVER_URL]

Creates a scratch database on the server (default: EPOCHAL_BENCH_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres), fills one series with 1,000,000 points (one
spike, one dip), and times `read_series(max_points=1000)` beside reading the whole series.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

import migrations
from core.store import jobs
from core.store.db import dispose_engine, session_factory
from core.store.metrics import read_series, rebuild_rollups

POINTS = 1_000_000


def timed(action, repeats: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main(server: str) -> None:
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"epochal_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        sessions = session_factory(url)
        with sessions.begin() as s:
            job_id = jobs.create_job(
                s, spec={}, name="b", tags=[], queue="cpu", summary={}, epochs=1
            ).id
            s.execute(
                text(
                    "INSERT INTO metric_points (job_id, name, step, epoch, value, kind, recorded_at) "
                    "SELECT :job, 'batch_loss', g, g / 1000 + 1, "
                    "CASE WHEN g = 123457 THEN 1000.0 WHEN g = 876543 THEN -1000.0 "
                    "ELSE 1.0 / g END, 0, now() FROM generate_series(1, :n) AS g"
                ),
                {"job": job_id, "n": POINTS},
            )
            rebuild_rollups(
                s, job_id=job_id, name="batch_loss"
            )  # write_points keeps them up to date
            s.execute(text("ANALYZE metric_points"))
        with sessions() as s:
            down_t, [down] = timed(lambda: read_series(s, job_id=job_id, max_points=1000))
            full_t, [full] = timed(lambda: read_series(s, job_id=job_id), repeats=2)
        assert max(down.max) == 1000.0 and min(down.min) == -1000.0, "an extreme was lost"
        print(f"{'query':<34} {'points':>9} {'median ms':>10}")
        print(f"{'max_points=1000 (downsampled)':<34} {len(down.steps):>9,} {down_t * 1000:>10.1f}")
        print(f"{'whole series':<34} {len(full.steps):>9,} {full_t * 1000:>10.1f}")
        print("true min and max kept:", min(down.min), max(down.max))
    finally:
        dispose_engine(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    default = os.environ.get(
        "EPOCHAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    main(sys.argv[1] if len(sys.argv) > 1 else default)
