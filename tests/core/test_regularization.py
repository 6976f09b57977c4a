"""Keras's regularizers and constraints: penalties against hand computations, constraints after steps."""

from __future__ import annotations

import pytest
import torch

from core.nn.network import build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.training.loop import TensorData, evaluate
from core.training.session import make_objective, train_spec

# The fundamentals' Keras layer: Dense(64, kernel_regularizer=L1L2(l1=1e-5, l2=1e-4),
# bias_regularizer=L2(1e-4), activity_regularizer=L1(1e-5)) — one to one.
KERAS_DENSE = {
    "type": "dense",
    "units": 64,
    "activation": "relu",
    "kernel_regularizer": {"l1": 1e-5, "l2": 1e-4},
    "bias_regularizer": {"l2": 1e-4},
    "activity_regularizer": {"l1": 1e-5},
}


def test_weight_and_activity_penalties_are_keras_sums() -> None:
    torch.manual_seed(0)
    net = build_network(
        ModelSpec.model_validate({"layers": [KERAS_DENSE, {"type": "dense", "units": 3}]}), (5,)
    )
    net.initialize()
    linear = net.body[0]
    with torch.no_grad():
        linear.bias.fill_(0.5)
    x = torch.randn(7, 5)
    net(x)
    kernel, bias = linear.weight, linear.bias
    activity = torch.relu(x @ kernel.T + bias)  # the layer's output, after its activation
    expected = (
        1e-5 * kernel.abs().sum()
        + 1e-4 * (kernel**2).sum()  # L1L2 on the kernel, no 1/2
        + 1e-4 * (bias**2).sum()
        + 1e-5 * activity.abs().sum() / 7  # divided by the batch size, as Keras 3.15 does
    )
    assert net.regularization_loss().item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_network_without_regularizers_adds_nothing() -> None:
    net = build_network(ModelSpec.model_validate({"layers": [{"type": "dense", "units": 3}]}), (5,))
    assert net.regularization_loss() is None


def regularized_run(**layer_options: object):
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "moons", "n_samples": 200, "validation_split": 0.25},
            "model": {
                "layers": [
                    {"type": "dense", "units": 16, "activation": "relu", **layer_options},
                    {"type": "dense", "units": 2, "activation": "softmax"},
                ]
            },
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "epochs": 3,
                "seed": 0,
                "batch_size": 50,
            },
        }
    )
    return train_spec(spec, Settings(), device=torch.device("cpu"))


def test_the_penalty_is_part_of_the_loss_and_reported_on_its_own() -> None:
    plain = regularized_run().history.epochs[0]
    heavy = regularized_run(kernel_regularizer={"l2": 0.1}).history.epochs[0]
    assert "regularization_loss" not in plain
    assert heavy["regularization_loss"] > 0.05
    assert heavy["val_regularization_loss"] > 0
    # Same seed, same first step: the reported loss is the data loss plus the penalty.
    assert heavy["loss"] > plain["loss"] + 0.5 * heavy["regularization_loss"]


def test_max_norm_and_unit_norm_constrain_each_units_incoming_weights() -> None:
    capped = regularized_run(kernel_constraint={"type": "max_norm", "max_value": 0.5}).network
    norms = capped.body[0].weight.norm(dim=1)  # PyTorch's row = Keras's kernel column (axis 0)
    assert norms.max().item() <= 0.5 + 1e-5
    unit = regularized_run(kernel_constraint={"type": "UnitNorm"}).network
    assert unit.body[0].weight.norm(dim=1).tolist() == pytest.approx([1.0] * 16, abs=1e-4)


def test_an_activity_penalty_is_a_per_sample_mean_whatever_the_evaluation_batch() -> None:
    """The penalty is a per-sample mean (the batch's sum over its size) and evaluation weighs
    each batch by its size: validation in EVAL_BATCH_MIN batches (not the training's 16) gives
    the training's penalty, and any batch size gives one evaluation loss."""
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "digits", "validation_split": 0.5},
            "model": {
                "layers": [
                    {
                        "type": "dense",
                        "units": 32,
                        "activation": "relu",
                        "activity_regularizer": {"l1": 1e-3},
                    },
                    {"type": "dense", "units": 10, "activation": "softmax"},
                ]
            },
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "epochs": 1,
                "seed": 0,
                "batch_size": 16,
                "optimizer": {"type": "sgd", "learning_rate": 1e-6},
            },  # weights barely move
        }
    )
    result = train_spec(spec, Settings(), device=torch.device("cpu"))
    [logs] = result.history.epochs
    assert logs["val_regularization_loss"] == pytest.approx(logs["regularization_loss"], rel=0.2)
    generator = torch.Generator().manual_seed(0)
    data = TensorData(torch.randn(100, 64, generator=generator), torch.arange(100) % 10)
    objective = make_objective(spec, result.plan)
    small, large = (evaluate(result.network, objective, data, size)["loss"] for size in (16, 1024))
    assert small == pytest.approx(large, rel=1e-5)
