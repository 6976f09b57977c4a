"""400 concurrent submissions against a real API on PostgreSQL and Redis, with keys required:
200 distinct Idempotency-Keys, each sent twice at once. Exactly 200 jobs are stored and exactly
200 messages queued, one per job; both sends of a key answer the same job. Answers of 503/429
are retried with the same key, as the client does. 400 requests are still 50 times the 8 writes
the API admits at once, so the pairs race and wait as they would at 1,000; the 1,000-request
burst is bench/submit_load.py's (--pairs), which also runs the whole path with workers.
(Training each once is the claim protocol's work, covered by the worker tests.)"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import subprocess
import time
import uuid

import httpx
import pytest
import redis
from sqlalchemy import func, select

from core.store.db import session_factory
from core.store.models import Job
from tests.e2e.stack import epochal_command, migrate, own_stack, service_env
from tests.specs import moons_mlp

pytestmark = pytest.mark.e2e
KEYS = 200


def make_key(workdir, settings: dict) -> str:
    """As an operator would: `epochal keys create` prints the key on stdout."""

    migrate(workdir, settings)
    done = subprocess.run(
        [epochal_command(), "keys", "create", "--project", "burst", "--role", "write"],
        cwd=workdir,
        env=service_env(**settings),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


async def send(client: httpx.AsyncClient, key: str, spec: dict) -> tuple[int, str, float, int]:
    """POST until the answer is final; (status, job id, seconds, retries)."""
    start, retries = time.monotonic(), 0
    while True:
        try:
            r = await client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code not in (429, 503):
            job_id = r.json().get("id", "") if r.status_code == 201 else r.text
            return r.status_code, job_id, time.monotonic() - start, retries
        retries += 1
        assert retries < 100, "still refused after 100 tries"
        wait = float(r.headers.get("retry-after", "0.2")) if r is not None else 0.2
        await asyncio.sleep(min(wait, 1.0) * (0.5 + (retries % 3) / 2))


async def burst(url: str, api_key: str) -> list[tuple[int, str, float, int]]:
    keys = [uuid.uuid4().hex for _ in range(KEYS)]
    spec = moons_mlp(epochs=1)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=120, headers=headers
    ) as client:
        return await asyncio.gather(*(send(client, k, spec) for k in keys for _ in range(2)))


def queued_job_ids(settings: dict) -> list[str]:
    messages = redis.Redis.from_url(settings["broker_url"]).lrange(
        f"{settings['broker_key_prefix']}cpu", 0, -1
    )
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in messages]


def test_concurrent_submissions_store_and_queue_each_key_once(
    production_settings: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("burst")
    settings = {**production_settings, "auth": "required"}
    api_key = make_key(workdir, settings)
    assert api_key.startswith("epk_")
    with own_stack(workdir, **settings) as stack:
        started = time.monotonic()
        answers = asyncio.run(burst(stack.url, api_key))
        took = time.monotonic() - started
    statuses = [a[0] for a in answers]
    assert statuses == [201] * len(answers), {s: statuses.count(s) for s in set(statuses)}
    ids = [a[1] for a in answers]
    assert all(ids[i] == ids[i + 1] for i in range(0, len(ids), 2)), "a key answered two jobs"
    assert len(set(ids)) == KEYS
    with session_factory(settings["database_url"])() as s:
        stored = s.scalar(select(func.count()).select_from(Job).where(Job.project == "burst"))
    assert stored == KEYS
    queued = queued_job_ids(settings)
    assert len(queued) == KEYS and set(queued) == set(ids)
    latencies = sorted(a[2] for a in answers)
    retried = sum(a[3] > 0 for a in answers)
    print(
        f"\n{len(answers)} submissions ({KEYS} keys x 2) in {took:.1f} s: {stored} jobs stored, "
        f"{len(queued)} queued; latency p50 {statistics.median(latencies):.2f} s, "
        f"p99 {latencies[int(0.99 * len(latencies))]:.2f} s; {retried} answers needed a retry"
    )
