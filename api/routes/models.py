"""/v1/jobs/{id}/model and /v1/jobs/{id}/predict: a succeeded job's model file (its weights, or
an ONNX or TorchScript export), and its predictions."""

from __future__ import annotations

import json
import re
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.auth import CallerDep
from api.deps import ArtifactsDep, SessionDep, SettingsDep
from core import export, serving
from core.errors import InvalidArgumentError
from core.running.resume import checkpoint_bundle
from core.store import jobs as job_store

router = APIRouter(prefix="/v1/jobs", tags=["models"])

CACHED_MODELS = 8  # loaded networks kept per API process
_cache_lock = threading.Lock()

ModelCache = serving.LRUCache[tuple[str, str], serving.LoadedModel]


def get_model_cache(request: Request) -> ModelCache:
    """One cache per app, made on first use (nothing happens at import)."""
    state = request.app.state
    with _cache_lock:
        if getattr(state, "model_cache", None) is None:
            state.model_cache = ModelCache(CACHED_MODELS)
        return state.model_cache


ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]


class PredictIn(BaseModel):
    """One of `inputs` (encoded vectors) or `records` (raw rows of an uploaded table)."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] | None = Field(
        None,
        description="a batch: each input has the model's input shape (the job's "
        "summary.input_shape), as nested lists of numbers",
    )
    records: list[dict[str, Any]] | None = Field(
        None,
        description="for a model trained on an uploaded table: rows as {column: value}, as in "
        "the file (text categories as text); other columns, such as the target, are ignored",
    )

    @model_validator(mode="after")
    def _one(self) -> PredictIn:
        if (self.inputs is None) == (self.records is None):
            raise ValueError("expected exactly one of `inputs` or `records`")
        return self


CSV_TYPE = "text/csv"


async def predict_body(request: Request) -> PredictIn | str:
    """The JSON body as PredictIn, or a CSV body's text (api/body_limits.py bounded its size
    and let only JSON, YAML turned JSON, and CSV through)."""
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == CSV_TYPE:
        try:
            return body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "the CSV is not UTF-8 text", "type": "body_not_utf8"}]
            ) from None
    try:
        return PredictIn.model_validate(json.loads(body), from_attributes=True)
    except json.JSONDecodeError as e:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", e.pos),
                    "msg": f"JSON decode error: {e.msg}",
                    "type": "json_invalid",
                }
            ],
            body=e.doc,
        ) from None
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors()]
        ) from None


# The body is read by `predict_body`, so FastAPI does not list PredictIn: api/openapi.py adds it
# to the components (clients compare their models with them).
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictIn"}},
            CSV_TYPE: {
                "schema": {
                    "type": "string",
                    "description": "rows of an uploaded table's columns under its header line",
                }
            },
        },
    }
}


class PredictOut(BaseModel):
    job_id: str
    outputs: list[dict[str, Any]] = Field(
        description='per input, {"label", "probabilities"} for a classifier '
        '({"label", "scores"} when it was trained without probabilities), '
        '{"value"} for a regression'
    )
    classes: list[Any] | None = Field(
        None,
        description="a classifier's class labels, as the uploaded file wrote them, in the order "
        'of each output\'s "probabilities" (or "scores"), so `label` i is `classes[i]`; null for '
        "a regression or a model trained on a data set without named classes",
    )


@router.get(
    "/{job_id}/model",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_model(
    job_id: str,
    session: SessionDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    me: CallerDep,
    format: export.Format = "safetensors",
    checkpoint: Annotated[
        Literal["final", "best", "last"],
        Query(description="final: the trained model; best, last: a checkpoint's weights"),
    ] = "final",
) -> Response:
    """The trained model, with the normalized spec in the file's metadata (`epochal.spec`):
    its weights (safetensors), or the network exported to ONNX or TorchScript. An export is made
    on the first download (seconds) and kept in the artifacts store for the next ones.
    `checkpoint=best|last` downloads a checkpoint's weights instead (safetensors only)."""
    job = job_store.get_job(session, job_id=job_id, project=me.project)
    if checkpoint != "final":
        if format != "safetensors":
            raise InvalidArgumentError(
                f"format: a checkpoint downloads as safetensors only; received {format!r}"
            )
        data = checkpoint_bundle(job, checkpoint, artifacts)
        filename = f"{_safe(job.name) or 'job'}-{job.id[:8]}-{checkpoint}.safetensors"
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    ref = serving.model_ref(job)
    session.close()  # the file is read without holding a connection
    data = export.model_file(ref, artifacts, settings, format)
    filename = f"{_safe(ref.name) or 'job'}-{ref.job_id[:8]}{export.SUFFIXES[format]}"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/{job_id}/predict", response_model=PredictOut, openapi_extra=PREDICT_BODY)
def predict(
    job_id: str,
    body: Annotated[PredictIn | str, Depends(predict_body)],
    session: SessionDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    cache: ModelCacheDep,
    me: CallerDep,
) -> PredictOut:
    """Run the trained network on a batch (on the CPU, in eval mode): encoded vectors
    (`inputs`), or for a model trained on an uploaded table its raw rows, as `records` or as a
    `text/csv` body under the table's header, encoded as at upload."""
    ref = serving.model_ref(job_store.get_job(session, job_id=job_id, project=me.project))
    session.close()
    model = cache.get(
        (ref.job_id, ref.weights), lambda: serving.load_model(ref, artifacts, settings)
    )
    try:
        if isinstance(body, str):
            batch = serving.parse_rows(body, model.data)
        elif body.records is not None:
            batch = serving.parse_rows(body.records, model.data)
        else:
            assert body.inputs is not None
            features = (model.data.table or {}).get("features")
            batch = serving.parse_inputs(body.inputs, model.info, features)
    except serving.InputsError as e:
        raise RequestValidationError(
            [{"loc": i.loc, "msg": i.msg, "type": i.type} for i in e.issues]
        ) from None
    outputs = serving.predict(model, batch)
    return PredictOut(job_id=ref.job_id, outputs=outputs, classes=model.data.classes)


def _safe(name: str) -> str:
    """A job name as a file name: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:100]
