"""Sweeps in a real store for the tests: submit as the API does, and end trials as a worker would."""

from __future__ import annotations

import copy
from typing import Any

from core.settings import Settings
from core.store import jobs as job_store
from core.store import sweeps as sweep_store
from core.store.db import session_factory
from core.store.metrics import write_points
from core.store.models import JobStatus
from core.sweeps.plan import plan_sweep
from core.sweeps.spec import SweepSpec
from tests.specs import moons_mlp

MOONS = moons_mlp(epochs=4)


def sweep_spec(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "base": copy.deepcopy(MOONS),
        "method": "grid",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {
            "training.optimizer.learning_rate": {"values": [0.001, 0.01, 0.1]},
            "model.layers[0].units": {"values": [4, 8]},
        },
        "max_parallel": 2,
    }
    spec.update(fields)
    return spec


def create(settings: Settings, spec: dict[str, Any]) -> str:
    plan = plan_sweep(SweepSpec.model_validate(spec), settings)
    with session_factory(settings.database_url).begin() as session:
        return sweep_store.create_sweep(
            session,
            name="t",
            method=plan.spec.method,
            spec=plan.spec.model_dump(mode="json"),
            base=plan.base,
            run_cap=plan.run_cap,
            max_parallel=plan.spec.max_parallel,
        ).id


def end_trial(
    settings: Settings,
    job_id: str,
    values: list[float],
    status: JobStatus = JobStatus.SUCCEEDED,
    summary: dict[str, Any] | None = None,
) -> None:
    """Claim the job, record `values` as val_accuracy at epochs 1.., and finish it (with
    `summary` where given)."""
    with session_factory(settings.database_url).begin() as session:
        job = job_store.claim_job(session, job_id=job_id, worker="w/1", device="cpu")
        assert job is not None
        points = [("val_accuracy", 10 * e, e, v) for e, v in enumerate(values, 1)]
        write_points(session, job_id=job_id, points=points)
        job_store.finish_job(
            session, job_id=job_id, attempt=job.attempts, status=status, summary=summary
        )
