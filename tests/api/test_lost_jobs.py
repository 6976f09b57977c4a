"""The API's own reaper (started with the app): a job whose worker died is noticed, shown and
sent again even when no worker is alive to notice it. Real store, real Redis, no worker."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from core.store import jobs
from core.store.db import session_factory
from tests.core.test_reaper import running_job, silence
from tests.worker.test_recovery import messages

JSON = {"content-type": "application/json"}


def test_the_api_requeues_a_dead_workers_job_and_shows_it_lost(settings: Settings) -> None:
    quick = settings.model_copy(
        update={"heartbeat_seconds": 0.25, "job_lease_seconds": 1.0, "reaper_seconds": 0.1}
    )
    with TestClient(create_app(quick), headers=JSON) as client:
        job_id = running_job(quick, worker="gone/42", queue="gpu")
        assert client.get(f"/v1/jobs/{job_id}").json()["warnings"] == []
        silence(quick, 2.0)  # its worker died two seconds ago
        deadline = time.monotonic() + 15
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] == "running":
            assert time.monotonic() < deadline, "the API's reaper did not requeue the job"
            time.sleep(0.1)
    assert (job["status"], job["attempts"], job["worker"]) == ("queued", 1, None)
    # No worker is registered either: the job says both why it waits and that none can take it.
    warning, no_workers = job["warnings"]
    assert warning["code"] == "worker_lost" and "(gone/42)" in warning["message"]
    assert no_workers["code"] == "queue_has_no_workers"
    assert job["error"]["type"] == "worker_lost"
    assert messages(quick, "gpu") == [job_id]  # sent again, for a worker to resume it
    with session_factory(quick.database_url).begin() as s:  # a worker takes it
        jobs.claim_job(s, job_id=job_id, worker="alive/1", device="cuda")
        assert jobs.warnings_of(jobs.get_job(s, job_id=job_id)) == []
