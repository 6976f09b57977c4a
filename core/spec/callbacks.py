"""Callback specs with Keras's names, arguments and defaults (`training.callbacks`).

`verbose` is accepted and not stored: it sets what Keras prints to a console, and Epochal's
callbacks report in the job's series, logs and `summary.stop_reason` instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from core.spec.base import Spec, keras_default, tagged_union
from core.spec.metrics import series_name

Mode = Literal["auto", "min", "max"]
Verbose = Annotated[int, Field(ge=0, le=2, exclude=True, description="Keras's console output")]


def _absolute(value: Any) -> Any:
    return abs(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


NO_SAVE_FREQ = (
    'save_freq must be "epoch": Epochal decides on the checkpoint at the end of each epoch, '
    "where the monitored value is known; a number of batches is not offered"
)


def _monitor(value: Any) -> Any:
    return series_name(value) if isinstance(value, str) else value


# A monitored series, with Keras's metric aliases read as the series Epochal logs
# ("val_acc" -> "val_accuracy", "mean_squared_error" -> "mse").
Monitor = Annotated[str, BeforeValidator(_monitor)]


class EarlyStopping(Spec):
    type: Literal["early_stopping"]
    monitor: Monitor = "val_loss"
    min_delta: Annotated[float, BeforeValidator(_absolute)] = Field(
        0.0, ge=0, description="Keras takes its absolute value"
    )
    patience: int = Field(0, ge=0)
    mode: Mode = "auto"
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: int = Field(0, ge=0)
    verbose: Verbose = 0


class ReduceLROnPlateau(Spec):
    type: Literal["reduce_lr_on_plateau"]
    monitor: Monitor = "val_loss"
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(10, ge=0)
    mode: Mode = "auto"
    min_delta: float = Field(1e-4, ge=0)
    cooldown: int = Field(0, ge=0)
    min_lr: float = Field(0.0, ge=0)
    verbose: Verbose = 0


class ModelCheckpoint(Spec):
    """Keras's ModelCheckpoint without a file path: the checkpoint it keeps is the job's `best`
    (download it with GET /v1/jobs/{id}/model?checkpoint=best). With `save_best_only` it is
    replaced only when `monitor` improves on the best so far; without (Keras's default) at
    every epoch, like Keras overwriting its file. `save_weights_only` is accepted and changes
    nothing: a checkpoint always holds the weights with the optimizer's state, and downloads
    hold the weights only. `filepath` is accepted and not stored: the checkpoint is the job's,
    kept in its artifact store, not a file the spec names."""

    type: Literal["model_checkpoint"]
    filepath: str | None = Field(None, max_length=1000, exclude=True)
    monitor: Monitor = "val_loss"
    mode: Mode = "auto"
    save_best_only: bool = False
    save_weights_only: bool = False
    initial_value_threshold: float | None = None
    verbose: Verbose = 0
    save_freq: Annotated[str | int, keras_default(lambda v: v == "epoch", NO_SAVE_FREQ)] = Field(
        "epoch", exclude=True
    )


class TerminateOnNaN(Spec):
    """Always on in Epochal (a NaN or infinite loss fails the job as divergence); accepted so
    that a Keras callback list translates as it is. `raise_error` is accepted and not stored:
    either way the run ends at the first NaN loss (Keras stops or raises; Epochal fails the
    job)."""

    type: Literal["terminate_on_nan"]
    raise_error: bool = Field(False, exclude=True)


CALLBACK_SPECS = (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, TerminateOnNaN)


RECORDED = (
    "Epochal records every epoch's series, logs and summary itself (GET /v1/jobs/{id}/metrics, "
    "/logs); there is no console or file of the worker's to write to"
)
# Keras's other callbacks, each with why Epochal does not offer it.
NOT_OFFERED = {
    "tensorboard": RECORDED,
    "csvlogger": RECORDED,
    "progbarlogger": RECORDED,
    "history": RECORDED,
    "remotemonitor": RECORDED,
    "backupandrestore": "Epochal checkpoints every job (its `last` checkpoint) and resumes from "
    "it when a worker is lost",
    "learningratescheduler": "it takes a Python function, which a spec cannot carry; give the "
    "optimizer's learning_rate a schedule (exponential_decay, piecewise_constant_decay, "
    "step_decay...) or use reduce_lr_on_plateau",
    "lambdacallback": "it runs Python code, which a spec cannot carry",
    "swapemaweights": "it goes with the optimizer's use_ema, which Epochal does not implement",
}


CallbackSpec = tagged_union(CALLBACK_SPECS, refused=NOT_OFFERED)
