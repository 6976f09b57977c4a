"""`epochal workers | queues`, and a job's warnings, against a real API and a real Celery
worker that registers itself (worker/registry.py) and beats."""

from __future__ import annotations

import copy
import uuid

import pytest
import torch

from epochal_client import Client
from tests.client.test_cli import run
from tests.e2e.stack import Stack, wait_until
from tests.specs import DIGITS

pytestmark = pytest.mark.e2e


def test_the_worker_registers_and_the_cli_shows_the_fleet(
    stack: Stack, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(url)
    [worker] = wait_until(client.workers, 90, "the worker to register", stack)
    assert worker.queues == ["cpu"] and worker.concurrency >= 1
    assert worker.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert worker.id.startswith("epochal-cpu-") and worker.version

    # A job it runs is listed with it, by id.
    spec = copy.deepcopy(DIGITS)
    spec["training"]["epochs"] = 200
    spec["tags"] = [f"fleet-{uuid.uuid4().hex[:8]}"]
    job = client.submit(spec)
    assert job.warnings == []  # a live worker serves its queue
    wait_until(lambda: client.get(job.id).status == "running", 60, "the job to run", stack)
    [worker] = client.workers()
    assert worker.running_jobs == [job.id] and worker.running == 1
    code, out, err = run(capsys, "workers", "--server", url)
    assert code == 0, err
    assert worker.id in out and job.id in out and f"1/{worker.concurrency}" in out

    # A cuda job waits: no worker serves the gpu queue, which its status says.
    cuda = copy.deepcopy(spec)
    cuda["resources"] = {"device": "cuda"}
    waiting = client.submit(cuda)
    assert [w.code for w in waiting.warnings] == ["queue_has_no_workers"]
    code, out, _ = run(capsys, "status", waiting.id, "--server", url)
    assert code == 0 and "warning: queue_has_no_workers" in out
    code, out, _ = run(capsys, "queues", "--server", url)
    assert code == 0 and waiting.id in out
    assert "warning: no live worker serves queue 'gpu'" in out
    gpu = {q.name: q for q in client.queues()}["gpu"]
    assert (gpu.queued, gpu.workers, gpu.oldest.id) == (1, 0, waiting.id)

    for job_id in (job.id, waiting.id):
        client.cancel(job_id)
    wait_until(lambda: client.get(job.id).finished, 60, "the job to stop", stack)
