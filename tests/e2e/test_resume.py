"""End to end: a worker SIGKILLed mid-training; another resumes the job from its last
checkpoint, and the job ends with the weights of an uninterrupted run of the same spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors

from tests.e2e.stack import own_stack, wait_for_job, wait_until
from tests.e2e.test_service import check_digits_run
from tests.specs import DIGITS

pytestmark = pytest.mark.e2e

EPOCHS = 40  # long enough (seconds) that the kill lands mid-run on an idle machine


def test_a_killed_worker_is_resumed_from_its_checkpoint_exactly(
    production_settings: dict, tmp_path: Path
) -> None:
    settings = {
        **production_settings,
        "broker_key_prefix": "resume-" + production_settings["broker_key_prefix"],
        "job_lease_seconds": 3,
    }
    spec = {**DIGITS, "training": {**DIGITS["training"], "epochs": EPOCHS}}
    with own_stack(tmp_path, **settings) as stack, stack.client() as client:
        stack.start_worker("worker-1")
        job_id = client.post("/v1/jobs", json=spec).json()["id"]

        def checkpointed() -> bool:
            job = client.get(f"/v1/jobs/{job_id}").json()
            return ((job["checkpoint"] or {}).get("last") or {}).get("epoch", 0) >= 3

        wait_until(checkpointed, 120, "a checkpoint of epoch 3", stack)
        stack.kill("worker-1")
        killed_at = client.get(f"/v1/jobs/{job_id}").json()
        assert killed_at["progress"]["epoch"] < EPOCHS, "the run ended before the kill"
        stack.start_worker("worker-2")
        job = wait_for_job(client, job_id, {"succeeded", "failed", "cancelled"}, 240, stack)
        assert job["status"] == "succeeded", job["error"]
        assert job["attempts"] == 2
        resumed = job["summary"]["resumed_from"]
        assert resumed["attempt"] == 1 and 3 <= resumed["epoch"] < EPOCHS
        check_digits_run(client, job, EPOCHS)  # a complete series: no gap, no duplicate

        reference_id = client.post("/v1/jobs", json=spec).json()["id"]
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
