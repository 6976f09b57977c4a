"""End to end: workers SIGKILLed mid-training, with the default lease. With another worker
alive, the job runs there again within seconds, from its last checkpoint; with none, the API
says so, and the next worker to come resumes it exactly.

Two kills show recovery repeats with a worker started after a kill (the first round's
replacement is the second round's victim or survivor); the distribution of recovery times over
many kills is bench/recovery.py's to measure, not a test's."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load as load_safetensors

from tests.e2e.stack import Stack, own_stack, wait_for_job, wait_until
from tests.e2e.test_service import check_digits_run
from tests.specs import SLOW_DIGITS

pytestmark = pytest.mark.e2e

EPOCHS = 100  # the kill (at a checkpoint of epoch 2) lands mid-run even on an idle machine
SPEC = {**SLOW_DIGITS, "training": {**SLOW_DIGITS["training"], "epochs": EPOCHS}}
FINISHED = {"succeeded", "failed", "cancelled"}
KILLS = 2
RECOVERY_BOUND = 30.0  # seconds from the kill to running on another worker (issue 11)


def kill_after_a_checkpoint(
    client: httpx.Client, stack: Stack, job_id: str
) -> tuple[dict, datetime]:
    """SIGKILL the process tree of the worker running `job_id` once it has a checkpoint of
    epoch 2; returns the job as the kill left it and the moment of the kill."""

    def checkpointed() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if ((job["checkpoint"] or {}).get("last") or {}).get("epoch", 0) >= 2 else None

    deadline = time.monotonic() + 120
    while (job := checkpointed()) is None:  # polled fast: the kill must land mid-run
        assert time.monotonic() < deadline, f"no checkpoint of epoch 2\n{stack.logs()}"
        time.sleep(0.02)
    killed_at = datetime.now(UTC)
    stack.kill(stack.running(job["worker"]))
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["progress"]["epoch"] < EPOCHS, "the run ended before the kill"
    return job, killed_at


def test_a_killed_worker_s_job_runs_on_another_within_seconds_each_time(
    production_settings: dict, tmp_path: Path
) -> None:
    settings = {
        **production_settings,
        "broker_key_prefix": "kill-" + production_settings["broker_key_prefix"],
        "checkpoint_seconds": 0,  # a checkpoint each epoch: the kill lands after epoch 2's
    }
    recoveries = []
    with own_stack(tmp_path, **settings) as stack, stack.client() as client:
        stack.start_worker("worker-a")
        stack.start_worker("worker-b")
        for round_ in range(1, KILLS + 1):
            job_id = client.post("/v1/jobs", json=SPEC).json()["id"]
            killed, killed_at = kill_after_a_checkpoint(client, stack, job_id)

            def elsewhere(job_id: str = job_id) -> dict | None:
                job = client.get(f"/v1/jobs/{job_id}").json()
                return job if job["attempts"] == 2 and job["status"] != "queued" else None

            moved = wait_until(elsewhere, 60, f"job {job_id} to run again", stack)
            assert moved["worker"] != killed["worker"]
            started = datetime.fromisoformat(moved["started_at"])  # the claim, by the store
            recoveries.append((started - killed_at).total_seconds())
            print(
                f"round {round_}: running again on another worker {recoveries[-1]:.1f}s after the kill"
            )
            stack.start_worker(f"worker-{round_}")  # two workers again, for the next round
            job = wait_for_job(client, job_id, FINISHED, 180, stack)
            assert job["status"] == "succeeded", job["error"]
            assert (job["attempts"], job["error"], job["warnings"]) == (2, None, [])
            resumed = job["summary"]["resumed_from"]
            assert resumed["attempt"] == 1 and 2 <= resumed["epoch"] < EPOCHS
            check_digits_run(client, job, EPOCHS)  # every series: each step once
    print(
        f"recovery over {KILLS} kills: median {statistics.median(recoveries):.1f}s, "
        f"range {min(recoveries):.1f}-{max(recoveries):.1f}s"
    )
    assert max(recoveries) < RECOVERY_BOUND, recoveries


def test_a_job_whose_only_worker_died_says_so_then_resumes_exactly(
    production_settings: dict, tmp_path: Path
) -> None:
    """No worker is left to notice: the API's reaper requeues the job and shows it lost. The
    next worker resumes it from its checkpoint, to the weights of an uninterrupted run."""
    settings = {
        **production_settings,
        "broker_key_prefix": "resume-" + production_settings["broker_key_prefix"],
        "checkpoint_seconds": 0,
    }
    with own_stack(tmp_path, **settings) as stack, stack.client() as client:
        stack.start_worker("worker-1")
        job_id = client.post("/v1/jobs", json=SPEC).json()["id"]
        _, killed_at = kill_after_a_checkpoint(client, stack, job_id)

        def lost() -> dict | None:
            job = client.get(f"/v1/jobs/{job_id}").json()
            return job if job["warnings"] else None

        job = wait_until(lost, 60, "the job to show its worker lost", stack)
        shown = (datetime.now(UTC) - killed_at).total_seconds()
        print(f"shown lost {shown:.1f}s after the kill, with no worker alive")
        assert (job["status"], job["attempts"], job["worker"]) == ("queued", 1, None)
        assert "worker_lost" in [w["code"] for w in job["warnings"]]
        assert shown < RECOVERY_BOUND
        # Two workers: the uninterrupted reference run trains beside the resumed one.
        stack.start_worker("worker-2")
        stack.start_worker("worker-3")
        reference_id = client.post("/v1/jobs", json=SPEC).json()["id"]
        job = wait_for_job(client, job_id, FINISHED, 240, stack)
        assert job["status"] == "succeeded", job["error"]
        assert job["attempts"] == 2
        resumed = job["summary"]["resumed_from"]
        assert resumed["attempt"] == 1 and 2 <= resumed["epoch"] < EPOCHS
        check_digits_run(client, job, EPOCHS)  # a complete series: no gap, no duplicate

        reference = wait_for_job(client, reference_id, {"succeeded", "failed"}, 240, stack)
        assert reference["status"] == "succeeded" and reference["attempts"] == 1
        resumed_weights = load_safetensors(client.get(f"/v1/jobs/{job_id}/model").content)
        reference_weights = load_safetensors(client.get(f"/v1/jobs/{reference_id}/model").content)
        assert resumed_weights.keys() == reference_weights.keys()
        for name, tensor in reference_weights.items():
            assert torch.equal(resumed_weights[name], tensor), name
        assert job["summary"]["final"] == reference["summary"]["final"]
        for name in ("batch_loss", "val_loss"):
            [a] = client.get(f"/v1/jobs/{job_id}/metrics", params={"names": name}).json()["series"]
            [b] = client.get(f"/v1/jobs/{reference_id}/metrics", params={"names": name}).json()[
                "series"
            ]
            assert a == b, name
