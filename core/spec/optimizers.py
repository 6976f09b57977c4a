"""Optimizer specs with Keras 3's names, arguments and defaults. Built in
`core/training/optimizers.py`.

Every optimizer takes Keras's common arguments: `learning_rate` (a number or a schedule from
`core/spec/schedules.py`), `weight_decay` (Keras's decoupled decay, w -= lr · weight_decay · w
before each update; Keras's `None` is 0) and at most one of `clipnorm`, `clipvalue`,
`global_clipnorm`. Keras's other `BaseOptimizer` arguments are taken at the values that mean
what Epochal does (`use_ema` false, no `loss_scale_factor`, no `gradient_accumulation_steps`)
and refused otherwise, with why; they are not stored. Keras's `name` label is dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from core.spec.base import Spec, keras_default, tagged_union, type_names
from core.spec.schedules import LearningRate

Beta = Annotated[float, Field(ge=0, lt=1)]
Epsilon = Annotated[float, Field(gt=0)]


def _none_is_zero(value: Any) -> Any:
    return 0.0 if value is None else value


WeightDecay = Annotated[float, BeforeValidator(_none_is_zero), Field(ge=0)]
NO_EMA = (
    "use_ema is not implemented: Epochal trains and keeps the weights themselves, not an "
    "exponential moving average of them; leave use_ema false"
)
NO_LOSS_SCALE = (
    "loss_scale_factor is not offered: Epochal scales the loss only for fp16, dynamically "
    '(set training.precision to "fp16"); leave it null'
)
NO_ACCUMULATION = (
    "gradient_accumulation_steps is not implemented: Epochal updates after every batch; for "
    "the same mean gradient use a batch_size that many times larger; leave it null"
)


class _Optimizer(Spec):
    """Keras's `BaseOptimizer` arguments, shared by every optimizer."""

    type: str
    learning_rate: LearningRate = 0.001
    weight_decay: WeightDecay = 0.0
    clipnorm: float | None = Field(None, gt=0, description="clip each gradient's own L2 norm")
    clipvalue: float | None = Field(None, gt=0, description="clip each gradient entry")
    global_clipnorm: float | None = Field(None, gt=0, description="clip all gradients' L2 norm")
    use_ema: Annotated[bool, keras_default(lambda v: v is False, NO_EMA)] = Field(
        False, exclude=True
    )
    ema_momentum: float = Field(
        0.99, ge=0, le=1, exclude=True, description="read by Keras only with use_ema"
    )
    ema_overwrite_frequency: Annotated[
        int | None, keras_default(lambda v: v is None, NO_EMA.replace("use_ema is", "EMA is"))
    ] = Field(None, exclude=True)
    loss_scale_factor: Annotated[
        float | None, keras_default(lambda v: v is None, NO_LOSS_SCALE)
    ] = Field(None, exclude=True)
    gradient_accumulation_steps: Annotated[
        int | None, keras_default(lambda v: v is None, NO_ACCUMULATION)
    ] = Field(None, exclude=True)

    @model_validator(mode="after")
    def _one_clip_at_most(self) -> _Optimizer:
        clips = {"clipnorm": self.clipnorm, "clipvalue": self.clipvalue}
        clips["global_clipnorm"] = self.global_clipnorm
        if sum(v is not None for v in clips.values()) > 1:
            received = ", ".join(f"{k}={v}" for k, v in clips.items())
            raise ValueError(
                "expected at most one of clipnorm, clipvalue and global_clipnorm. "
                f"Received: {received}"
            )
        return self


class SGD(_Optimizer):
    type: Literal["sgd"]
    learning_rate: LearningRate = 0.01
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False


class RMSprop(_Optimizer):
    type: Literal["rmsprop"]
    rho: Beta = 0.9
    momentum: float = Field(0.0, ge=0, lt=1)
    epsilon: Epsilon = 1e-7
    centered: bool = False


class Adagrad(_Optimizer):
    type: Literal["adagrad"]
    initial_accumulator_value: float = Field(0.1, ge=0)
    epsilon: Epsilon = 1e-7


class Adadelta(_Optimizer):
    type: Literal["adadelta"]
    rho: Beta = 0.95
    epsilon: Epsilon = 1e-7


class Adam(_Optimizer):
    type: Literal["adam"]
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7
    amsgrad: bool = False


class AdamW(Adam):
    type: Literal["adamw"]  # type: ignore[assignment]
    weight_decay: WeightDecay = 0.004


class Nadam(_Optimizer):
    type: Literal["nadam"]
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7


class Adamax(_Optimizer):
    type: Literal["adamax"]
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7


OPTIMIZER_SPECS = (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Nadam, Adamax)
OPTIMIZER_TYPES: list[str] = type_names(OPTIMIZER_SPECS)


OptimizerSpec = tagged_union(OPTIMIZER_SPECS, label=True)
