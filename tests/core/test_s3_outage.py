"""A job trains while its S3 store is down: the checkpoint written during the outage is retried
(not lost), the job finishes, and its files are in the bucket afterwards.

The outage is real: a TCP relay in front of moto's server stops listening and drops its open
connections (new ones are refused, as by a store that is down), then listens again on the same
port; moto keeps what it holds, as a restarted S3 service does."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

import migrations
from core.running.runner import Runner
from core.store.db import session_factory
from tests.conftest import make_settings
from tests.core.test_job_runner import job_of, moons, submit
from tests.s3 import Relay, S3Server

EPOCHS = 4


def test_a_checkpoint_written_while_the_store_is_down_is_retried_and_the_job_finishes(
    s3_server: S3Server,
    s3_env: None,
    empty_sqlite_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    migrations.upgrade(empty_sqlite_url)
    bucket = s3_server.new_bucket()
    relay = Relay(int(s3_server.endpoint.rsplit(":", 1)[1]))
    settings = make_settings(
        empty_sqlite_url,
        "redis://unused",
        tmp_path,
        artifacts_url=f"s3://{bucket}/epochal",
        s3_endpoint_url=relay.endpoint,
        artifacts_timeout_seconds=5,
        metrics_flush_seconds=0.05,
        checkpoint_seconds=0,  # each epoch's checkpoint: the first one meets the outage
    )
    runner = Runner(session_factory(empty_sqlite_url), settings, "test-worker")
    job_id = submit(settings, moons(epochs=EPOCHS))
    outcome: list[str | None] = []
    relay.cut()  # down from the start: the first checkpoint's upload finds no store
    caplog.set_level(logging.WARNING, logger="core.artifacts.s3")
    thread = threading.Thread(target=lambda: outcome.append(runner.run(job_id)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while "checkpoints/epoch-1.safetensors: the artifacts store" not in caplog.text:
            assert time.monotonic() < deadline, "no checkpoint write met the outage"
            time.sleep(0.05)
        time.sleep(3)  # the store stays down a while longer; training waits for its writer
        assert thread.is_alive() and job_of(runner, job_id).status == "running"
    finally:
        relay.restore()
    thread.join(timeout=120)
    assert outcome == ["succeeded"]
    job = job_of(runner, job_id)
    assert job.summary["checkpoints"]["written"] == EPOCHS  # the outage's one among them
    assert "checkpoint of epoch" not in caplog.text  # no checkpoint failed
    last = job.checkpoint["last"]
    assert last["epoch"] == EPOCHS
    folder = f"epochal/jobs/{job_id}/attempt-1"
    assert s3_server.keys(bucket) == sorted(
        [f"epochal/{last['key']}", f"{folder}/model.safetensors", f"{folder}/preprocessing.json"]
    )
    assert runner.artifacts.read(last["key"])  # the published checkpoint reads back
    relay.cut()
