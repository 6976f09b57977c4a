"""Metrics by Keras name. Each makes a fresh state per epoch that accumulates on the device and
is read once at the epoch's end (one sync), so batches of any size weigh right.

`accuracy` is chosen as Keras chooses it: binary (threshold 0.5) for a single unit,
categorical/sparse (argmax) for several. Metrics read probabilities for classifiers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from core.registry import Registry


class MetricState(Protocol):
    def update(self, outputs: torch.Tensor, y: torch.Tensor) -> None: ...

    def compute(self) -> torch.Tensor:
        """A 0-d tensor (kept on the device until the epoch's results are read together)."""
        ...


@dataclass(frozen=True)
class MetricDef:
    classifiers_only: bool  # True: needs class targets; False: needs regression targets
    make: Callable[[], MetricState]
    higher_is_better: bool = False


METRICS: Registry[MetricDef] = Registry("metric")


class SampleMean:
    """The mean over samples of a per-sample value."""

    def __init__(self, per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.per_sample = per_sample
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, outputs: torch.Tensor, y: torch.Tensor) -> None:
        value = self.per_sample(outputs, y).float().sum()
        self.total = value if self.total is None else self.total + value
        self.count += outputs.shape[0]

    def compute(self) -> torch.Tensor:
        if self.total is None:
            return torch.tensor(math.nan)
        return self.total / self.count


def _accuracy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if outputs.shape[-1] == 1:
        return ((outputs.squeeze(-1) > 0.5) == (y.reshape(-1) > 0.5)).float()
    labels = y.argmax(-1) if y.dim() == outputs.dim() else y
    return (outputs.argmax(-1) == labels).float()


def _per_sample(err: torch.Tensor) -> torch.Tensor:
    return err.reshape(err.shape[0], -1).mean(dim=1)


METRICS.register("accuracy")(MetricDef(True, lambda: SampleMean(_accuracy), higher_is_better=True))
METRICS.register("mae")(
    MetricDef(False, lambda: SampleMean(lambda o, y: _per_sample((o - y).abs())))
)
METRICS.register("mse")(
    MetricDef(False, lambda: SampleMean(lambda o, y: _per_sample((o - y) ** 2)))
)


def best_of(history: list[dict[str, float]]) -> dict[str, float]:
    """The best value of each logged series over the epochs (max for accuracy, min for losses)."""
    best: dict[str, float] = {}
    for name in history[0] if history else ():
        if name == "lr":
            continue
        base = name.removeprefix("val_")
        higher = base in METRICS and METRICS.get(base).higher_is_better
        values = [logs[name] for logs in history if math.isfinite(logs.get(name, math.nan))]
        if values:
            best[name] = max(values) if higher else min(values)
    return best
