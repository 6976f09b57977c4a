"""What the training benchmarks share: the digits MLP, a spec builder and a wall clock.

The scripts are run as `python bench/<script>.py`, which puts this folder on the import path.
"""

from __future__ import annotations

import time
from typing import Any

from core.spec import JobSpec
from core.training.callbacks import Callback, TrainState

DIGITS_MLP = [
    {"type": "dense", "units": 128, "activation": "relu"},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 10, "activation": "softmax"},
]


def digits_spec(layers: list[dict[str, Any]], epochs: int, **training: Any) -> JobSpec:
    """Digits with a 20 % validation split, Adam, batches of 64, accuracy, seed 0."""
    return JobSpec.model_validate(
        {
            "dataset": {"name": "digits", "validation_split": 0.2},
            "model": {"layers": layers},
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "optimizer": "adam",
                "batch_size": 64,
                "epochs": epochs,
                "metrics": ["accuracy"],
                "seed": 0,
                **training,
            },
        }
    )


class Clock(Callback):
    """Seconds from the first step to the end of training (setup excluded)."""

    def on_train_begin(self, state: TrainState) -> None:
        self.started = time.perf_counter()

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.seconds = time.perf_counter() - self.started
