"""The names of the series a run records, and which way each one improves: one home for both.

Per-epoch series are `loss`, each compiled metric, `regularization_loss` when the network has
penalties, `lr`, and the `val_` twin of each score. Per-step series are `batch_loss` and the
diagnostics (`diag/<measure>/<layer>`). The learning-rate finder's range test records its
curve under `lr_finder/` (`lr_finder/lr`, `lr_finder/loss` smoothed, `lr_finder/raw_loss`),
stepped 1..N by the test's own steps.
"""

from __future__ import annotations

import math

from core.training.metrics import METRICS

LOSS = "loss"
LR = "lr"  # the learning rate at the end of each epoch: a schedule, not a score
REGULARIZATION_LOSS = "regularization_loss"
STEP_SERIES = "batch_loss"  # the loss of each training step
DIAGNOSTICS_PREFIX = "diag/"  # per-layer diagnostics series: diag/<measure>/<layer>
VALIDATION_PREFIX = "val_"
LR_FINDER_PREFIX = "lr_finder/"  # the range test's curve, per test step
LR_FINDER_LR = LR_FINDER_PREFIX + "lr"
LR_FINDER_LOSS = LR_FINDER_PREFIX + "loss"  # smoothed (bias-corrected moving average)
LR_FINDER_RAW_LOSS = LR_FINDER_PREFIX + "raw_loss"
LOSS_SERIES = frozenset({LOSS, REGULARIZATION_LOSS})
NO_BEST = frozenset({LR})


def base_name(name: str) -> str:
    """`val_accuracy` -> `accuracy`: the score a validation series measures."""
    return name.removeprefix(VALIDATION_PREFIX)


def is_epoch_series(name: str) -> bool:
    return name != STEP_SERIES and not name.startswith((DIAGNOSTICS_PREFIX, LR_FINDER_PREFIX))


def direction(name: str) -> bool | None:
    """True when a higher value of the series is better, False when lower is, None when its
    direction is unknown (a series no metric defines) or it has no best (`lr`)."""
    if name in NO_BEST:
        return None
    base = base_name(name)
    if base in LOSS_SERIES:
        return False
    if base in METRICS:
        return METRICS.get(base).higher_is_better
    return None


def higher_is_better(name: str) -> bool:
    """A series's direction, reading an unknown one as a loss (lower is better)."""
    return direction(name) is True


def best_of(history: list[dict[str, float]]) -> dict[str, float]:
    """The best value of each logged series over the epochs (max for accuracy, min for losses)."""
    best: dict[str, float] = {}
    for name in history[0] if history else ():
        if name in NO_BEST:
            continue
        higher = higher_is_better(name)
        values = [logs[name] for logs in history if math.isfinite(logs.get(name, math.nan))]
        if values:
            best[name] = max(values) if higher else min(values)
    return best
