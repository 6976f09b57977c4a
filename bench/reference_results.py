"""Reference results: the fundamentals' classic networks, trained longer than the tests do.

    python bench/reference_results.py

Prints, for each network, the best validation figure reached beside the target it must reach
(the tests in tests/core/test_reference_results.py train shorter versions of the same).
"""

from __future__ import annotations

import time

import torch
from digits_setup import DIGITS_MLP

from core.settings import Settings
from core.spec import JobSpec
from core.training.session import train_spec

CNN = [
    {"type": "Reshape", "target_shape": [8, 8, 1]},
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
]
LRCN = [
    {
        "type": "TimeDistributed",
        "layer": {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
    },
    {"type": "TimeDistributed", "layer": {"type": "MaxPooling2D", "pool_size": 2}},
    {"type": "TimeDistributed", "layer": {"type": "Flatten"}},
    {"type": "LSTM", "units": 32},
    {"type": "Dense", "units": 4, "activation": "softmax"},
]

# name, data set, layers, loss, epochs, learning rate, monitored series, target, higher is better
CASES = [
    (
        "digits MLP",
        {"name": "digits"},
        DIGITS_MLP,
        "sparse_categorical_crossentropy",
        60,
        0.002,
        "val_accuracy",
        0.97,
        True,
    ),
    (
        "digits CNN",
        {"name": "digits"},
        CNN,
        "sparse_categorical_crossentropy",
        30,
        0.002,
        "val_accuracy",
        0.98,
        True,
    ),
    (
        "spiral MLP",
        {"name": "spiral", "n_samples": 1500},
        [
            {"type": "Dense", "units": 64, "activation": "relu"},
            {"type": "Dense", "units": 64, "activation": "relu"},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
        "sparse_categorical_crossentropy",
        100,
        0.01,
        "val_accuracy",
        0.95,
        True,
    ),
    (
        "parity LSTM",
        {"name": "parity", "n_samples": 3000, "steps": 8},
        [{"type": "LSTM", "units": 32}, {"type": "Dense", "units": 2, "activation": "softmax"}],
        "sparse_categorical_crossentropy",
        150,
        0.01,
        "val_accuracy",
        0.9,
        True,
    ),
    (
        "sine LSTM",
        {"name": "sine", "n_samples": 2000},
        [{"type": "LSTM", "units": 32}, {"type": "Dense", "units": 1}],
        "mean_squared_error",
        40,
        0.005,
        "val_loss",
        0.01,
        False,
    ),
    (
        "moving-dot LRCN",
        {"name": "moving_dot", "n_samples": 1000},
        LRCN,
        "sparse_categorical_crossentropy",
        30,
        0.003,
        "val_accuracy",
        0.95,
        True,
    ),
]


def main() -> None:
    print(f"{'network':<16} {'best ' + 'validation':<18} {'target':>8} {'met':>5} {'seconds':>8}")
    for name, dataset, layers, loss, epochs, lr, monitor, target, higher in CASES:
        spec = JobSpec.model_validate(
            {
                "dataset": {**dataset, "validation_split": 0.2},
                "model": {"layers": layers},
                "training": {
                    "loss": loss,
                    "optimizer": {"type": "adam", "learning_rate": lr},
                    "epochs": epochs,
                    "batch_size": 32,
                    "seed": 0,
                    "metrics": ["accuracy"] if "accuracy" in monitor else [],
                },
            }
        )
        started = time.perf_counter()
        history = train_spec(spec, Settings(), device=torch.device("cpu")).history.epochs
        values = [e[monitor] for e in history]
        best = max(values) if higher else min(values)
        met = best >= target if higher else best <= target
        label = f"{monitor} {best:.4f}"
        print(
            f"{name:<16} {label:<18} {target:>8} {'yes' if met else 'NO':>5} "
            f"{time.perf_counter() - started:>8.1f}"
        )


if __name__ == "__main__":
    main()
