"""/v1/jobs: submit, read, list, cancel, and metric series."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api.auth import CallerDep
from api.deps import (
    ArtifactsDep,
    EnqueuerDep,
    FleetDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    UploadsDep,
)
from api.schemas import JobOut, JobPage, MetricsOut, SeriesOut
from api.submissions import IdempotencyDep
from api.submissions import submit_job as store_and_send
from core.dispatch import queue_for
from core.spec import JobSpec
from core.store import jobs as job_store
from core.store.deletion import delete_job as delete_ended_job
from core.store.job_queries import param_filters, parse_order
from core.store.metrics import read_series
from core.store.models import JobStatus
from core.training.plan import plan_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
CURSOR_HELP = (
    "the previous page's next_cursor, with the same order_by and order (422 for any other value)"
)


def normalize(spec: JobSpec) -> JobSpec:
    """Defaults filled in, and a seed drawn now if none was given, so every run is reproducible."""
    if spec.training.seed is not None:
        return spec
    training = spec.training.model_copy(update={"seed": secrets.randbelow(2**31)})
    return spec.model_copy(update={"training": training})


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobOut)
def submit_job(
    spec: JobSpec,
    session: SessionDep,
    settings: SettingsDep,
    queue: EnqueuerDep,
    uploads: UploadsDep,
    me: CallerDep,
    idem: IdempotencyDep,
    fleet: FleetDep,
) -> JSONResponse:
    """Queue a job in the caller's project. With an `Idempotency-Key`, a repeat of the same
    request answers the first response again and queues nothing (`Idempotent-Replayed: true`)."""
    # Refuses a spec that cannot run, before anything is written.
    plan = plan_job(spec, settings, uploads)
    spec = normalize(spec)
    return store_and_send(
        session,
        queue,
        settings,
        me,
        idem,
        render=lambda job: JobOut.of(job, fleet),
        spec=spec.model_dump(mode="json"),
        name=spec.name or f"{spec.dataset.name}-job",
        tags=spec.tags,
        queue=queue_for(spec.resources.device, settings.auto_queue),
        summary=plan.summary(),
        epochs=spec.training.epochs,
    )


@router.get("", response_model=JobPage)
def list_jobs(
    request: Request,
    session: SessionDep,
    me: CallerDep,
    fleet: FleetDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    sweep_id: Annotated[str | None, Query(max_length=36, description="a sweep's trials")] = None,
    order_by: Annotated[
        str,
        Query(
            max_length=200,
            json_schema_extra={"pattern": r"^(created_at|metric\..{1,128})$"},  # parse_order
            description="created_at, or metric.<series name>: a job's final value of that series "
            "(jobs without it come last)",
        ),
    ] = "created_at",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description=CURSOR_HELP)] = None,
) -> JobPage:
    """Besides these, any number of `param.<spec path>=<value>` filters, e.g.
    `param.training.optimizer.type=adam`, `param.model.layers[0].units=128`: the value is
    compared as JSON (`64`, `true`, `null`; quote it, `"64"`, to match a string)."""
    jobs, next_cursor = job_store.list_jobs(
        session,
        status=status_.value if status_ else None,
        tag=tag,
        sweep_id=sweep_id,
        params=param_filters(request.query_params.multi_items()),
        order=parse_order(order_by, order),
        limit=limit,
        cursor=cursor,
        project=me.project,
    )
    return JobPage(items=[JobOut.of(j, fleet) for j in jobs], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep, me: CallerDep, fleet: FleetDep) -> JobOut:
    """A queued job that no live worker can take carries `warnings`."""
    return JobOut.of(job_store.get_job(session, job_id=job_id, project=me.project), fleet)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_job(
    job_id: str, sessions: SessionsDep, artifacts: ArtifactsDep, me: CallerDep
) -> Response:
    """An ended job, with its metric points, checkpoints, exports and model files. `409` while
    it is queued or running (cancel it first), and for a sweep's trial (delete the sweep)."""
    delete_ended_job(sessions, artifacts, job_id=job_id, project=me.project)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def cancel_job(job_id: str, session: SessionDep, me: CallerDep) -> JobOut:
    job = job_store.request_cancel(session, job_id=job_id, project=me.project)
    session.commit()
    return JobOut.of(job)


@router.get("/{job_id}/metrics", response_model=MetricsOut, response_model_exclude_none=True)
def get_metrics(
    job_id: str,
    session: SessionDep,
    me: CallerDep,
    names: Annotated[str | None, Query(description="comma-separated series names")] = None,
    since_step: Annotated[
        int | None, Query(ge=0, description="only points after this step (incremental polling)")
    ] = None,
    max_points: Annotated[
        int | None,
        Query(ge=2, le=100_000, description="downsample longer series to this many buckets"),
    ] = None,
) -> MetricsOut:
    job_store.get_job(
        session, job_id=job_id, project=me.project
    )  # 404 for an unknown job, not an empty list
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
    series = read_series(
        session, job_id=job_id, names=wanted, since_step=since_step, max_points=max_points
    )
    return MetricsOut(job_id=job_id, series=[SeriesOut.of(s) for s in series])
