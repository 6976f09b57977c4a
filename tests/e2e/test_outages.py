"""End to end: the broker (Redis) stopped for 10 s and the store (PostgreSQL) for 20 s (twice the
job lease, so the heartbeats the outage swallows would cost the job were it not handled), and
started again.

Each store kind has one stack of its own (API + one worker) on a server that the test stops and
starts: `RedisProcess` and `PostgresProcess` (tests/servers.py). The branch's default lease and
reaper settings are used.

- Redis restarted with its append-only file, and without persistence (empty): the running job
  finishes once (an acknowledgement lost in the outage does not run it again), the queued jobs
  are not lost and run in their order, before a job submitted after the restart; a submission
  while Redis is down answers 503 and stores nothing.
- PostgreSQL restarted: every route family answers 503 `store_unavailable` (`/readyz`: 503
  `not_ready`), never 500; training goes on through the outage and no metric point is lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import kombu
import pytest

from core.dispatch import QUEUES
from core.running.broker_queues import RedisQueues
from tests.e2e.stack import FINISHED, Stack, own_stack, wait_for_epoch, wait_for_job, wait_until
from tests.e2e.test_service import check_digits_run
from tests.servers import PostgresProcess, RedisProcess, fresh_postgres_database
from tests.specs import DIGITS, moons_mlp

pytestmark = pytest.mark.e2e

BROKER_OUTAGE = 10.0  # seconds the broker stays down: no lease depends on it
STORE_OUTAGE = 20.0  # seconds the store stays down: twice the default job lease
PROBLEM = "application/problem+json"


def digits(name: str, epochs: int) -> dict:
    return {**DIGITS, "name": name, "training": {**DIGITS["training"], "epochs": epochs}}


def small(name: str) -> dict:
    """A job of a second or so."""
    return {**moons_mlp(2), "name": name}


def submit(client: httpx.Client, spec: dict) -> str:
    r = client.post("/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def job_ids(client: httpx.Client) -> set[str]:
    r = client.get("/v1/jobs", params={"limit": 200})
    assert r.status_code == 200, r.text
    return {job["id"] for job in r.json()["items"]}


def at(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def held(broker_url: str) -> set[str]:
    """The jobs the broker holds a message for: waiting, or taken and not acknowledged."""
    queues = RedisQueues.connect(broker_url)
    try:
        messages = queues.held(QUEUES, delivered_since=0)
    finally:
        queues.close()
    waiting = {job_id for queue in messages.waiting.values() for job_id, _ in queue}
    return waiting | messages.delivered


def restore_unacknowledged(broker_url: str) -> None:
    """What kombu does to a message unacknowledged for the visibility timeout (12 h by
    default): put it back in its queue, for a worker to take again."""
    with kombu.Connection(broker_url, transport_options={"visibility_timeout": 0}) as connection:
        connection.default_channel.qos.restore_visible(num=100)


# --- the broker ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def broker_stack(
    broker: RedisProcess, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with fresh_postgres_database(postgres_server_url) as database_url:
        settings = {
            "database_url": database_url,
            "broker_url": broker.url,
            "artifacts_dir": tmp_path_factory.mktemp("artifacts"),
        }
        with own_stack(tmp_path_factory.mktemp("broker-stack"), **settings) as stack:
            stack.start_worker()
            yield stack


RUNNING_EPOCHS = 6


@pytest.mark.parametrize("keep_data", [True, False], ids=["append-only-file", "no-persistence"])
def test_a_broker_restart_loses_no_job_and_keeps_their_order(
    broker: RedisProcess, broker_stack: Stack, keep_data: bool
) -> None:
    stack = broker_stack
    epochs = RUNNING_EPOCHS
    with stack.client() as client:
        running = submit(client, digits("running", epochs))
        wait_for_epoch(client, running, 1, stack)
        queued = [submit(client, small(f"queued-{i}")) for i in range(2)]
        stored = job_ids(client)

        broker.stop()
        stopped = time.monotonic()
        refused = client.post("/v1/jobs", json=digits("refused", 2))
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json()["type"] == "urn:epochal:problem:broker_unavailable"
        assert job_ids(client) == stored  # nothing was stored
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "broker: unreachable" in ready.json()["detail"]
        back = stopped + BROKER_OUTAGE
        if keep_data:  # the run ends in the outage: its acknowledgement cannot reach Redis
            ended = wait_for_job(client, running, FINISHED, 120, stack)
            assert ended["status"] == "succeeded", ended["error"]
            back = max(back, time.monotonic() + 5)  # the worker's ack fails meanwhile
        time.sleep(max(0.0, back - time.monotonic()))

        broker.start(keep_data=keep_data)
        restarted = time.time()
        later = submit(client, small("later"))  # must not overtake the queued ones
        jobs = [wait_for_job(client, j, FINISHED, 240, stack) for j in [running, *queued, later]]
        for job in jobs:
            assert (job["status"], job["attempts"]) == ("succeeded", 1), (job["name"], job["error"])
        check_digits_run(client, jobs[0], epochs)  # run once: each step once
        if keep_data:
            # The running job's acknowledgement failed in the outage (the worker sends it
            # again once reconnected). Whatever the broker kept runs no job again: put back
            # every unacknowledged message, as kombu does after the visibility timeout.
            restore_unacknowledged(broker.url)
            wait_until(lambda: not held(broker.url), 60, "the broker to hold no message", stack)
            assert client.get(f"/v1/jobs/{running}").json() == jobs[0]  # not run again
        started = [at(job["started_at"]) for job in jobs[1:]]
        assert started == sorted(started), [job["name"] for job in jobs[1:]]
        waited = started[0] - max(restarted, at(jobs[0]["finished_at"]))
        print(f"\nfirst queued job started {waited:.1f}s after the broker and the worker were free")
        assert waited < 60
        assert job_ids(client) == stored | {later}


# --- the store -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store() -> Iterator[PostgresProcess]:
    server = PostgresProcess()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def store_stack(
    store: PostgresProcess, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    settings = {
        "database_url": store.url,
        "broker_url": redis_url,
        "broker_key_prefix": f"outage-{uuid.uuid4().hex[:8]}:",
        "artifacts_dir": tmp_path_factory.mktemp("artifacts"),
        "checkpoint_seconds": 0,  # each epoch's checkpoint file shows training went on
    }
    with own_stack(tmp_path_factory.mktemp("store-stack"), **settings) as stack:
        stack.start_worker()
        yield stack


def answers_while_the_store_is_down(client: httpx.Client, job_id: str) -> None:
    """One request of each route family: 503, never 500, and nothing stored."""
    requests = [
        ("GET", f"/v1/jobs/{job_id}", None),
        ("GET", "/v1/jobs", None),
        ("GET", f"/v1/jobs/{job_id}/metrics", None),
        ("GET", "/v1/sweeps", None),
        ("GET", "/v1/datasets", None),
        ("POST", "/v1/jobs", digits("refused", 2)),
    ]
    for method, path, body in requests:
        r = client.request(method, path, json=body)
        assert r.status_code == 503, (method, path, r.status_code, r.text)
        assert r.headers["content-type"].startswith(PROBLEM), (method, path)
        assert r.json()["type"] == "urn:epochal:problem:store_unavailable", (method, path, r.text)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["type"] == "urn:epochal:problem:not_ready"
    assert "store: unreachable" in ready.json()["detail"]
    assert client.get("/healthz").status_code == 200


def checkpointed_epochs(artifacts: Path, job_id: str) -> set[int]:
    """The epochs whose checkpoint file the worker wrote (the files need no store)."""
    folder = artifacts / "jobs" / job_id / "attempt-1" / "checkpoints"
    return {int(p.name.removeprefix("epoch-").split(".")[0]) for p in folder.glob("epoch-*")}


def test_a_store_outage_answers_503_and_training_goes_on_without_losing_a_point(
    store: PostgresProcess, store_stack: Stack
) -> None:
    stack = store_stack
    artifacts = Path(stack.env["EPOCHAL_ARTIFACTS_DIR"])
    epochs = 60  # long enough on an idle machine to still be training when the store stops
    with stack.client() as client:
        job_id = submit(client, digits("through-the-outage", epochs))
        wait_for_epoch(client, job_id, 2, stack)
        before = client.get(f"/v1/jobs/{job_id}").json()["progress"]["epoch"]

        store.stop()
        stopped = time.monotonic()
        rounds = 0
        while time.monotonic() - stopped < STORE_OUTAGE:
            answers_while_the_store_is_down(client, job_id)
            rounds += 1
            time.sleep(1.0)
        trained = max(checkpointed_epochs(artifacts, job_id))
        assert trained > before, f"no training in the outage: epoch {before} -> {trained}"
        print(f"\n{rounds} rounds of 503s; epochs {before} -> {trained} while the store was down")

        store.start()
        wait_until(lambda: client.get("/readyz").status_code == 200, 30, "the API ready", stack)
        job = wait_for_job(client, job_id, FINISHED, 240, stack)
        assert (job["status"], job["attempts"]) == ("succeeded", 1), job["error"]
        check_digits_run(client, job, epochs)  # every step of every series, once
        assert job_ids(client) == {job_id}  # the submissions in the outage stored nothing
