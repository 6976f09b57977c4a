"""Training diagnostics: opt-in per job (`training.diagnostics`)."""

from __future__ import annotations

from pydantic import Field

from core.spec.base import Spec


class DiagnosticsSpec(Spec):
    """Per layer: gradient norm, update-to-weight ratio, dead ReLU and saturated sigmoid/tanh
    fractions, activation mean/std; plus warnings (vanishing/exploding gradients, dead ReLUs)."""

    enabled: bool = False
    every_n_steps: int = Field(50, ge=1, le=100_000, description="how often to measure")
