"""The fleet: /v1/workers, /v1/queues, the warnings of jobs no live worker can take, and
/metrics, against a real store (SQLite and PostgreSQL) and Redis. Workers are registered
through the store's own registry functions (what worker/registry.py calls every heartbeat);
tests/client/test_fleet_cli.py sees a real Celery worker register itself."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from api.app import create_app
from core.running.runner import Runner
from core.settings import Settings
from core.store import jobs as job_store
from core.store import keys as key_store
from core.store import workers as worker_store
from core.store.base import utcnow
from core.store.db import session_factory
from core.store.keys import Role
from core.store.models import Job, MetricPoint, Worker
from core.store.workers import WorkerInfo
from tests.api.test_models import submit
from tests.conftest import make_settings
from tests.specs import DIGITS

CPU = WorkerInfo("epochal-cpu-1@a", "a", 11, ("cpu",), 2, "cpu")
GPU = WorkerInfo(
    "epochal-gpu-2@b", "b", 22, ("gpu",), 1, "cuda", "NVIDIA H100", 80 * 2**30, 1, "0.1.0"
)


def tiny(epochs: int = 2, device: str = "auto") -> dict:
    spec = copy.deepcopy(DIGITS)
    spec["training"]["epochs"] = epochs
    spec["resources"] = {"device": device}
    return spec


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers={"content-type": "application/json"}) as c:
        yield c


def beat(settings: Settings, info: WorkerInfo, age_seconds: float = 0.0) -> None:
    with session_factory(settings.database_url).begin() as session:
        worker_store.beat(session, info=info)
        if age_seconds:
            when = utcnow() - timedelta(seconds=age_seconds)
            session.execute(update(Worker).where(Worker.id == info.id).values(last_heartbeat=when))


def codes(job: dict) -> list[str]:
    return [w["code"] for w in job["warnings"]]


def test_workers_lists_the_live_ones_with_their_running_jobs(
    client: TestClient, settings: Settings
) -> None:
    beat(settings, CPU)
    beat(settings, GPU)
    beat(settings, GPU)  # a second beat updates the row, it does not add one
    stale = WorkerInfo("epochal-cpu-3@c", "c", 33, ("cpu",), 1, "cpu")
    beat(settings, stale, age_seconds=settings.worker_live_seconds + 1)
    job_id = submit(settings, tiny())
    with session_factory(settings.database_url).begin() as session:
        job_store.claim_job(session, job_id=job_id, worker=f"{CPU.id}/4242", device="cpu")

    workers = {w["id"]: w for w in client.get("/v1/workers").json()}
    assert set(workers) == {CPU.id, GPU.id}  # the silent one is not live
    cpu, gpu = workers[CPU.id], workers[GPU.id]
    assert (cpu["queues"], cpu["concurrency"], cpu["pid"]) == (["cpu"], 2, 11)
    assert cpu["device"] == {
        "type": "cpu",
        "gpu_name": None,
        "gpu_memory_bytes": None,
        "gpu_count": 0,
    }
    assert (cpu["running"], cpu["running_jobs"]) == (1, [job_id])
    assert gpu["device"] == {
        "type": "cuda",
        "gpu_name": "NVIDIA H100",
        "gpu_memory_bytes": 80 * 2**30,
        "gpu_count": 1,
    }
    assert (gpu["running"], gpu["running_jobs"], gpu["version"]) == (0, [], "0.1.0")

    with session_factory(settings.database_url).begin() as session:
        worker_store.forget(session, worker_id=CPU.id)
    assert [w["id"] for w in client.get("/v1/workers").json()] == [GPU.id]


def test_a_job_no_live_worker_can_take_carries_a_warning(
    client: TestClient, settings: Settings
) -> None:
    job = client.post("/v1/jobs", json=tiny()).json()
    assert job["queue"] == "cpu" and codes(job) == ["queue_has_no_workers"]
    assert "epochal worker --queues cpu" in job["warnings"][0]["message"]
    assert codes(client.get(f"/v1/jobs/{job['id']}").json()) == ["queue_has_no_workers"]
    assert codes(client.get("/v1/jobs").json()["items"][0]) == ["queue_has_no_workers"]

    beat(settings, GPU)  # serves another queue: no help
    assert codes(client.get(f"/v1/jobs/{job['id']}").json()) == ["queue_has_no_workers"]
    beat(settings, CPU)
    assert codes(client.get(f"/v1/jobs/{job['id']}").json()) == []
    beat(settings, CPU, age_seconds=settings.worker_live_seconds + 1)  # it went silent
    assert codes(client.get(f"/v1/jobs/{job['id']}").json()) == ["queue_has_no_workers"]

    # A cuda job: its queue has a worker, but without a GPU.
    beat(settings, GPU, age_seconds=settings.worker_live_seconds + 1)
    cuda = client.post("/v1/jobs", json=tiny(device="cuda")).json()
    assert cuda["queue"] == "gpu" and codes(cuda) == ["queue_has_no_workers"]
    beat(settings, WorkerInfo("epochal-gpu-9@d", "d", 9, ("gpu",), 1, "cpu"))
    assert codes(client.get(f"/v1/jobs/{cuda['id']}").json()) == ["no_gpu_worker"]
    beat(settings, GPU)
    assert codes(client.get(f"/v1/jobs/{cuda['id']}").json()) == []

    # Only a queued job waits: a cancelled one has nothing to warn about.
    client.post(f"/v1/jobs/{job['id']}/cancel", json={})
    assert codes(client.get(f"/v1/jobs/{job['id']}").json()) == []


def test_queues_show_depth_oldest_job_and_workers(client: TestClient, settings: Settings) -> None:
    empty = {q["name"]: q for q in client.get("/v1/queues").json()}
    assert set(empty) == {"cpu", "gpu"}
    assert empty["cpu"] == {
        "name": "cpu",
        "queued": 0,
        "broker_messages": 0,
        "oldest": None,
        "workers": 0,
        "gpu_workers": 0,
    }
    first = client.post("/v1/jobs", json=tiny()).json()["id"]
    client.post("/v1/jobs", json=tiny())
    client.post("/v1/jobs", json=tiny(device="cuda"))
    beat(settings, CPU)
    beat(settings, GPU)

    queues = {q["name"]: q for q in client.get("/v1/queues").json()}
    cpu, gpu = queues["cpu"], queues["gpu"]
    assert (cpu["queued"], cpu["workers"], cpu["gpu_workers"]) == (2, 1, 0)
    assert (gpu["queued"], gpu["workers"], gpu["gpu_workers"]) == (1, 1, 1)
    # Sent through the real broker, and no worker listens on this test's key prefix.
    assert (cpu["broker_messages"], gpu["broker_messages"]) == (2, 1)
    assert cpu["oldest"]["id"] == first and cpu["oldest"]["waiting_seconds"] >= 0

    # Another project sees its own queued jobs only; an admin's ?project=* sees them all.
    with session_factory(settings.database_url).begin() as session:
        session.execute(update(Job).where(Job.id == first).values(project="other"))
    cpu = client.get("/v1/queues").json()[0]
    assert cpu["queued"] == 1 and cpu["oldest"]["id"] != first
    assert client.get("/v1/queues?project=*").json()[0]["queued"] == 2


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_parse_and_follow_the_jobs(settings: Settings, tmp_path) -> None:
    # Short flushes, so that the sink measures the run's speed during a tiny job.
    settings = settings.model_copy(update={"metrics_flush_seconds": 0.02})
    with TestClient(create_app(settings), headers={"content-type": "application/json"}) as client:
        before = scrape(client)
        assert before[("epochal_store_up", ())] == 1
        assert before[("epochal_jobs", (("queue", "cpu"), ("status", "succeeded")))] == 0
        assert before[("epochal_metric_points_written_total", ())] == 0
        assert before[("epochal_workers", (("device", "cpu"),))] == 0

        beat(settings, CPU)
        beat(settings, GPU)
        job_id = submit(settings, tiny(epochs=3))
        queued = scrape(client)
        assert queued[("epochal_queue_depth", (("queue", "cpu"),))] == 1
        assert queued[("epochal_jobs", (("queue", "cpu"), ("status", "queued")))] == 1
        assert queued[("epochal_workers", (("device", "cpu"),))] == 1
        assert queued[("epochal_workers", (("device", "cuda"),))] == 1
        assert queued[("epochal_queue_workers", (("queue", "gpu"),))] == 1

        runner = Runner(session_factory(settings.database_url), settings, f"{CPU.id}/1")
        assert runner.run(job_id) == "succeeded"
        with session_factory(settings.database_url)() as session:
            job = session.get(Job, job_id)
            stored = session.scalar(
                select(func.count()).select_from(MetricPoint).where(MetricPoint.job_id == job_id)
            )
        assert job.points_written == stored > 0  # each point counted once
        assert job.steps_per_second is not None and job.steps_per_second > 0

        after = scrape(client)
        assert after[("epochal_queue_depth", (("queue", "cpu"),))] == 0
        assert after[("epochal_jobs", (("queue", "cpu"), ("status", "succeeded")))] == 1
        assert after[("epochal_metric_points_written_total", ())] == stored
        labels = (("queue", "cpu"), ("status", "succeeded"))
        assert after[("epochal_job_duration_seconds_count", labels)] == 1
        assert after[("epochal_job_duration_seconds_sum", labels)] > 0
        bucket = tuple(sorted((*labels, ("le", "+Inf"))))
        assert after[("epochal_job_duration_seconds_bucket", bucket)] == 1
        handler = (("handler", "/v1/jobs"), ("method", "GET"), ("status", "200"))
        assert after.get(("epochal_http_request_duration_seconds_count", handler), 0) == 0
        client.get("/v1/jobs")
        client.get("/v1/jobs/no-such-job")
        http = scrape(client)
        assert http[("epochal_http_request_duration_seconds_count", handler)] == 1
        template = (("handler", "/v1/jobs/{job_id}"), ("method", "GET"), ("status", "404"))
        assert http[("epochal_http_request_duration_seconds_count", template)] == 1

        # A running job's speed: its steps per second times its batch size.
        running = submit(settings, tiny())
        with session_factory(settings.database_url).begin() as session:
            claimed = job_store.claim_job(session, job_id=running, worker="w/1", device="cpu")
            job_store.record_progress(
                session,
                job_id=running,
                attempt=claimed.attempts,
                progress={"epoch": 0, "epochs": 2, "step": 10},
                points=5,
                steps_per_second=12.5,
            )
        now = scrape(client)
        assert now[("epochal_training_samples_per_second", (("queue", "cpu"),))] == 12.5 * 64
        assert now[("epochal_running_jobs", (("queue", "cpu"),))] == 1
        assert now[("epochal_metric_points_written_total", ())] == stored + 5


def test_metrics_ask_for_an_admin_key_or_the_metrics_token(
    database_url: str, redis_url: str, tmp_path
) -> None:
    settings = make_settings(
        database_url, redis_url, tmp_path, auth="required", metrics_token="scrape-me"
    )
    with session_factory(settings.database_url)() as session:
        _, admin = key_store.create_key(session, project="default", role=Role.ADMIN, name="a")
        _, reader = key_store.create_key(session, project="default", role=Role.READ, name="r")
        session.commit()
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        assert refused.status_code == 403 and "admin key" in refused.json()["detail"]
        assert scrape(client, Authorization=f"Bearer {admin}")[("epochal_store_up", ())] == 1
        assert scrape(client, Authorization="Bearer scrape-me")[("epochal_store_up", ())] == 1
        # A read key still reads the fleet's routes.
        ok = client.get("/v1/workers", headers={"Authorization": f"Bearer {reader}"})
        assert ok.status_code == 200 and ok.json() == []
