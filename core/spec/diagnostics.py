"""Training diagnostics: opt-in per job (`training.diagnostics`), and what a job may stop on
(`training.stop_on`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from core.spec.base import Spec

# What `training.stop_on` and a sweep's `early_terminate: {type: health}` can act on: the first
# three are the diagnostics' warnings (core/training/diagnostics.py), `divergence` is the loss's
# (core/training/health.py).
HealthCondition = Literal["exploding_gradients", "vanishing_gradients", "dead_relu", "divergence"]


class DiagnosticsSpec(Spec):
    """Per layer: gradient norm, update-to-weight ratio, dead ReLU and saturated sigmoid/tanh
    fractions, activation mean/std; plus warnings (vanishing/exploding gradients, dead ReLUs)."""

    enabled: bool = False
    every_n_steps: int = Field(50, ge=1, le=100_000, description="how often to measure")


def _listed(value: Any) -> Any:
    """The plain list form `[conditions...]` is `{conditions: [...]}` with the default patience."""
    return {"conditions": value} if isinstance(value, list) else value


class StopOnSpec(Spec):
    """End the job when one of `conditions` is found in `patience` + 1 successive measured
    epochs (patience 0: at the end of the epoch where it is first found). A non-finite loss
    ends the job at once whatever the patience, failed as `divergence`: the weights are lost."""

    conditions: list[HealthCondition] = Field(min_length=1, max_length=4)
    patience: int = Field(0, ge=0, le=1000, description="epochs the condition may persist")


StopOn = Annotated[StopOnSpec, BeforeValidator(_listed)]
