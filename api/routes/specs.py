"""/v1/specs: specs made from what users bring. `from-keras` answers the JobSpec equivalent to a
Keras 3 model (what `model.to_json()` writes) with its compile and fit arguments; it submits
nothing, so the user can review the spec and then POST it to /v1/jobs."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SettingsDep, UploadsDep
from api.json_body import check_json
from api.problems import BodyError
from core.errors import SpecError, SpecIssue
from core.keras_import import from_keras
from core.spec.job import JobSpec
from core.training.plan import plan_job

router = APIRouter(prefix="/v1/specs", tags=["specs"])


class FromKerasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] | str = Field(
        description="what Keras 3's model.to_json() writes: the JSON object, or the string itself"
    )
    compile: dict[str, Any] | None = Field(
        None,
        description="model.get_compile_config(), or {optimizer, loss, metrics} as strings or "
        "Keras-serialized objects; by default the compile config inside `model`",
    )
    fit: dict[str, Any] | None = Field(
        None,
        description="fit's arguments: batch_size, epochs, validation_split, shuffle, callbacks "
        '(Keras-serialized: {"class_name": "EarlyStopping", "config": {...}})',
    )
    dataset: str | dict[str, Any] = Field(
        description="the data set to train on: a name, or a dataset spec (as in a JobSpec)"
    )


def _parsed(model: dict[str, Any] | str, max_depth: int) -> Any:
    """The model JSON, parsed if it came as the string to_json returns (its depth bounded as a
    body's is)."""
    if isinstance(model, dict):
        return model
    try:
        check_json(model.encode("utf-8", "surrogatepass"), max_depth=max_depth)
        return json.loads(model)
    except BodyError as e:
        raise SpecError([SpecIssue(("model",), e.msg, e.type)]) from None
    except (json.JSONDecodeError, UnicodeEncodeError) as e:
        msg = f"expected the JSON that model.to_json() writes; it does not parse: {e}"
        raise SpecError([SpecIssue(("model",), msg, "json_invalid")]) from None


@router.post("/from-keras", response_model=JobSpec)
def spec_from_keras(body: FromKerasIn, settings: SettingsDep, uploads: UploadsDep) -> JobSpec:
    """The JobSpec equivalent to a Keras model, checked as a submission is (defaults filled in;
    no seed drawn). A layer or argument Epochal cannot express answers 422 located in the Keras
    JSON: `model.layers.<the layer's Keras name>.<argument>`, `compile.<argument>`,
    `fit.<argument>`."""
    model = _parsed(body.model, settings.max_body_depth)
    conversion = from_keras(model, compile=body.compile, fit=body.fit, dataset=body.dataset)
    try:
        plan_job(conversion.spec, settings, uploads)
    except SpecError as e:
        raise SpecError(conversion.relocate(e.issues)) from None
    return conversion.spec
