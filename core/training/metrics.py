"""Metrics by Keras name, accumulated over an epoch as sums so batches of any size weigh right.

`accuracy` is chosen as Keras chooses it: sparse/categorical (argmax) for a multi-unit output,
binary (threshold 0.5) for a single sigmoid unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.registry import Registry

# (outputs, y) -> per-sample values; outputs are probabilities for classifiers.
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricDef:
    classifiers_only: bool  # True: needs class targets; False: needs regression targets
    fn: MetricFn
    higher_is_better: bool = False


METRICS: Registry[MetricDef] = Registry("metric")


def _accuracy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if outputs.shape[-1] == 1:
        return ((outputs.squeeze(-1) > 0.5) == (y.reshape(-1) > 0.5)).float()
    labels = y.argmax(-1) if y.dim() == outputs.dim() else y
    return (outputs.argmax(-1) == labels).float()


def _per_sample(err: torch.Tensor) -> torch.Tensor:
    return err.reshape(err.shape[0], -1).mean(dim=1)


METRICS.register("accuracy")(MetricDef(True, _accuracy, higher_is_better=True))
METRICS.register("mae")(MetricDef(False, lambda o, y: _per_sample((o - y).abs())))
METRICS.register("mse")(MetricDef(False, lambda o, y: _per_sample((o - y) ** 2)))


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
