"""Keras's arguments of optimizers, losses, metrics, schedules, callbacks, regularizers,
initializers and constraints: each accepted with Keras's meaning, or refused by JobSpec
validation at the argument with why. (Numbers against real Keras: training/test_keras_equivalence.)
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.spec import JobSpec
from core.spec.issues import issues_of

SCCE = "sparse_categorical_crossentropy"


def job(*, layer: dict | None = None, **training: Any) -> dict:
    """A digits MLP; `layer` replaces its hidden layer, `training` adds to its training."""
    hidden = layer or {"type": "dense", "units": 8, "activation": "relu"}
    return {
        "dataset": {"name": "digits", "validation_split": 0.2},
        "model": {"layers": [hidden, {"type": "dense", "units": 10, "activation": "softmax"}]},
        "training": {"loss": SCCE, **training},
    }


def dense(**arguments: Any) -> dict:
    return {"type": "dense", "units": 8, **arguments}


def stored(body: dict) -> dict:
    return JobSpec.model_validate(body).model_dump(mode="json")


def test_kerass_serialized_envelope_and_name_label_are_accepted_everywhere() -> None:
    envelope = {"module": "keras.optimizers", "registered_name": None}
    body = job(
        optimizer={
            **envelope,
            "class_name": "SGD",
            "config": {
                "name": "SGD",
                "learning_rate": {
                    **envelope,
                    "class_name": "ExponentialDecay",
                    "config": {
                        "initial_learning_rate": 0.1,
                        "decay_steps": 100,
                        "decay_rate": 0.9,
                        "staircase": False,
                        "name": "ExponentialDecay",
                    },
                },
                "momentum": 0.9,
                "weight_decay": None,
                "use_ema": False,
                "ema_momentum": 0.99,
                "ema_overwrite_frequency": None,
                "loss_scale_factor": None,
                "gradient_accumulation_steps": None,
            },
        },
        callbacks=[{"class_name": "EarlyStopping", "config": {"patience": 2, "verbose": 1}}],
        metrics=["acc", {"class_name": "SparseCategoricalAccuracy", "config": {"name": "acc"}}],
    )
    body["training"]["loss"] = {
        "module": "keras.losses",
        "class_name": "SparseCategoricalCrossentropy",
        "config": {"name": SCCE, "reduction": "sum_over_batch_size", "ignore_class": None},
        "registered_name": None,
    }
    training = stored(body)["training"]
    assert training["optimizer"] == {
        "type": "sgd",
        "learning_rate": {
            "type": "exponential_decay",
            "initial_learning_rate": 0.1,
            "decay_steps": 100,
            "decay_rate": 0.9,
            "staircase": False,
        },
        "weight_decay": 0.0,  # Keras's None
        "clipnorm": None,
        "clipvalue": None,
        "global_clipnorm": None,
        "momentum": 0.9,
        "nesterov": False,
    }
    assert training["loss"]["type"] == SCCE
    assert training["callbacks"][0]["patience"] == 2
    assert training["metrics"] == ["accuracy", "sparse_categorical_accuracy"]


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("mse", "mean_squared_error"),
        ("MAE", "mean_absolute_error"),
        ("mape", "mean_absolute_percentage_error"),
        ("msle", "mean_squared_logarithmic_error"),
        ("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error"),
        ("LogCosh", "log_cosh"),
        ("kld", "kl_divergence"),
    ],
)
def test_kerass_loss_aliases_are_stored_as_the_loss(loss: str, expected: str) -> None:
    body = job(loss=loss)
    body["dataset"] = {"name": "sine", "validation_split": 0.2}
    body["model"]["layers"][-1] = {"type": "dense", "units": 1}
    if expected == "kl_divergence":
        body = job(loss=loss)
    assert stored(body)["training"]["loss"]["type"] == expected


def test_loss_arguments_at_kerass_defaults_are_accepted_and_not_stored() -> None:
    loss = {"type": "categorical_crossentropy", "axis": -1, "reduction": "mean", "dtype": None}
    assert stored(job(loss=loss))["training"]["loss"] == {
        "type": "categorical_crossentropy",
        "from_logits": False,
        "label_smoothing": 0.0,
        "delta": None,
    }


def test_ignore_class_is_stored_only_when_set() -> None:
    assert stored(job(loss={"type": SCCE, "ignore_class": 0}))["training"]["loss"] == {
        "type": SCCE,
        "from_logits": False,
        "label_smoothing": None,
        "delta": None,
        "ignore_class": 0,
    }
    assert "ignore_class" not in stored(job(loss=SCCE))["training"]["loss"]


@pytest.mark.parametrize(
    "regularizer",
    [
        "l2",
        "L2",
        {"type": "l2"},
        {"class_name": "L2", "config": {"l2": 0.01}},
        {
            "module": "keras.regularizers",
            "class_name": "L1L2",
            "config": {"l1": 0.0, "l2": 0.01},
            "registered_name": None,
        },
        {"l2": 0.01},
    ],
    ids=str,
)
def test_regularizers_as_keras_writes_them(regularizer: Any) -> None:
    layer = stored(job(layer=dense(kernel_regularizer=regularizer)))["model"]["layers"][0]
    assert layer["kernel_regularizer"] == {"l1": 0.0, "l2": 0.01}


def test_constraints_and_initializers_in_kerass_serialized_form() -> None:
    layer = dense(
        kernel_initializer={
            "module": "keras.initializers",
            "class_name": "GlorotUniform",
            "config": {"seed": None, "input_axes": None, "output_axes": None},
            "registered_name": None,
        },
        bias_initializer={"class_name": "Constant", "config": {"value": 0.1}},
        kernel_constraint={
            "module": "keras.constraints",
            "class_name": "MaxNorm",
            "config": {"max_value": 3, "axis": 0},
            "registered_name": None,
        },
        bias_constraint={"class_name": "NonNeg", "config": {}},
    )
    built = stored(job(layer=layer))["model"]["layers"][0]
    assert built["kernel_initializer"] == "glorot_uniform"
    assert built["bias_initializer"] == {"type": "constant", "value": 0.1}
    assert built["kernel_constraint"] == {"type": "max_norm", "max_value": 3.0}
    assert built["bias_constraint"] == {"type": "non_neg"}


def test_callbacks_take_kerass_console_and_file_arguments() -> None:
    callbacks = [
        {"type": "ReduceLROnPlateau", "verbose": 1, "cooldown": 2, "min_lr": 1e-5},
        {"type": "ModelCheckpoint", "filepath": "best.keras", "save_freq": "epoch", "verbose": 1},
        {"type": "TerminateOnNaN", "raise_error": True},
        {"type": "EarlyStopping", "min_delta": -0.01, "start_from_epoch": 2, "baseline": 0.5},
    ]
    kept = stored(job(callbacks=callbacks))["training"]["callbacks"]
    assert "verbose" not in kept[0] and kept[0]["cooldown"] == 2
    assert "filepath" not in kept[1] and "save_freq" not in kept[1]
    assert kept[2] == {"type": "terminate_on_nan"}
    assert kept[3]["min_delta"] == 0.01  # Keras takes its absolute value


def test_a_monitor_named_by_a_keras_metric_alias_is_that_metrics_series() -> None:
    callbacks = [{"type": "EarlyStopping", "monitor": "val_acc", "mode": "max"}]
    body = job(metrics=["acc"], callbacks=callbacks)
    assert stored(body)["training"]["callbacks"][0]["monitor"] == "val_accuracy"


# Each refusal: where the issue is, and a fragment of why.
REFUSALS = [
    (job(loss="cce"), ("training", "loss", "type"), "write 'categorical_crossentropy'"),
    (job(loss="logcosh"), ("training", "loss", "type"), "write 'log_cosh'"),
    (job(loss={"type": SCCE, "reduction": "sum"}), ("training", "loss", "reduction"), "mean"),
    (job(loss={"type": SCCE, "reduction": "none"}), ("training", "loss", "reduction"), "none"),
    (
        job(loss={"type": "categorical_crossentropy", "ignore_class": 0}),
        ("training", "loss"),
        "ignore_class applies to sparse_categorical_crossentropy, not categorical_crossentropy",
    ),
    (
        job(loss={"type": "categorical_crossentropy", "axis": 1}),
        ("training", "loss", "axis"),
        "last axis",
    ),
    (job(loss={"type": "mse", "axis": 0}), ("training", "loss", "axis"), "expected axis -1"),
    (job(loss={"type": SCCE, "dtype": "float16"}), ("training", "loss", "dtype"), "precision"),
    (
        job(optimizer={"type": "adam", "use_ema": True}),
        ("training", "optimizer", "use_ema"),
        "moving average",
    ),
    (
        job(optimizer={"type": "adam", "ema_overwrite_frequency": 10}),
        ("training", "optimizer", "ema_overwrite_frequency"),
        "EMA is not implemented",
    ),
    (
        job(optimizer={"type": "sgd", "loss_scale_factor": 128.0}),
        ("training", "optimizer", "loss_scale_factor"),
        "fp16",
    ),
    (
        job(optimizer={"type": "rmsprop", "gradient_accumulation_steps": 4}),
        ("training", "optimizer", "gradient_accumulation_steps"),
        "batch_size",
    ),
    (
        job(metrics=[{"class_name": "AUC", "config": {"curve": "PR"}}]),
        ("training", "metrics", 0, "config", "curve"),
        "Epochal's AUC is the ROC",
    ),
    (
        job(metrics=[{"type": "Precision", "thresholds": 0.7}]),
        ("training", "metrics", 0, "thresholds"),
        "thresholds probabilities at 0.5",
    ),
    (
        job(metrics=[{"type": "TopKCategoricalAccuracy", "k": 3}]),
        ("training", "metrics", 0, "k"),
        "k = 5",
    ),
    (
        job(metrics=[{"type": "F1Score", "average": "micro"}]),
        ("training", "metrics", 0, "average"),
        "macro",
    ),
    (
        job(metrics=[{"type": "R2Score", "num_regressors": 2}]),
        ("training", "metrics", 0, "num_regressors"),
        "adjusted",
    ),
    (
        job(metrics=[{"type": "accuracy", "dtype": "float16"}]),
        ("training", "metrics", 0, "dtype"),
        "float32",
    ),
    (
        job(metrics=[{"type": "Recall", "class_id": 3}]),
        ("training", "metrics", 0, "class_id"),
        "every class",
    ),
    (
        job(metrics=[{"type": "mse", "threshold": 0.5}]),
        ("training", "metrics", 0, "threshold"),
        "unknown field",
    ),
    (job(metrics=["msee"]), ("training", "metrics", 0), "expected one of: accuracy"),
    (
        job(callbacks=[{"type": "ModelCheckpoint", "save_freq": 100}]),
        ("training", "callbacks", 0, "save_freq"),
        '"epoch"',
    ),
    (
        job(callbacks=[{"class_name": "TensorBoard", "config": {"log_dir": "logs"}}]),
        ("training", "callbacks", 0),
        "TensorBoard is not offered: Epochal records every epoch's series",
    ),
    (
        job(callbacks=["LearningRateScheduler"]),
        ("training", "callbacks", 0),
        "Python function",
    ),
    (
        job(callbacks=[{"type": "BackupAndRestore", "backup_dir": "/tmp"}]),
        ("training", "callbacks", 0),
        "resumes",
    ),
    (
        job(layer=dense(kernel_regularizer="orthogonal_regularizer")),
        ("model", "layers", 0, "kernel_regularizer"),
        "OrthogonalRegularizer is not offered",
    ),
    (
        job(layer=dense(kernel_regularizer={"class_name": "L1", "config": {"l2": 0.1}})),
        ("model", "layers", 0, "kernel_regularizer"),
        "takes l1; received unknown argument(s): l2",
    ),
    (
        job(layer=dense(bias_regularizer="l1_l2")),
        ("model", "layers", 0, "bias_regularizer"),
        "'l1_l2' is ambiguous",
    ),
    (
        job(layer=dense(kernel_constraint={"type": "MaxNorm", "axis": 1})),
        ("model", "layers", 0, "kernel_constraint", "axis"),
        "each output unit",
    ),
    (
        job(
            layer=dense(
                kernel_initializer={"class_name": "HeNormal", "config": {"input_axes": [0]}}
            )
        ),
        ("model", "layers", 0, "kernel_initializer", "config", "input_axes"),
        "fans",
    ),
    (
        job(optimizer={"class_name": "Adam", "config": {"use_ema": True}}),
        ("training", "optimizer", "config", "use_ema"),
        "leave use_ema false",
    ),
    (
        job(optimizer={"class_name": "Adam", "config": {"name": "adam"}, "build_config": {}}),
        ("training", "optimizer", "build_config"),
        "unknown field",
    ),
]


@pytest.mark.parametrize(
    ("body", "loc", "why"), REFUSALS, ids=[str(r[1][-1]) + str(i) for i, r in enumerate(REFUSALS)]
)
def test_each_refusal_is_located_at_the_argument_and_says_why(body: dict, loc: tuple, why: str):
    with pytest.raises(ValidationError) as error:
        JobSpec.model_validate(body)
    found = {issue.loc: issue.msg for issue in issues_of(error.value, body)}
    assert loc in found, found
    assert why in found[loc]


def test_a_misspelled_type_key_is_named_beside_the_missing_type() -> None:
    body = job(loss={"typ": "categorical_crossentropy", "from_logits": True})
    with pytest.raises(ValidationError) as error:
        JobSpec.model_validate(body)
    found = {issue.loc: issue.msg for issue in issues_of(error.value, body)}
    assert set(found) == {("training", "loss", "type"), ("training", "loss", "typ")}
    assert found[("training", "loss", "type")] == "field required"
    assert found[("training", "loss", "typ")].startswith("unknown field")
