"""/v1/jobs/{id}/evaluate: a succeeded job's loss and metrics on a data set, in the API process.

The model comes from the same bounded cache as prediction; the data set may be a built-in (with
the job's own options when it is the job's data set) or an upload, up to
EPOCHAL_MAX_EVALUATE_SAMPLES samples.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import CallerDep
from api.deps import ArtifactsDep, SessionDep, SettingsDep, UploadsDep
from api.routes.models import ModelCacheDep
from api.schemas import json_float
from core import serving
from core.data.catalog import UnknownDataset, load, resolve
from core.errors import SpecIssue
from core.evaluation import check_fits, evaluate_model
from core.spec.job import DatasetSpec
from core.store import jobs as job_store

router = APIRouter(prefix="/v1/jobs", tags=["models"])


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(max_length=200, description="a built-in name or an uploaded id")


class EvaluateOut(BaseModel):
    job_id: str
    dataset: str
    samples: int
    metrics: dict[str, float | str] = Field(
        description='the spec\'s loss and metrics on the data set ("NaN" and "Infinity" as text)'
    )


@router.post("/{job_id}/evaluate", response_model=EvaluateOut)
async def evaluate(
    job_id: str,
    body: EvaluateIn,
    session: SessionDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    cache: ModelCacheDep,
    uploads: UploadsDep,
    me: CallerDep,
) -> EvaluateOut:
    """`409` until the job has succeeded; `422` when the data set does not fit the model."""
    ref = serving.model_ref(job_store.get_job(session, job_id=job_id, project=me.project))
    session.close()
    try:
        spec = DatasetSpec(name=body.dataset)
    except ValidationError as e:
        raise _invalid(str(e.errors()[0]["msg"]).removeprefix("Value error, ")) from None
    own = ref.spec["dataset"]
    if spec.name == own["name"]:  # the job's own data set: with its options
        spec = DatasetSpec.model_validate(own)
    try:
        resolved = resolve(spec.name, spec, uploads)
    except UnknownDataset as e:
        raise _invalid(str(e)) from None

    def run() -> dict[str, float]:
        model = cache.get(
            (ref.job_id, ref.weights), lambda: serving.load_model(ref, artifacts, settings)
        )
        classes = resolved.uploaded.classes if resolved.uploaded is not None else None
        check_fits(model, spec.name, resolved.info, classes, settings.max_evaluate_samples)
        return evaluate_model(model, load(resolved, spec, uploads))

    try:
        metrics = await run_in_threadpool(run)
    except serving.InputsError as e:
        raise RequestValidationError(
            [{"loc": i.loc, "msg": i.msg, "type": i.type} for i in e.issues]
        ) from None
    return EvaluateOut(
        job_id=ref.job_id,
        dataset=spec.name,
        samples=resolved.info.samples,
        metrics={k: json_float(v) for k, v in metrics.items()},
    )


def _invalid(message: str) -> RequestValidationError:
    issue = SpecIssue(("dataset",), message, "unknown_dataset")
    return RequestValidationError([{"loc": issue.loc, "msg": issue.msg, "type": issue.type}])
