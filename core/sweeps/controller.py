"""The sweep controller: one idempotent step, `advance`, that any process may call at any time.

There is no process per sweep. The API calls `advance` when a sweep is submitted or resumed, a
worker when one of its trials ends, and each worker's reaper thread every few seconds for every
running sweep (so a lost event only delays a sweep). All its state is in SQL: `advance` locks
the sweep's row, reads the trials' states, tells Optuna about finished trials (bayes), creates
trials up to `max_parallel` in flight and `run_cap` in all, marks the sweep finished when every
trial has ended and none is left to create, commits, and only then sends the new trials (as the
API does for a job: a message never names a job that is not committed).

The controller does not know Celery: it is given `send(job_id, queue)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from core.dispatch import queue_for
from core.errors import ConflictError
from core.settings import Settings
from core.spec.job import JobSpec
from core.store import jobs as job_store
from core.store import projects
from core.store import sweeps as sweep_store
from core.store.base import utcnow
from core.store.datasets import SessionUploads
from core.store.models import JobStatus, Sweep, SweepStatus
from core.sweeps import optuna_sampler, space
from core.sweeps.plan import build_trial, check_trial
from core.sweeps.spec import SweepError, SweepSpec

log = logging.getLogger(__name__)
Send = Callable[[str, str], None]


@dataclass
class Advance:
    created: list[tuple[str, str]] = field(default_factory=list)  # (job id, queue) queued
    invalid: list[str] = field(default_factory=list)  # trials whose spec could not run
    status: str = ""


def advance(session: Session, *, sweep_id: str, settings: Settings, send: Send) -> Advance:
    """Move one sweep on (see the module's doc). Commits `session`; raises what `send` raises,
    after the commit: an unsent queued trial is sent again by the workers' reaper."""
    result = _advance_locked(session, sweep_id, settings)
    session.commit()
    for job_id, queue in result.created:
        send(job_id, queue)
    return result


def _advance_locked(session: Session, sweep_id: str, settings: Settings) -> Advance:
    sweep = sweep_store.lock_sweep(session, sweep_id=sweep_id)
    result = Advance(status=sweep.status)
    if SweepStatus(sweep.status).ended:
        return result
    spec = SweepSpec.model_validate(sweep.spec)
    if spec.method == "bayes":
        _tell_finished(session, sweep, spec, settings)
    counts = sweep_store.counts(session, sweep_id=sweep_id)
    in_flight = counts[JobStatus.QUEUED.value] + counts[JobStatus.RUNNING.value]
    if sweep.status == SweepStatus.RUNNING.value:
        # Trials wait for room under the project's quota of active jobs (a later tick or
        # trial completion makes them), so a sweep never takes its project past it.
        quota = settings.project_max_active_jobs - projects.active_jobs(session, sweep.project)
        room = min(sweep.max_parallel - in_flight, sweep.run_cap - sweep.trials, quota)
        for _ in range(max(room, 0)):
            _create_trial(session, sweep, spec, settings, result)
        in_flight += len(result.created)
    if sweep.trials >= sweep.run_cap and in_flight == 0:
        sweep.status = SweepStatus.FINISHED.value
        sweep.finished_at = utcnow()
        log.info("sweep %s: finished after %d trials", sweep.id, sweep.trials)
    session.flush()
    result.status = sweep.status
    return result


def _propose(
    sweep: Sweep, spec: SweepSpec, settings: Settings, number: int
) -> tuple[int, dict[str, Any]]:
    assert spec.seed is not None
    if spec.method == "grid":
        return number, space.grid_point(spec.parameters, number)
    if spec.method == "random":
        return number, space.sample(spec.parameters, spec.seed, number)
    return optuna_sampler.ask(
        settings.database_url,
        sweep_id=sweep.id,
        goal=spec.metric.goal,
        parameters=spec.parameters,
        seed=spec.seed,
        startup_trials=spec.startup_trials,
    )


def _create_trial(
    session: Session, sweep: Sweep, spec: SweepSpec, settings: Settings, result: Advance
) -> None:
    """The next trial: its spec checked as a submitted job's is. One that cannot run (a sampled
    combination the submission checks did not cover) is stored failed, never queued."""
    number, params = _propose(sweep, spec, settings, sweep.trials)
    trial = build_trial(spec, sweep.base, params, number=number)
    try:
        plan = check_trial(trial, params, settings, SessionUploads(session, sweep.project))
        job_spec = JobSpec.model_validate(trial)
        error = None
    except SweepError as e:
        plan, job_spec, error = None, None, {"type": "invalid_spec", "message": str(e)}
    sweep.trials += 1
    job = job_store.create_job(
        session,
        spec=job_spec.model_dump(mode="json") if job_spec else trial,
        name=trial["name"],
        tags=trial.get("tags", []),
        queue=queue_for(job_spec.resources.device if job_spec else "auto", settings.auto_queue),
        summary=plan.summary() if plan else {},
        epochs=job_spec.training.epochs if job_spec else 0,
        project=sweep.project,
        created_by=sweep.created_by,
    )
    sweep_store.add_trial(session, sweep=sweep, job=job, number=number, params=params)
    if error is not None:
        sweep_store.fail_job(session, job_id=job.id, error=error)
        result.invalid.append(job.id)
        log.warning("sweep %s: trial %d cannot run: %s", sweep.id, number, error["message"])
    else:
        result.created.append((job.id, job.queue))


def _tell_finished(session: Session, sweep: Sweep, spec: SweepSpec, settings: Settings) -> None:
    """Tell Optuna each finished trial's result (its best value of the metric), once."""
    maximize = spec.metric.goal == "maximize"
    values = sweep_store.best_values(
        session, sweep_id=sweep.id, name=spec.metric.name, maximize=maximize
    )
    for trial, status in sweep_store.untold_finished(session, sweep_id=sweep.id):
        value = values.get(trial.job_id, (None, 0))[0]
        state = {"succeeded": "complete", "pruned": "pruned"}.get(status, "fail")
        if state == "complete" and value is None:
            state = "fail"  # it never recorded the metric
        optuna_sampler.tell(
            settings.database_url,
            sweep_id=sweep.id,
            goal=spec.metric.goal,
            number=trial.number,
            value=value,
            state=state,
        )
        sweep_store.mark_told(session, job_id=trial.job_id)


# --- the sweep's own life: pause, resume, cancel, and the periodic tick -----------------------


def set_status(session: Session, *, sweep_id: str, action: str) -> Sweep:
    """pause: no new trials, running ones go on; resume: back to running; cancel: queued and
    running trials are cancelled. Raises ConflictError on an ended sweep. Does not commit."""
    sweep = sweep_store.lock_sweep(session, sweep_id=sweep_id)
    status = SweepStatus(sweep.status)
    if status.ended:
        raise ConflictError(
            f"sweep {sweep_id} already ended ({status.value}); only a running or paused sweep "
            f"can be {'cancelled' if action == 'cancel' else action + 'd'}"
        )
    if action == "pause":
        sweep.status = SweepStatus.PAUSED.value
    elif action == "resume":
        sweep.status = SweepStatus.RUNNING.value
    else:
        sweep_store.cancel_trials(session, sweep_id=sweep_id)
        sweep.status = SweepStatus.CANCELLED.value
        sweep.finished_at = utcnow()
    session.flush()
    return sweep


def after_trial(session: Session, *, job_id: str, settings: Settings, send: Send) -> Advance | None:
    """A trial-completion event: advance the job's sweep, if it is a trial."""
    sweep_id = sweep_store.sweep_of_job(session, job_id=job_id)
    session.rollback()  # end the read, so the lock is the transaction's first write
    if sweep_id is None:
        return None
    return advance(session, sweep_id=sweep_id, settings=settings, send=send)


def tick(sessions: Any, *, settings: Settings, send: Send) -> int:
    """Advance every running sweep, each in its own transaction; returns how many were."""
    with sessions() as session:
        ids = sweep_store.running_sweep_ids(session)
    for sweep_id in ids:
        with sessions() as session:
            try:
                advance(session, sweep_id=sweep_id, settings=settings, send=send)
            except Exception:
                log.warning("sweep %s: tick failed", sweep_id, exc_info=True)
    return len(ids)
