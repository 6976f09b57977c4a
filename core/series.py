"""The names of the series a run records, and which way each one improves: one home for both.

Per-epoch series are `loss`, each compiled metric, `regularization_loss` when the network has
penalties, `lr`, and the `val_` twin of each score (`epoch_series` lists them for a spec).
Per-step series are `batch_loss` and the diagnostics (`diag/<measure>/<layer>`). The
learning-rate finder's range test records its curve under `lr_finder/` (`lr_finder/lr`,
`lr_finder/loss` smoothed, `lr_finder/raw_loss`), stepped 1..N by the test's own steps.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from core.training.metrics import METRICS

if TYPE_CHECKING:
    from core.spec.job import DatasetSpec, JobSpec

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
NO_BEST = frozenset({LR})  # logged, but with no best value: nothing to monitor or optimize
VALIDATION_HINT = (
    "val_ series need validation data: set dataset.validation_split (a part held out) "
    "or dataset.validation (a separate data set)"
)


def has_validation(dataset: DatasetSpec) -> bool:
    """Whether a run evaluates on validation data each epoch, and so logs the `val_` series."""
    return dataset.validation_split > 0 or dataset.validation is not None


def validation_hint(name: str, logged: list[str] | tuple[str, ...]) -> str:
    """What to add to "`name` is not logged" when it is a `val_` series of a run that has no
    validation data (`logged` being what the run logs: `epoch_series`)."""
    if name.startswith(VALIDATION_PREFIX) and f"{VALIDATION_PREFIX}{LOSS}" not in logged:
        return f"; {VALIDATION_HINT}"
    return ""


def epoch_series(spec: JobSpec, *, regularized: bool) -> list[str]:
    """The per-epoch series a run of `spec` logs, in the order `fit` logs them: `loss`, each
    metric, `regularization_loss` when the network has penalties (`regularized`, known from
    the built network), their `val_` twins when there is validation data, then `lr`. Those of
    them with a best value (`scores`) answer "what may a callback monitor, or a sweep
    optimize"."""
    scores = [LOSS, *dict.fromkeys(spec.training.metrics)]
    if regularized:
        scores.append(REGULARIZATION_LOSS)
    if has_validation(spec.dataset):
        scores += [f"{VALIDATION_PREFIX}{name}" for name in scores]
    return [*scores, LR]


def scores(logged: list[str] | tuple[str, ...]) -> list[str]:
    """The series of `logged` (`epoch_series`) that have a best value: all but `lr`."""
    return [name for name in logged if name not in NO_BEST]


def no_best(name: str, logged: list[str] | tuple[str, ...]) -> str | None:
    """Why `name`, a series without a best value, can be neither monitored nor optimized (None
    for any other name): the learning rate is set by the schedule and the callbacks, and a
    run does not try to raise or lower it."""
    if name not in NO_BEST:
        return None
    return (
        "it is the learning rate, which the schedule and callbacks set, with no best value; "
        f"choose one of: {', '.join(scores(logged))}"
    )


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
