"""Keras's `compile` and `fit` arguments as the JobSpec's `training` (and the validation split
of its `dataset`), with where each value came from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.errors import Loc

# Arguments whose value changes nothing in Epochal, dropped when they hold it.
COMPILE_BOOKKEEPING: dict[str, Callable[[Any], bool]] = {
    "loss_weights": lambda v: v is None,
    "weighted_metrics": lambda v: v is None,
    "run_eagerly": lambda v: isinstance(v, bool),  # PyTorch runs eagerly either way
    "steps_per_execution": lambda v: v == 1,
    "jit_compile": lambda v: v in (False, "auto"),
    "auto_scale_loss": lambda v: v is True,
}
FIT_BOOKKEEPING: dict[str, Callable[[Any], bool]] = {
    "verbose": lambda v: True,  # what Keras prints; Epochal records every epoch
    "batch_size": lambda v: v is None,  # Keras's default, 32, is Epochal's
    "callbacks": lambda v: v is None,
    "initial_epoch": lambda v: v == 0,
    "steps_per_epoch": lambda v: v is None,
    "validation_steps": lambda v: v is None,
    "validation_batch_size": lambda v: v is None,
    "validation_freq": lambda v: v == 1,
    "validation_data": lambda v: v is None,
    "class_weight": lambda v: v is None,
    "sample_weight": lambda v: v is None,
    "x": lambda v: v is None,
    "y": lambda v: v is None,
}
# Labels inside a serialized optimizer, loss or metric: they name it and change nothing.
LABELS = ("name", "dtype")


def unlabelled(value: Any) -> Any:
    """A Keras-serialized object ({"class_name", "config"}), and those nested in it, without the
    `name` and `dtype` labels of their configs; anything else as it is."""
    if isinstance(value, list):
        return [unlabelled(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "class_name" in value and isinstance(value.get("config"), dict):
        config = {k: unlabelled(v) for k, v in value["config"].items() if k not in LABELS}
        return {**value, "config": config}
    return {k: unlabelled(v) for k, v in value.items()}


def _kept(args: dict[str, Any], bookkeeping: dict[str, Callable[[Any], bool]]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if not (k in bookkeeping and bookkeeping[k](v))}


def training_of(
    compile_args: dict[str, Any], fit_args: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[Loc, Loc]]:
    """(training, the dataset's share, origins): `origins` maps each JobSpec path written here
    to the path it came from (`training.loss` ← `compile.loss`)."""
    training: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    origins: dict[Loc, Loc] = {}
    for key, value in _kept(compile_args, COMPILE_BOOKKEEPING).items():
        training[key] = unlabelled(value)
        origins[("training", key)] = ("compile", key)
    for key, value in _kept(fit_args, FIT_BOOKKEEPING).items():
        if key == "validation_split":
            dataset[key] = value
            origins[("dataset", key)] = ("fit", key)
        else:
            training[key] = value
            origins[("training", key)] = ("fit", key)
    origins.setdefault(("training", "loss"), ("compile", "loss"))  # where a missing one belongs
    return training, dataset, origins
