"""/v1/jobs/{id}/resume and /v1/jobs/{id}/clone: a job run again, from where it stopped or
as a new job from its spec (optionally from its weights)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from api.auth import CallerDep
from api.deps import ArtifactsDep, EnqueuerDep, FleetDep, SessionDep, SettingsDep, UploadsDep
from api.queue import BrokerUnavailable
from api.routes.jobs import normalize
from api.schemas import JobOut
from api.submissions import IdempotencyDep, submit_job
from core import serving
from core.artifacts import Artifacts
from core.dispatch import queue_for
from core.errors import ConflictError, NotFoundError, SpecError
from core.running.resume import checkpoint_weights, weights_issues
from core.spec import JobSpec
from core.spec.issues import issues_of
from core.spec.job import Tag
from core.spec.lr_finder import SUGGESTED
from core.spec.paths import with_values
from core.store import jobs as job_store
from core.store import projects
from core.store.models import Job
from core.training.lr_finder import no_suggestion
from core.training.plan import plan_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("/{job_id}/resume", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def resume_job(
    job_id: str,
    session: SessionDep,
    settings: SettingsDep,
    queue: EnqueuerDep,
    uploads: UploadsDep,
    me: CallerDep,
    fleet: FleetDep,
) -> JobOut:
    """A cancelled or failed job back to the queue. Its next attempt continues from its
    `last` checkpoint (the response's `checkpoint.last`); a job without one starts over.
    A sweep's trial is refused: its sweep decides what runs (resume the sweep instead).
    Counts towards the project's active jobs (`429` past EPOCHAL_PROJECT_MAX_ACTIVE_JOBS)."""
    job = job_store.get_job(session, job_id=job_id, project=me.project)
    if job.trial is not None:
        raise ConflictError(
            f"job {job_id} is a trial of sweep {job.trial.sweep_id}; its sweep decides which "
            "trials run: resume the sweep (POST /v1/sweeps/{id}/resume) or clone the trial"
        )
    if job.status in job_store.RESUMABLE:  # (reopen_job refuses the others with a 409)
        plan_job(JobSpec.model_validate(job.spec), settings, uploads)  # its data set is there
        project = job.project
        projects.lock_project(session, project)
        projects.check_active_jobs(session, project, settings.project_max_active_jobs)
    job, before = job_store.reopen_job(session, job_id=job_id)
    session.commit()
    try:
        queue.send_train(job.id, job.queue)
    except BrokerUnavailable:
        job_store.undo_reopen(session, job_id=job_id, before=before)
        session.commit()
        raise
    return JobOut.of(job, fleet)


class CloneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='spec values by path, e.g. {"training.epochs": 5, "model.layers[0].units": 64}',
    )
    name: str | None = Field(None, max_length=200, description="default: the source's name")
    tags: list[Tag] | None = Field(None, max_length=32, description="default: the source's tags")
    init_from: Literal["final", "best", "last"] | None = Field(
        None,
        description="start from the source's weights (its final model, or a checkpoint) with a "
        "fresh optimizer: fine-tuning",
    )


@router.post("/{job_id}/clone", status_code=status.HTTP_201_CREATED, response_model=JobOut)
def clone_job(
    job_id: str,
    body: CloneIn,
    session: SessionDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    queue: EnqueuerDep,
    uploads: UploadsDep,
    me: CallerDep,
    idem: IdempotencyDep,
    fleet: FleetDep,
) -> JSONResponse:
    """A new job from the source's spec with `overrides`, checked like a submission, in the
    caller's project. Takes an `Idempotency-Key` as POST /v1/jobs does."""
    source = job_store.get_job(session, job_id=job_id, project=me.project)
    spec = _cloned_spec(source, body)
    plan = plan_job(spec, settings, uploads)
    weights = None
    if body.init_from is not None:
        weights = _source_weights(source, body.init_from, artifacts)
        if issues := weights_issues(spec, plan.info, weights):
            raise SpecError(issues)
    spec = normalize(spec)
    new_id = job_store.new_job_id()
    init_from = None
    if weights is not None:
        key = f"jobs/{new_id}/init/weights.safetensors"  # a copy: the source's files may go
        artifacts.write(key, save_safetensors(weights))
        init_from = {"job_id": source.id, "checkpoint": body.init_from, "weights": key}
        pointer = (source.checkpoint or {}).get(body.init_from)
        if pointer is not None:
            init_from["epoch"] = pointer["epoch"]
    copy = init_from["weights"] if init_from is not None else None
    return submit_job(
        session,
        queue,
        settings,
        me,
        idem,
        render=lambda job: JobOut.of(job, fleet),
        undo=(lambda: artifacts.delete(copy)) if copy is not None else None,
        job_id=new_id,
        spec=spec.model_dump(mode="json"),
        name=spec.name or source.name,
        tags=spec.tags,
        queue=queue_for(spec.resources.device, settings.auto_queue),
        summary=plan.summary(),
        epochs=spec.training.epochs,
        source_job_id=source.id,
        init_from=init_from,
    )


def _cloned_spec(source: Job, body: CloneIn) -> JobSpec:
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = body.name
    if body.tags is not None:
        values["tags"] = body.tags
    spec = source.spec
    overrides = dict(body.overrides)
    if overrides.get(LEARNING_RATE) == SUGGESTED:
        overrides[LEARNING_RATE] = _suggested_rate(source)
        spec = {**spec, "training": {**spec["training"], "lr_finder": None}}  # found already
    for path, value in {**overrides, **values}.items():
        try:
            spec = with_values(spec, {path: value})
        except ValueError as e:
            raise RequestValidationError(
                [{"loc": ("body", "overrides", path), "msg": str(e), "type": "invalid_path"}]
            ) from None
    try:
        return JobSpec.model_validate(spec)
    except ValidationError as e:
        raise SpecError(issues_of(e, spec)) from None


LEARNING_RATE = "training.optimizer.learning_rate"


def _suggested_rate(source: Job) -> float:
    """The learning rate the source's range test suggested (its summary's `lr_finder`)."""
    found = source.summary.get("lr_finder") or {}
    rate = found.get("suggested_lr")
    if rate is None:
        if not source.spec["training"].get("lr_finder"):
            why = "has no training.lr_finder"
        elif not found:
            why = f"is {source.status} and its range test has not ended"
        else:
            why = no_suggestion(found)
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "overrides", LEARNING_RATE),
                    "msg": f'"suggested" takes the learning rate that job {source.id}\'s '
                    f"learning-rate finder suggested, but that job {why}",
                    "type": "no_suggestion",
                }
            ]
        )
    return float(rate)


def _source_weights(source: Job, kind: str, artifacts: Artifacts) -> dict[str, Any]:
    if kind != "final":
        return checkpoint_weights(source, kind, artifacts)
    key = (source.summary.get("model") or {}).get("weights")
    if source.status not in serving.HAS_MODEL or not key:
        raise ConflictError(
            f"job {source.id} is {source.status}; it has a final model once it has succeeded "
            '(init_from "last" or "best" takes a checkpoint)'
        )
    try:
        return load_safetensors(artifacts.read(key))
    except FileNotFoundError:
        raise NotFoundError(f"the final model of job {source.id} is not in the store") from None
