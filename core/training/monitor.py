"""Which way a monitored series improves, as Keras's callbacks decide it in mode "auto"."""

from __future__ import annotations

import operator
from collections.abc import Callable

from core.series import direction


def maximizes(monitor: str, mode: str) -> bool:
    """`max` / `min` as given; `auto`: losses go down, each metric its own way (Keras 3 reads
    the metric's direction the same way). ValueError for a series whose direction is unknown."""
    if mode != "auto":
        return mode == "max"
    higher = direction(monitor)
    if higher is not None:
        return higher
    raise ValueError(
        f"cannot tell whether {monitor!r} should go up or down: set mode 'min' or 'max'"
    )


def improves(higher: bool) -> Callable[[float, float], bool]:
    return operator.gt if higher else operator.lt
