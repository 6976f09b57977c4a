"""Metric-point write throughput: the worker's batched upsert vs. one commit per point.

    python bench/metric_writes.py [DATABASE_URL ...]    (default: a temporary SQLite file)

Both ways run in the same process against the same fresh store and print side by side.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import migrations
from core.store import jobs
from core.store.db import session_factory
from core.store.metrics import write_points

POINTS = 5_000
BATCH = 1_000


def fresh_job(url: str) -> str:
    with session_factory(url).begin() as s:
        return jobs.create_job(
            s, spec={}, name="bench", tags=[], queue="cpu", summary={}, epochs=1
        ).id


def batched(url: str) -> float:
    job_id, sessions = fresh_job(url), session_factory(url)
    start = time.perf_counter()
    for first in range(0, POINTS, BATCH):
        with sessions.begin() as s:
            write_points(
                s,
                job_id=job_id,
                points=[("batch_loss", i, 1, 1.0 / (i + 1)) for i in range(first, first + BATCH)],
            )
    return time.perf_counter() - start


def per_point(url: str) -> float:
    job_id, sessions = fresh_job(url), session_factory(url)
    start = time.perf_counter()
    for i in range(POINTS):
        with sessions.begin() as s:
            write_points(s, job_id=job_id, points=[("batch_loss", i, 1, 1.0 / (i + 1))])
    return time.perf_counter() - start


def main(urls: list[str]) -> None:
    print(
        f"{'store':<12} {'batched (points/s)':>20} {'one commit per point (points/s)':>34} {'speed-up':>9}"
    )
    for url in urls:
        migrations.upgrade(url)
        b, p = batched(url), per_point(url)
        print(f"{url.split(':')[0]:<12} {POINTS / b:>20,.0f} {POINTS / p:>34,.0f} {p / b:>8.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:] or [f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"])
