"""Which way a monitored series improves, as Keras's callbacks decide it in mode "auto"."""

from __future__ import annotations

import operator
from collections.abc import Callable

from core.training.metrics import METRICS

LOSS_SERIES = {"loss", "regularization_loss"}


def higher_is_better(monitor: str, mode: str) -> bool:
    """`max` / `min` as given; `auto`: losses go down, each metric its own way (Keras 3 reads
    the metric's direction the same way). ValueError for a series whose direction is unknown."""
    if mode != "auto":
        return mode == "max"
    name = monitor.removeprefix("val_")
    if name in LOSS_SERIES:
        return False
    if name in METRICS:
        return METRICS.get(name).higher_is_better
    raise ValueError(
        f"cannot tell whether {monitor!r} should go up or down: set mode 'min' or 'max'"
    )


def improves(higher: bool) -> Callable[[float, float], bool]:
    return operator.gt if higher else operator.lt
