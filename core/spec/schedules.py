"""Learning-rate schedule specs: Keras's `keras.optimizers.schedules` classes, their arguments and
defaults, plus `step_decay` and `one_cycle`. An optimizer's `learning_rate` is a number or one of
these, in Epochal's form or as `keras.optimizers.schedules.serialize` writes it. Computed in `core/training/schedules.py` as a function of the optimizer's iteration count.
"""

from __future__ import annotations

import contextlib
import math
from itertools import pairwise
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from core.spec.base import Spec, normalize_type, type_names
from core.spec.lr_finder import SUGGESTED


class ExponentialDecay(Spec):
    """lr = initial_learning_rate · decay_rate ^ (step / decay_steps), the exponent floored
    when `staircase`."""

    type: Literal["exponential_decay"]
    initial_learning_rate: float = Field(gt=0)
    decay_steps: int = Field(gt=0)
    decay_rate: float = Field(gt=0)
    staircase: bool = False


class InverseTimeDecay(Spec):
    """lr = initial_learning_rate / (1 + decay_rate · step / decay_steps), the ratio floored
    when `staircase`."""

    type: Literal["inverse_time_decay"]
    initial_learning_rate: float = Field(gt=0)
    decay_steps: int = Field(gt=0)
    decay_rate: float = Field(ge=0)
    staircase: bool = False


class PolynomialDecay(Spec):
    """From `initial_learning_rate` to `end_learning_rate` over `decay_steps` along
    (1 - step / decay_steps) ^ power; then constant, or restarted over a longer span if `cycle`."""

    type: Literal["polynomial_decay"]
    initial_learning_rate: float = Field(gt=0)
    decay_steps: int = Field(gt=0)
    end_learning_rate: float = Field(0.0001, ge=0)
    power: float = Field(1.0, gt=0)
    cycle: bool = False


class PiecewiseConstantDecay(Spec):
    """values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <=
    boundaries[i], values[-1] after the last boundary."""

    type: Literal["piecewise_constant_decay"]
    boundaries: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    values: list[Annotated[float, Field(ge=0)]]

    @model_validator(mode="after")
    def _check_pieces(self) -> PiecewiseConstantDecay:
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                "expected one more value than boundaries (a value before the first boundary "
                f"and after each). Received: {len(self.boundaries)} boundaries "
                f"{self.boundaries} and {len(self.values)} values {self.values}"
            )
        if any(a >= b for a, b in pairwise(self.boundaries)):
            raise ValueError(
                f"expected strictly increasing boundaries. Received: {self.boundaries}"
            )
        return self


class CosineDecay(Spec):
    """An optional linear warmup from `initial_learning_rate` to `warmup_target` over
    `warmup_steps`, then a half cosine from the peak down to alpha · peak over `decay_steps`."""

    type: Literal["cosine_decay"]
    initial_learning_rate: float = Field(ge=0)  # 0 is the usual start of a warmup
    decay_steps: int = Field(gt=0)
    alpha: float = Field(0.0, ge=0, le=1)
    warmup_target: float | None = Field(None, gt=0)
    warmup_steps: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check_warmup(self) -> CosineDecay:
        if self.warmup_steps > 0 and self.warmup_target is None:
            raise ValueError(
                "warmup_steps needs a warmup_target, the learning rate to warm up to (Keras "
                f"would silently skip the warmup). Received: warmup_steps={self.warmup_steps}, "
                "warmup_target=None"
            )
        if self.warmup_target is None and self.initial_learning_rate == 0:
            raise ValueError(
                "expected a positive initial_learning_rate, or a warmup_target to warm up to: "
                "the rate would stay 0. Received: initial_learning_rate=0, warmup_target=None"
            )
        return self


class CosineDecayRestarts(Spec):
    """Cosine decay from the initial rate to alpha times it over `first_decay_steps`, then warm
    restarts, each `t_mul` times longer and starting at `m_mul` times the previous peak."""

    type: Literal["cosine_decay_restarts"]
    initial_learning_rate: float = Field(gt=0)
    first_decay_steps: int = Field(gt=0)
    # Below 1 the periods shrink geometrically and run out after first_decay_steps / (1 - t_mul)
    # steps, where Keras's formula turns to NaN.
    t_mul: float = Field(2.0, ge=1)
    m_mul: float = Field(1.0, gt=0)
    alpha: float = Field(0.0, ge=0, le=1)


class StepDecay(Spec):
    """Not Keras: lr = initial_learning_rate · factor ^ floor(epoch / step_size), the epoch
    counted in optimizer steps (steps_per_epoch of them each)."""

    type: Literal["step_decay"]
    initial_learning_rate: float = Field(gt=0)
    step_size: int = Field(gt=0, description="epochs between two drops")
    factor: float = Field(0.1, gt=0, lt=1, description="the multiplier at each drop")


class OneCycle(Spec):
    """Not Keras; torch's `OneCycleLR` (cosine annealing, no momentum cycling) over the whole run
    (epochs · steps_per_epoch steps): from max_learning_rate / div_factor up to
    max_learning_rate over the first pct_start of the run, then down to
    max_learning_rate / (div_factor · final_div_factor)."""

    type: Literal["one_cycle"]
    max_learning_rate: float = Field(gt=0)
    pct_start: float = Field(0.3, gt=0, lt=1)
    div_factor: float = Field(25.0, gt=0)
    final_div_factor: float = Field(1e4, gt=0)


SCHEDULE_SPECS = (
    ExponentialDecay,
    InverseTimeDecay,
    PolynomialDecay,
    PiecewiseConstantDecay,
    CosineDecay,
    CosineDecayRestarts,
    StepDecay,
    OneCycle,
)
SCHEDULE_TYPES: list[str] = type_names(SCHEDULE_SPECS)


ScheduleSpec = Union[SCHEDULE_SPECS]  # noqa: UP007


def _learning_rate_kind(value: Any) -> str | None:
    if value == SUGGESTED:
        return SUGGESTED
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    if isinstance(value, dict):
        return value.get("type")
    return getattr(value, "type", None)


def _normalize_learning_rate(value: Any) -> Any:
    """A number stays a number (YAML reads `1e-3` as a string) and must be positive; a
    schedule may be written as `keras.optimizers.schedules.serialize` writes it (its `name`
    label dropped) and its `type` spelled as Keras's class (`ExponentialDecay`); `"suggested"`
    (the learning-rate finder's suggestion, core/spec/lr_finder.py) stays as it is."""
    if value == SUGGESTED:
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if _learning_rate_kind(value) == "number":
        if not (math.isfinite(value) and 0 < value <= 1e6):
            raise ValueError(f"expected a learning rate in (0, 1e6]. Received: {value}")
        return value
    return normalize_type(value, SCHEDULE_TYPES, label=True)


# A number, or a schedule object chosen by its `type`: only the chosen branch is validated, so
# an error points into the object the user wrote (learning_rate.decay_steps), not at each branch.
LearningRate = Annotated[
    Union[
        (
            Annotated[float, Tag("number")],
            Annotated[Literal["suggested"], Tag(SUGGESTED)],
            *(Annotated[c, Tag(t)] for c, t in zip(SCHEDULE_SPECS, SCHEDULE_TYPES, strict=True)),
        )
    ],
    Discriminator(
        _learning_rate_kind,
        custom_error_type="learning_rate",
        custom_error_message='expected a positive number, "suggested" (with training.'
        f"lr_finder) or a schedule, an object whose type is one of: {', '.join(SCHEDULE_TYPES)}",
    ),
    BeforeValidator(_normalize_learning_rate),
]
