"""The callbacks a spec can name (`training.callbacks`), built from their specs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.registry import Registry
from core.training.callbacks import Callback
from core.training.early_stopping import EarlyStopping
from core.training.model_checkpoint import ModelCheckpoint
from core.training.plateau import ReduceLROnPlateau

CALLBACKS: Registry[Callable[[Any], Callback | None]] = Registry("callback")
CALLBACKS.register("early_stopping")(EarlyStopping)
CALLBACKS.register("reduce_lr_on_plateau")(ReduceLROnPlateau)
CALLBACKS.register("model_checkpoint")(ModelCheckpoint)
CALLBACKS.register("terminate_on_nan")(lambda spec: None)  # always on: a NaN loss fails the job


def build_callbacks(specs: Sequence[Any]) -> list[Callback]:
    built = (CALLBACKS.get(spec.type)(spec) for spec in specs)
    return [cb for cb in built if cb is not None]
