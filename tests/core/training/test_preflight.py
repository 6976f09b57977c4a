"""The initialization pre-flight: a classifier whose last layer starts confidently wrong is
warned about at its first batch; a default one is not; regression losses are not judged."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from core.settings import Settings
from core.spec import JobSpec
from core.training.preflight import (
    INITIAL_LOSS_RATIO,
    InitialLossCheck,
    class_prior,
    entropy,
    expected_initial_loss,
)
from core.training.session import train_spec

CPU = torch.device("cpu")


def digits_mlp(last: dict[str, Any]) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "digits", "validation_split": 0.2},
            "model": {
                "layers": [
                    {"type": "dense", "units": 32, "activation": "relu"},
                    {"type": "dense", "units": 10, "activation": "softmax", **last},
                ]
            },
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "epochs": 1,
                "seed": 0,
            },
        }
    )


def preflight(spec: JobSpec) -> InitialLossCheck:
    check = InitialLossCheck()
    train_spec(spec, Settings(), device=CPU, preflight=check)
    return check


def test_a_default_classifier_is_not_warned() -> None:
    assert preflight(digits_mlp({})).warnings == []


@pytest.mark.parametrize(
    "last",
    [
        {"kernel_initializer": {"type": "random_normal", "stddev": 3.0}},
        {"bias_initializer": {"type": "random_uniform", "minval": -20, "maxval": 20}},
    ],
)
def test_a_large_last_layer_init_is_warned(last: dict[str, Any]) -> None:
    warnings = preflight(digits_mlp(last)).warnings
    assert len(warnings) == 1
    (warning,) = warnings
    assert warning["type"] == "initial_loss" and warning["step"] == 1
    assert warning["layer"] == "dense_1"
    assert "what an untrained classifier's should be: 2.3" in warning["message"]
    assert "bias_initializer" in warning["message"]


def test_regression_losses_are_not_judged() -> None:
    assert expected_initial_loss("mean_squared_error", None) is None
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "regression", "n_samples": 64, "features": 3},
            "model": {"layers": [{"type": "dense", "units": 1, "bias_initializer": "ones"}]},
            "training": {"loss": "mean_squared_error", "seed": 0},
        }
    )
    assert preflight(spec).warnings == []


def test_the_references() -> None:
    assert expected_initial_loss("sparse_categorical_crossentropy", 10) == math.log(10)
    assert expected_initial_loss("binary_crossentropy", 2) == math.log(2)
    prior = class_prior(torch.tensor([0, 0, 0, 1]), 2)
    assert prior == [0.75, 0.25]
    assert entropy(prior) < math.log(2)
    one_hot = torch.eye(3)[torch.tensor([0, 1, 1, 2])]
    assert class_prior(one_hot, 3) == [0.25, 0.5, 0.25]
    assert INITIAL_LOSS_RATIO * math.log(10) > 3.7  # digits_cnn's first loss: not warned


def test_a_resumed_run_keeps_the_warning_and_is_not_checked_again() -> None:
    check = preflight(digits_mlp({"kernel_initializer": {"type": "random_normal", "stddev": 3.0}}))
    again = InitialLossCheck()
    again.load_state_dict(check.state_dict())
    again.expected = math.log(10)
    again.on_step_losses(None, [41, 42], [50.0, 50.0])  # type: ignore[arg-type]
    assert again.warnings == check.warnings and len(again.warnings) == 1


def test_the_weight_penalties_are_not_blamed_on_the_initialization() -> None:
    """Strong L2 on a wide layer starts far above 2 ln C through the penalty alone: the
    data loss is what is judged."""
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "digits", "validation_split": 0.2},
            "model": {
                "layers": [
                    {
                        "type": "dense",
                        "units": 512,
                        "activation": "relu",
                        "kernel_regularizer": {"type": "l2", "l2": 0.1},
                    },
                    {"type": "dense", "units": 10, "activation": "softmax"},
                ]
            },
            "training": {"loss": "sparse_categorical_crossentropy", "epochs": 1, "seed": 0},
        }
    )
    check = preflight(spec)
    assert check.weight_penalty > 4 * math.log(10)  # the first loss is far above the bound
    assert check.warnings == []
