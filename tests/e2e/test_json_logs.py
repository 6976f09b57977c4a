"""`EPOCHAL_LOG_FORMAT=json`: the real API and worker processes log one JSON object a line, and
each line the worker logs while it runs a job names the job and its attempt."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import migrations
from tests.e2e.stack import FINISHED, Stack, wait_for_job
from tests.specs import moons_mlp

pytestmark = pytest.mark.e2e


# Printed on stdout from Celery's signal handler, where logging is not safe; not a log line.
CELERY_PRINTS = {"", "worker: Warm shutdown (MainProcess)"}


def json_lines(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line not in CELERY_PRINTS]  # each one parses


def test_api_and_worker_log_json_lines_and_worker_lines_name_the_job(
    tmp_path: Path, redis_url: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'epochal.db'}"
    migrations.upgrade(database_url)
    stack = Stack(
        tmp_path,
        database_url=database_url,
        broker_url=redis_url,
        broker_key_prefix=f"logs-{uuid.uuid4().hex[:8]}:",
        artifacts_dir=tmp_path / "artifacts",
        log_format="json",
    )
    try:
        stack.start_worker()  # starts while the API does
        stack.start_api(level="info")
        with stack.client() as client:
            job_id = client.post("/v1/jobs", json=moons_mlp(epochs=2)).json()["id"]
            job = wait_for_job(client, job_id, FINISHED, 120, stack)
        assert job["status"] == "succeeded", job["error"]
    finally:
        stack.stop()

    api = {(line["logger"], line["message"]) for line in json_lines(tmp_path / "api.log")}
    assert ("uvicorn.error", "Application startup complete.") in api, api
    assert any(
        logger == "uvicorn.access" and '"POST /v1/jobs HTTP/1.1" 201' in message
        for logger, message in api
    ), api

    worker = json_lines(tmp_path / "worker.log")
    loggers = {line["logger"] for line in worker}
    assert {"celery.apps.worker", "core.running.runner"} <= loggers, loggers  # Celery's too
    running = [line for line in worker if line["logger"] == "core.running.runner"]
    assert running and all((ln["job_id"], ln["attempt"]) == (job_id, 1) for ln in running)
    assert all(line["process"].startswith("ForkPoolWorker") for line in running)  # the pool's
