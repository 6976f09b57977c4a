"""Submissions under load: N concurrent POST /v1/jobs against PostgreSQL + Redis with 2 workers.

    python bench/submit_load.py                          # N = 300 and 1,000, own service
    python bench/submit_load.py -n 300 --drain-seconds 120
    python bench/submit_load.py --server URL --database-url URL   # a running service
    python bench/submit_load.py -n 1000 --pairs          # N/2 Idempotency-Keys, each sent twice

With --pairs, as the Python client does, each submission carries an Idempotency-Key (N/2 keys,
each sent twice at once) and is sent again with the same key after a 503/429 (Retry-After
honoured) or a dropped connection: every key must end with one 201 job, both sends the same, stored once, trained once.

Starts (unless --server) a fresh PostgreSQL database (EPOCHAL_BENCH_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/postgres), the API and two 1-process workers on a Redis
(EPOCHAL_BENCH_REDIS, default redis://127.0.0.1:6379/0) under a key prefix of its own. For each N
it fires N submissions of a tiny 1-epoch job at once while one reader, in a process of its own,
lists GET /v1/jobs in a loop, then prints: the answers by status (each must be 201, 503 or 429),
p50/p99 of the 201s, p99 of the reads during the burst, and after the workers drain the jobs (for at most
--drain-seconds): stored jobs == 201s, every trained job claimed once (attempts == 1) and its
epoch series not doubled. /proc/loadavg before and after. A FAIL line and exit status 1 on any
broken rule.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import psycopg
from service import free_port, wait_ready
from sqlalchemy import func, select

from cli.main import api_command, worker_command
from core.store.db import dispose_engine, session_factory
from core.store.models import Job, MetricPoint

# The smallest job that still trains: 64 samples of a 1-feature regression, one batch, one epoch.
SPEC = {
    "name": "bench-load",
    "dataset": {"name": "regression", "n_samples": 64},
    "model": {
        "layers": [
            {"type": "dense", "units": 4, "activation": "relu"},
            {"type": "dense", "units": 1},
        ]
    },
    "training": {
        "loss": "mean_squared_error",
        "optimizer": {"type": "sgd", "learning_rate": 0.01},
        "batch_size": 64,
        "epochs": 1,
        "seed": 0,
    },
    "resources": {"device": "cpu"},
}
EPOCH_SERIES = "loss"  # one point per epoch
ACCEPTED = {201, 429, 503}


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"bench_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        dispose_engine(url)
        with psycopg.connect(server, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def own_service(workers: int) -> Iterator[tuple[str, str]]:
    """The API and `workers` 1-process workers, as `epochal api` and `epochal worker` run them,
    on a fresh database; stopped (and the database dropped) on the way out."""
    postgres = os.environ.get(
        "EPOCHAL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis = os.environ.get("EPOCHAL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    with fresh_database(postgres) as db, tempfile.TemporaryDirectory(prefix="epochal-load-") as d:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHAL_")}
        env.update(
            EPOCHAL_DATABASE_URL=db,
            EPOCHAL_BROKER_URL=redis,
            EPOCHAL_BROKER_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:8]}:",
            EPOCHAL_ARTIFACTS_DIR=f"{d}/artifacts",
        )
        epochal = str(Path(sys.executable).parent / "epochal")
        subprocess.run([epochal, "migrate"], cwd=d, env=env, check=True, capture_output=True)
        port = free_port()
        commands = [api_command("127.0.0.1", port, "warning")]
        commands += [worker_command("cpu", 1, "warning")] * workers
        processes = []
        with open(Path(d) / "service.log", "wb") as log:
            try:
                for command in commands:
                    processes.append(
                        subprocess.Popen(command, cwd=d, env=env, stdout=log, stderr=log)
                    )
                url = f"http://127.0.0.1:{port}"
                wait_ready(url, Path(d) / "service.log")
                yield url, db
            finally:
                for process in processes:
                    process.send_signal(signal.SIGTERM)
                for process in processes:
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()


def reader(url: str, stop: Event, out: Queue) -> None:
    """GET /v1/jobs in a loop until `stop`, in a process of its own (the submitters' event loop
    must not slow the reads it measures); puts the latencies (s) and the failures."""
    reads: list[float] = []
    failures: list[str] = []
    dropped = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                r = client.get("/v1/jobs", params={"limit": 50})
            except httpx.RemoteProtocolError:
                # A kept-alive connection the server closed as the request went out (uvicorn's
                # keep-alive timeout racing a starved event loop): counted, sent again.
                dropped += 1
                continue
            except httpx.HTTPError as e:
                failures.append(repr(e))
                continue
            reads.append(time.perf_counter() - start)
            if r.status_code != 200:
                failures.append(f"status {r.status_code}")
    out.put((reads, failures, dropped))


async def burst(url: str, n: int, pairs: bool) -> list[tuple[int, float, str | None]]:
    """N submissions at once: (status or -1, seconds, job id or error). With `pairs`, N/2
    Idempotency-Keys each sent twice, and a 503/429 sent again (same key) after Retry-After."""
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    keys = [uuid.uuid4().hex for _ in range(n // 2)] if pairs else []
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def submit(i: int) -> tuple[int, float, str | None]:
            start = time.perf_counter()
            headers = {"Idempotency-Key": keys[i // 2]} if pairs else {}
            for _ in range(100):
                try:
                    r = await client.post("/v1/jobs", json=SPEC, headers=headers)
                except httpx.TransportError as e:
                    if pairs:  # the key makes sending again safe, as the client does
                        await asyncio.sleep(0.5)
                        continue
                    return -1, time.perf_counter() - start, type(e).__name__
                if not (pairs and r.status_code in (429, 503)):
                    break
                await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 2.0))
            job_id = r.json().get("id") if r.status_code == 201 else None
            return r.status_code, time.perf_counter() - start, job_id

        return await asyncio.gather(*(submit(i) for i in range(n)))


def job_ids(db: str) -> set[str]:
    with session_factory(db)() as s:
        return set(s.scalars(select(Job.id)))


def drain(db: str, new: set[str], seconds: float) -> dict[str, int]:
    sessions = session_factory(db)
    deadline = time.monotonic() + seconds
    while True:
        with sessions() as s:
            rows = s.execute(
                select(Job.status, func.count()).where(Job.id.in_(new)).group_by(Job.status)
            ).all()
        counts = dict(rows)
        if counts.get("queued", 0) + counts.get("running", 0) == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(2)


def check(db: str, before: set[str], created: set[str]) -> list[str]:
    failures = []
    with session_factory(db)() as s:
        stored = set(s.scalars(select(Job.id))) - before
        if stored != created:
            failures.append(
                f"{len(stored)} jobs stored, {len(created)} answered 201 "
                f"({len(stored - created)} stored without a 201, {len(created - stored)} 201s lost)"
            )
        twice = s.scalar(
            select(func.count()).select_from(Job).where(Job.attempts > 1, Job.id.in_(stored))
        )
        if twice:
            failures.append(f"{twice} jobs were claimed more than once (attempts > 1)")
        doubled = s.execute(
            select(MetricPoint.job_id, func.count())
            .where(MetricPoint.name == EPOCH_SERIES, MetricPoint.job_id.in_(stored))
            .group_by(MetricPoint.job_id)
            .having(func.count() != 1)
        ).all()
        if doubled:
            failures.append(f"{len(doubled)} jobs have other than one {EPOCH_SERIES!r} point")
        trained = s.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status == "succeeded", Job.id.in_(stored))
        )
        with_series = s.scalar(
            select(func.count(func.distinct(MetricPoint.job_id))).where(
                MetricPoint.name == EPOCH_SERIES, MetricPoint.job_id.in_(stored)
            )
        )
        print(f"trained: {trained} jobs succeeded, {with_series} with their {EPOCH_SERIES!r} point")
        if with_series < trained:
            failures.append(
                f"{trained - with_series} succeeded jobs have no {EPOCH_SERIES!r} point"
            )
    return failures


def run(url: str, db: str, n: int, drain_seconds: float, pairs: bool) -> bool:
    what = f" ({n // 2} Idempotency-Keys, each sent twice; 503/429 sent again)" if pairs else ""
    print(f"\n== N = {n} concurrent POST /v1/jobs{what} ==")
    print(f"loadavg before: {loadavg()}")
    before = job_ids(db)
    start = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    stop, out = spawn.Event(), spawn.Queue()
    read_process = spawn.Process(target=reader, args=(url, stop, out))
    read_process.start()
    time.sleep(1)  # reading before the burst starts
    answers = asyncio.run(burst(url, n, pairs))
    took = time.perf_counter() - start
    stop.set()
    reads, read_failures, dropped = out.get(timeout=300)
    read_process.join(30)
    statuses = Counter(code for code, _, _ in answers)
    print(
        f"answers in {took:.1f} s: " + ", ".join(f"{c}: {k}" for c, k in sorted(statuses.items()))
    )
    ok = True
    for code, count in statuses.items():
        if code not in ACCEPTED:
            ok = False
            errors = Counter(j for c, _, j in answers if c == code)
            print(f"FAIL: {count} answers {code} ({dict(errors)})")
    created = {job for code, _, job in answers if code == 201 and job}
    if pairs:
        split = sum(answers[i][2] != answers[i + 1][2] for i in range(0, n - 1, 2))
        print(
            f"keys: {n // 2}, distinct jobs answered: {len(created)}, keys answered twice: {split}"
        )
        if split or len(created) != n // 2:
            ok = False
            print(
                f"FAIL: {split} keys got two different answers; {len(created)} jobs for {n // 2} keys"
            )
    lat = [t for code, t, _ in answers if code == 201]
    refused = [t for code, t, _ in answers if code in (429, 503)]
    print(f"201 latency: p50 {pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms")
    if refused:
        print(
            f"503/429 latency: p50 {pct(refused, 50) * 1000:.0f} ms, p99 {pct(refused, 99) * 1000:.0f} ms"
        )
    if read_failures:
        ok = False
        print(f"FAIL: {len(read_failures)} reads failed during the burst: {Counter(read_failures)}")
    if dropped:
        print(f"note: {dropped} reads found their kept-alive connection closed, and were resent")
    if reads:
        print(
            f"GET /v1/jobs from 1 s before the burst to its end: {len(reads)} reads, p50 {statistics.median(reads) * 1000:.0f} ms, "
            f"p99 {pct(reads, 99) * 1000:.0f} ms"
        )
    t0 = time.perf_counter()
    counts = drain(db, job_ids(db) - before, drain_seconds)
    print(f"after {time.perf_counter() - t0:.0f} s of draining: jobs by status {counts}")
    failures = check(db, before, created)
    for f in failures:
        print(f"FAIL: {f}")
    print(f"loadavg after: {loadavg()}")
    if ok and not failures:
        print(f"PASS: every answer 201/503/429; {len(created)} stored == 201s; none claimed twice")
    return ok and not failures


def more_files() -> None:
    """1,000 connections need more descriptors than a shell's usual 1,024, on both sides (the
    service started here inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    more_files()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, action="append", help="concurrent submissions (repeatable)")
    parser.add_argument("--server", help="a running API (then --database-url is its store)")
    parser.add_argument("--database-url", help="the running service's PostgreSQL URL")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drain-seconds", type=float, default=600)
    parser.add_argument(
        "--pairs", action="store_true", help="N/2 Idempotency-Keys, each sent twice, retried"
    )
    args = parser.parse_args()
    sizes = args.n or [300, 1000]
    if args.server:
        if not args.database_url:
            parser.error("--server needs --database-url (to count stored jobs)")
        contexts = contextlib.nullcontext((args.server, args.database_url))
    else:
        contexts = own_service(args.workers)
    with contexts as (url, db):
        results = [run(url, db, n, args.drain_seconds, args.pairs) for n in sizes]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
