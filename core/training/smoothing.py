"""The smoothed training loss that the learning-rate finder and health-based stopping judge: an
exponential moving average with bias correction, and the divergence test of fastai's and
Lightning's learning-rate finders (the smoothed loss above `factor` times its lowest)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Smoother:
    """An exponential moving average of the loss, bias-corrected (Adam's correction), so its
    first values are not pulled towards 0."""

    beta: float
    average: float = 0.0
    count: int = 0

    @property
    def value(self) -> float:
        """The smoothed loss so far (NaN before the first)."""
        return self.average / (1 - self.beta**self.count) if self.count else math.nan

    def add(self, loss: float) -> float:
        self.count += 1
        self.average = self.beta * self.average + (1 - self.beta) * loss
        return self.value


def diverged(smoothed: float, best: float, factor: float) -> bool:
    return not math.isfinite(smoothed) or smoothed > factor * best
