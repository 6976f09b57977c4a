"""Keras model JSON (+ compile and fit arguments) → JobSpec, each problem located in the Keras
JSON: `model.layers.<keras name>.<argument>`, `compile.<argument>`, `fit.<argument>`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from core.errors import Loc, SpecError, SpecIssue
from core.keras_import.graph import GraphError, model_layers
from core.keras_import.layers import epochal_layer
from core.keras_import.training import training_of
from core.spec.issues import issues_of
from core.spec.job import JobSpec


@dataclass(frozen=True)
class Conversion:
    """The spec, and where each of its parts came from in what the user sent."""

    spec: JobSpec
    origins: dict[Loc, Loc]

    def relocate(self, issues: list[SpecIssue]) -> list[SpecIssue]:
        """Issues found in the spec (by pydantic, or later by the planner), located in the
        Keras JSON instead."""
        return relocate(issues, self.origins)


def relocate(issues: list[SpecIssue], origins: dict[Loc, Loc]) -> list[SpecIssue]:
    moved = []
    for issue in issues:
        loc = issue.loc
        for n in range(len(loc), 0, -1):
            if loc[:n] in origins:
                loc = origins[loc[:n]] + loc[n:]
                break
        moved.append(SpecIssue(loc, issue.msg, issue.type))
    return moved


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(
            [SpecIssue((where,), f"expected an object. Received: {type(value).__name__}")]
        )
    return value


def from_keras(
    model: Any,
    *,
    dataset: Any,
    compile: Any = None,
    fit: Any = None,
) -> Conversion:
    """The JobSpec equivalent to a Keras model (what `model.to_json()` writes, parsed) trained
    with `compile` (`model.get_compile_config()`, or hand-written; by default the compile
    config inside the model JSON) and `fit` arguments on `dataset` (a name, or a dataset spec).
    SpecError listing every problem, located in what was sent."""
    try:
        envelopes = model_layers(model)
    except GraphError as e:
        raise SpecError([e.issue]) from None
    compile_args = _mapping(
        compile if compile is not None else model.get("compile_config"), "compile"
    )
    training, data_share, origins, refusals = training_of(compile_args, _mapping(fit, "fit"))
    layers = []
    for i, envelope in enumerate(envelopes):
        layers.append(epochal_layer(envelope))
        keras_name = envelope.get("name", envelope["config"].get("name"))
        keras_name = keras_name if isinstance(keras_name, str) else i
        origins[("model", "layers", i)] = ("model", "layers", keras_name)
    data = {"name": dataset} if isinstance(dataset, str) else dataset
    if isinstance(data, dict):
        if _conflicts(data, data_share):
            raise SpecError(
                [
                    SpecIssue(
                        ("fit", "validation_split"),
                        "given in both fit and dataset with different values: give it once. "
                        f"Received: fit {data_share['validation_split']}, "
                        f"dataset {data['validation_split']}",
                    )
                ]
            )
        data = {**data_share, **data}
    spec: dict[str, Any] = {"dataset": data, "model": {"layers": layers}, "training": training}
    if isinstance(name := model["config"].get("name"), str):
        spec["name"] = name
        origins[("name",)] = ("model", "config", "name")
    try:
        job = JobSpec.model_validate(spec)
    except ValidationError as e:
        raise SpecError(relocate(issues_of(e, spec), origins) + refusals) from None
    if refusals:
        raise SpecError(refusals)
    return Conversion(job, origins)


def _conflicts(data: dict[str, Any], share: dict[str, Any]) -> bool:
    key = "validation_split"
    return key in share and key in data and data[key] != share[key]
