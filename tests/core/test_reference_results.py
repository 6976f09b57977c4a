"""Reference results: the fundamentals' classic networks reach known quality in a few seconds.

These train real models on the CPU (the longer version is bench/reference_results.py).
"""

from __future__ import annotations

import pytest
import torch

from core.settings import Settings
from core.spec import JobSpec
from core.training.session import train_spec

CPU = torch.device("cpu")


def train(dataset: dict, layers: list[dict], loss: str, **training: object) -> dict[str, float]:
    spec = JobSpec.model_validate(
        {
            "dataset": dataset,
            "model": {"layers": layers},
            "training": {"loss": loss, "metrics": ["accuracy"], "seed": 0, **training},
        }
    )
    result = train_spec(spec, Settings(), device=CPU)
    return result.history.epochs[-1] | {
        "best_val_accuracy": max(e["val_accuracy"] for e in result.history.epochs)
    }


def test_digits_mlp_reaches_097() -> None:
    logs = train(
        {"name": "digits", "validation_split": 0.2},
        [
            {"type": "dense", "units": 128, "activation": "relu"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
        "sparse_categorical_crossentropy",
        batch_size=32,
        epochs=40,
        optimizer={"type": "adam", "learning_rate": 0.002},
    )
    assert logs["val_accuracy"] >= 0.97


def test_digits_cnn_as_the_fundamentals_write_it_reaches_098() -> None:
    """Conv2D + BatchNormalization + MaxPooling2D + Dropout, as the fundamentals' Keras example."""
    logs = train(
        {"name": "digits", "validation_split": 0.2},
        [
            {"type": "reshape", "target_shape": [8, 8, 1]},
            {
                "type": "Conv2D",
                "filters": 32,
                "kernel_size": 3,
                "padding": "same",
                "kernel_initializer": "he_uniform",
            },
            {"type": "BatchNormalization"},
            {"type": "Activation", "activation": "relu"},
            {
                "type": "Conv2D",
                "filters": 64,
                "kernel_size": 3,
                "padding": "same",
                "kernel_initializer": "he_uniform",
            },
            {"type": "BatchNormalization"},
            {"type": "Activation", "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Dropout", "rate": 0.25},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
        "sparse_categorical_crossentropy",
        batch_size=64,
        epochs=15,
        optimizer={"type": "adam", "learning_rate": 0.002},
    )
    assert logs["best_val_accuracy"] >= 0.98


def test_a_small_mlp_solves_the_spiral() -> None:
    logs = train(
        {"name": "spiral", "n_samples": 900, "validation_split": 0.2},
        [
            {"type": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
        "sparse_categorical_crossentropy",
        batch_size=32,
        epochs=60,
        optimizer={"type": "adam", "learning_rate": 0.01},
    )
    assert logs["val_accuracy"] >= 0.95  # a linear model stays near 1/3 here


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_recurrent_network_learns_sequence_parity(cell: str) -> None:
    logs = train(
        {"name": "parity", "n_samples": 1000, "steps": 5, "validation_split": 0.2},
        [{"type": cell, "units": 32}, {"type": "dense", "units": 2, "activation": "softmax"}],
        "sparse_categorical_crossentropy",
        batch_size=32,
        epochs=80,
        optimizer={"type": "adam", "learning_rate": 0.01},
    )
    assert logs["best_val_accuracy"] >= 0.9  # chance is 0.5
