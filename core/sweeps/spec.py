"""The SweepSpec: a base JobSpec, the parameters to vary (W&B's sweep vocabulary), and how.

A parameter is keyed by a spec path (`training.optimizer.learning_rate`, `model.layers[0].units`,
see core.spec.paths) and is one of: a constant (`value`), a list of choices (`values`, or
`distribution: categorical`), or a distribution with its bounds. W&B's shorthand is accepted:
without `distribution`, `values` means categorical, `value` a constant, and integer `min`/`max`
mean int_uniform (float ones, uniform).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, JsonValue, field_validator, model_validator

from core.errors import SpecError
from core.spec.base import Spec
from core.spec.diagnostics import HealthCondition, StopOnSpec
from core.spec.job import JobSpec, Tag
from core.spec.paths import parse_path

MAX_TRIALS = 1000


class SweepError(SpecError):
    """A sweep that cannot run: each issue names the parameter path or the field at fault."""

    code = "invalid_sweep"


def _bounds(low: float, high: float, strict: bool = True) -> None:
    if high < low or (strict and high == low):
        relation = "greater than" if strict else "at least"
        raise ValueError(f"expected max {relation} min; received min={low}, max={high}")


class Constant(Spec):
    distribution: Literal["constant"] = "constant"
    value: JsonValue


class Categorical(Spec):
    distribution: Literal["categorical"] = "categorical"
    values: list[JsonValue] = Field(min_length=1, max_length=1000)


class Uniform(Spec):
    distribution: Literal["uniform"]
    min: float
    max: float

    @model_validator(mode="after")
    def _check(self) -> Uniform:
        _bounds(self.min, self.max)
        return self


class LogUniformValues(Spec):
    """log(X) uniform between log(min) and log(max): W&B's `log_uniform_values`."""

    distribution: Literal["log_uniform_values"]
    min: float = Field(gt=0)
    max: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> LogUniformValues:
        _bounds(self.min, self.max)
        return self


class IntUniform(Spec):
    distribution: Literal["int_uniform"]
    min: int
    max: int

    @model_validator(mode="after")
    def _check(self) -> IntUniform:
        _bounds(self.min, self.max, strict=False)
        return self


class QUniform(Spec):
    """The multiples of `q` between `min` and `max`, equally likely (and enumerable for grid)."""

    distribution: Literal["q_uniform"]
    min: float
    max: float
    q: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> QUniform:
        _bounds(self.min, self.max)
        if not (math.isfinite(self.min / self.q) and math.isfinite(self.max / self.q)):
            raise ValueError(
                f"expected bounds that are finite multiples of q={self.q}. "
                f"Received: min={self.min}, max={self.max}"
            )
        low, high = self.steps
        if high < low:
            raise ValueError(
                f"no multiple of q={self.q} lies between min={self.min} and max={self.max}"
            )
        if high - low >= 1_000_000:
            raise ValueError(
                f"expected at most 1,000,000 multiples of q={self.q} between the bounds"
            )
        return self

    @property
    def steps(self) -> tuple[int, int]:
        """The range of k for which k*q lies within [min, max] (with float tolerance)."""
        return math.ceil(self.min / self.q - 1e-9), math.floor(self.max / self.q + 1e-9)


class Normal(Spec):
    distribution: Literal["normal"]
    mu: float = 0.0
    sigma: float = Field(1.0, gt=0)


DISTRIBUTIONS = (Constant, Categorical, Uniform, LogUniformValues, IntUniform, QUniform, Normal)
ENUMERABLE = (Constant, Categorical, IntUniform, QUniform)


def _shorthand(value: Any) -> Any:
    """W&B's forms without `distribution`: `{value}`, `{values}`, `{min, max}`."""
    if not isinstance(value, dict) or "distribution" in value:
        return value
    if "value" in value:
        return {"distribution": "constant", **value}
    if "values" in value:
        return {"distribution": "categorical", **value}
    if "min" in value and "max" in value:
        ints = all(
            isinstance(value[k], int) and not isinstance(value[k], bool) for k in ("min", "max")
        )
        return {"distribution": "int_uniform" if ints else "uniform", **value}
    return value


ParameterSpec = Annotated[
    Constant | Categorical | Uniform | LogUniformValues | IntUniform | QUniform | Normal,
    Field(discriminator="distribution"),
    BeforeValidator(_shorthand),
]


class MetricSpec(Spec):
    name: str = Field(min_length=1, max_length=128, description="a series the trials record")
    goal: Literal["maximize", "minimize"] = "minimize"  # W&B's default


class Hyperband(Spec):
    """Asynchronous successive halving (ASHA): at rungs min_iter * eta^k epochs, a trial goes on
    only if its metric is in the top 1/eta of the trials that reached that rung."""

    type: Literal["hyperband"]
    min_iter: int = Field(1, ge=1)
    eta: int = Field(3, ge=2)


class Median(Spec):
    """Stop a trial whose metric at epoch e (>= min_iter) is worse than the median of the other
    trials' metric at e, once at least `min_trials` other trials have reached e."""

    type: Literal["median"]
    min_iter: int = Field(1, ge=1)
    min_trials: int = Field(3, ge=1)


class Health(Spec):
    """Prune a trial that one of the `on` conditions is found in for `patience` + 1 successive
    epochs: what `training.stop_on` does for a job (core/training/health.py), but the trial
    ends `pruned`. Needs no other trial, so it decides from the first epoch. Merged with the
    trial's own `training.stop_on` (core/training/health.py: the union of the conditions)."""

    type: Literal["health"]
    on: list[HealthCondition] = Field(min_length=1, max_length=4)
    patience: int = Field(0, ge=0, le=1000)

    def stop_on(self) -> StopOnSpec:
        return StopOnSpec(conditions=self.on, patience=self.patience)


EarlyTerminate = Annotated[Hyperband | Median | Health, Field(discriminator="type")]


class SweepSpec(Spec):
    name: str = Field("", max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=16)
    base: JobSpec
    method: Literal["grid", "random", "bayes"]
    metric: MetricSpec
    parameters: dict[str, ParameterSpec] = Field(
        min_length=1, max_length=64, description="by spec path; kept sorted by path"
    )
    run_cap: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="most trials; grid: the grid size by default"
    )
    max_parallel: int = Field(4, ge=1, le=100, description="trials queued or running at once")
    seed: int | None = Field(None, ge=0, lt=2**32, description="drawn at submission if absent")
    startup_trials: int = Field(
        10, ge=1, le=MAX_TRIALS, description="bayes: random trials before TPE takes over"
    )
    early_terminate: EarlyTerminate | None = None

    @field_validator("parameters")
    @classmethod
    def _paths(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        for path in parameters:
            try:
                parse_path(path)
            except ValueError:
                raise ValueError(
                    f"{path!r} is not a spec path; expected one such as "
                    "training.optimizer.learning_rate or model.layers[0].units"
                ) from None
        # One order everywhere: PostgreSQL's JSONB does not keep the keys' order.
        return dict(sorted(parameters.items()))
