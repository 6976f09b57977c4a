"""Optimizer specs with Keras's parameter names and defaults. Built in `core/training/optimizers.py`."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from core.spec.base import Spec, normalize_type


class SGD(Spec):
    type: Literal["sgd"]
    learning_rate: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)


class Adam(Spec):
    type: Literal["adam"]
    learning_rate: float = Field(0.001, gt=0)
    beta_1: float = Field(0.9, ge=0, lt=1)
    beta_2: float = Field(0.999, ge=0, lt=1)
    epsilon: float = Field(1e-7, gt=0)
    amsgrad: bool = False
    weight_decay: float = Field(0.0, ge=0)


OPTIMIZER_SPECS = (SGD, Adam)
OPTIMIZER_TYPES: list[str] = [
    c.model_fields["type"].annotation.__args__[0] for c in OPTIMIZER_SPECS
]


def _normalize_optimizer(value: Any) -> Any:
    return normalize_type(value, OPTIMIZER_TYPES)


OptimizerSpec = Annotated[
    Union[OPTIMIZER_SPECS],  # noqa: UP007
    Field(discriminator="type"),
    BeforeValidator(_normalize_optimizer),
]
