"""The Keras import against real Keras 3 (a test-only dependency, torch backend, CPU): models
built in Keras (the seed articles', each example's in examples/, and one per layer family)
export their JSON, are imported, and their Epochal network has Keras's parameter count and each
layer's output shape."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import pytest
import torch

os.environ["KERAS_BACKEND"] = "torch"  # before Keras is imported: its backend is fixed then
keras = pytest.importorskip(
    "keras", reason="Keras 3 is not installed (it is in the `test` extra: pip install -e .[test])"
)

from core.errors import SpecError  # noqa: E402
from core.keras_import import from_keras  # noqa: E402
from core.nn.network import build_network  # noqa: E402

L = keras.layers
Built = tuple[Any, dict[str, Any] | None, dict[str, Any] | None]  # model, compile, fit
MOVING = ("moving_mean", "moving_variance")  # batch normalization's non-trainable weights


def compiled(model: Any, **kwargs: Any) -> dict[str, Any]:
    model.compile(**kwargs)
    return model.get_compile_config()


def early_stopping(**config: Any) -> dict[str, Any]:
    """Keras's callbacks have no get_config: the serialized form a user writes by hand."""
    return {"class_name": "EarlyStopping", "config": config}


def sequential(shape: tuple[int, ...], *layers: Any, **input_args: Any) -> Any:
    return keras.Sequential([keras.Input(shape, **input_args), *layers])


# --- the examples in examples/, rebuilt in Keras ------------------------------------------


def digits_mlp() -> Built:
    m = sequential(
        (64,), L.Dense(128, activation="relu"), L.Dropout(0.2), L.Dense(10, activation="softmax")
    )
    c = compiled(
        m,
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return m, c, {"batch_size": 64, "epochs": 20, "validation_split": 0.2}


def spiral_mlp() -> Built:
    m = sequential(
        (2,),
        L.Dense(64, activation="relu", kernel_initializer="he_uniform"),
        L.Dense(64, activation="relu", kernel_initializer="he_uniform"),
        L.Dense(3, activation="softmax"),
    )
    c = compiled(
        m,
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return m, c, {"batch_size": 32, "epochs": 40}


def cosine_warmup_sgd() -> Built:
    m, _, _ = spiral_mlp()
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=950, alpha=0.01, warmup_target=0.1, warmup_steps=50
    )
    sgd = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, global_clipnorm=1.0)
    c = compiled(m, optimizer=sgd, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m, c, {"batch_size": 32, "epochs": 40, "validation_split": 0.2}


def diagnostics_deep_sigmoid() -> Built:
    hidden = [
        L.Dense(16, activation="sigmoid", kernel_initializer="random_normal") for _ in range(10)
    ]
    m = sequential((2,), *hidden, L.Dense(1, activation="sigmoid"))
    c = compiled(
        m, optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return m, c, {"batch_size": 32, "epochs": 20}


def conv_block(filters: int, kernel_size: int, *, pool: int) -> list[Any]:
    """The seeds' convolution block: conv (he_uniform, same padding), batch norm, relu, pool."""
    return [
        L.Conv2D(filters, kernel_size, padding="same", kernel_initializer="he_uniform"),
        L.BatchNormalization(),
        L.Activation("relu"),
        L.MaxPooling2D(pool, padding="same"),
    ]


def digits_cnn() -> Built:
    m = sequential(
        (8, 8, 1),
        *conv_block(8, 3, pool=2),
        *conv_block(16, 3, pool=2),
        L.GlobalAveragePooling2D(),
        L.Dropout(0.5),
        L.Dense(10, activation="softmax"),
    )
    c = compiled(m, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = early_stopping(monitor="val_loss", patience=5, restore_best_weights=True)
    return m, c, {"batch_size": 64, "epochs": 30, "callbacks": [stop]}


def regularized_dense() -> Built:
    def dense() -> Any:
        return L.Dense(
            64,
            activation="relu",
            kernel_regularizer=keras.regularizers.L1L2(l1=1e-5, l2=1e-4),
            bias_regularizer=keras.regularizers.L2(1e-4),
            activity_regularizer=keras.regularizers.L1(1e-5),
        )

    m = sequential((64,), dense(), L.Dropout(0.3), dense(), L.Dense(10, activation="softmax"))
    c = compiled(m, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plateau = {
        "class_name": "ReduceLROnPlateau",
        "config": {"monitor": "val_loss", "factor": 0.5, "patience": 3, "min_lr": 1e-5},
    }
    stop = early_stopping(monitor="val_loss", patience=6, restore_best_weights=True)
    return (
        m,
        c,
        {"batch_size": 32, "epochs": 40, "validation_split": 0.2, "callbacks": [stop, plateau]},
    )


def sine_lstm() -> Built:
    m = sequential((20, 1), L.LSTM(32), L.Dense(1))
    c = compiled(
        m, optimizer=keras.optimizers.Adam(3e-3), loss="mean_squared_error", metrics=["mae"]
    )
    return m, c, {"batch_size": 64, "epochs": 30}


def moving_dot_lrcn() -> Built:
    m = sequential(
        (4, 8, 8, 1),
        L.TimeDistributed(L.Conv2D(4, 3, activation="relu")),
        L.TimeDistributed(L.MaxPooling2D(2)),
        L.TimeDistributed(L.Flatten()),
        L.Bidirectional(L.LSTM(8)),
        L.Dense(4, activation="softmax"),
    )
    c = compiled(
        m,
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return m, c, None


# --- the seed articles' models (/work/shared/seeds/001: regularizers, dropout, the CNN) -------


def seed_cnn() -> Built:
    m = sequential(
        (12, 12, 3),
        L.Rescaling(1.0 / 255),
        *conv_block(4, kernel_size=3, pool=3),
        *conv_block(4, kernel_size=3, pool=3),
        L.Flatten(),
        L.Dropout(0.3),
        L.Dense(5, activation="softmax"),
    )
    return m, {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"}, None


def seed_regularized_dropout() -> Built:
    m = sequential(
        (8, 8, 2),
        L.Conv2D(4, 3),
        L.SpatialDropout2D(0.2),
        L.Flatten(),
        L.Dense(
            units=16,
            kernel_regularizer=keras.regularizers.L1L2(l1=1e-5, l2=1e-4),
            bias_regularizer=keras.regularizers.L2(1e-4),
            activity_regularizer=keras.regularizers.L1(1e-5),
        ),
        L.Dropout(0.5, noise_shape=None, seed=None),
        L.Dense(3, activation="softmax"),
    )
    return m, {"optimizer": "sgd", "loss": "sparse_categorical_crossentropy"}, None


# --- one per remaining layer family ---------------------------------------------------------


def conv1d_pooling1d() -> Built:
    m = sequential(
        (16, 3),
        L.Conv1D(4, 3, padding="causal", dilation_rate=2),
        L.SpatialDropout1D(0.1),
        L.MaxPooling1D(2),
        L.Conv1D(6, 3, strides=2, padding="same", groups=2),
        L.AveragePooling1D(2, padding="same"),
        L.GlobalMaxPooling1D(),
        L.Dense(2),
    )
    return m, {"loss": "mean_squared_error"}, None


def pooling2d() -> Built:
    m = sequential(
        (9, 9, 2),
        L.AveragePooling2D(2, strides=1),
        L.Conv2D(4, (3, 2), strides=2),
        L.GlobalMaxPooling2D(),
        L.Dense(2),
    )
    return m, {"loss": "mean_squared_error"}, None


def normalization() -> Built:
    m = sequential(
        (6,),
        L.Rescaling(0.5, offset=1.0),
        L.Dense(8),
        L.LayerNormalization(),
        L.LeakyReLU(negative_slope=0.1),
        L.BatchNormalization(momentum=0.9),
        L.Dense(1),
    )
    return m, {"loss": "mean_squared_error"}, None


def recurrent_stack() -> Built:
    m = sequential(
        (12,),
        L.Reshape((3, 4)),
        L.GRU(5, return_sequences=True),
        L.SimpleRNN(3, activation="relu"),
        L.Dense(1),
    )
    return m, {"loss": "mean_squared_error"}, None


def embedding_bidirectional() -> Built:
    m = sequential(
        (10,),
        L.Embedding(50, 8),
        L.Bidirectional(L.GRU(4), merge_mode="sum"),
        L.Dense(2, activation="softmax"),
        dtype="int32",
    )
    return m, {"loss": "sparse_categorical_crossentropy"}, None


def sequence_wrappers() -> Built:
    m = sequential(
        (5, 3),
        L.Bidirectional(L.SimpleRNN(4, return_sequences=True)),
        L.TimeDistributed(L.Dense(2)),
        L.GlobalAveragePooling1D(),
        L.Dense(1),
    )
    return m, {"loss": "mean_squared_error"}, None


def augmentation() -> Built:
    m = sequential(
        (8, 8, 3),
        L.RandomFlip("horizontal"),
        L.RandomTranslation(0.1, 0.1),
        L.RandomRotation(0.1),
        L.RandomZoom(0.1),
        L.Conv2D(2, 3),
        L.Flatten(),
        L.Dense(2, activation="softmax"),
    )
    return m, {"loss": "sparse_categorical_crossentropy"}, None


def regularization_and_activations() -> Built:
    m = sequential(
        (8,),
        L.GaussianNoise(0.1),
        L.Dense(6),
        L.Activation("tanh"),
        L.GaussianDropout(0.2),
        L.ActivityRegularization(l1=0.01),
        L.Dense(3),
        L.Activation("softmax"),
    )
    return m, {"loss": "sparse_categorical_crossentropy"}, None


def functional_chain() -> Built:
    inputs = keras.Input((10,), name="features")
    hidden = L.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = L.Dense(2, activation="softmax", name="probabilities")(L.Dropout(0.1)(hidden))
    return keras.Model(inputs, outputs), {"loss": "sparse_categorical_crossentropy"}, None


MODELS: dict[str, Callable[[], Built]] = {
    f.__name__: f
    for f in (
        digits_mlp,
        spiral_mlp,
        cosine_warmup_sgd,
        diagnostics_deep_sigmoid,
        digits_cnn,
        regularized_dense,
        sine_lstm,
        moving_dot_lrcn,
        seed_cnn,
        seed_regularized_dropout,
        conv1d_pooling1d,
        pooling2d,
        normalization,
        recurrent_stack,
        embedding_bidirectional,
        sequence_wrappers,
        augmentation,
        regularization_and_activations,
        functional_chain,
    )
}


@pytest.mark.parametrize("name", MODELS)
def test_an_imported_keras_model_has_keras_parameter_count_and_shapes(name: str) -> None:
    model, compile_args, fit = MODELS[name]()
    try:
        conversion = from_keras(
            json.loads(model.to_json()), compile=compile_args, fit=fit, dataset="digits"
        )
    except SpecError as e:  # listed in full, for whoever adds the argument it names
        issues = "\n".join(f"{'.'.join(map(str, i.loc))}: {i.msg}" for i in e.issues)
        pytest.fail(f"refused:\n{issues}")
    spec = conversion.spec
    with torch.device("meta"):
        network = build_network(spec.model, tuple(model.input_shape[1:]))
    # Keras counts every weight, the non-trainable ones (batch normalization's moving mean and
    # variance) too: in PyTorch those are the running statistics' buffers.
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert network.parameter_count() == trainable
    moving = sum(b.numel() for n, b in network.named_buffers() if n.endswith(MOVING))
    assert network.parameter_count() + moving == model.count_params()
    shapes = {row.name: tuple(row.output_shape) for row in network.layer_summaries}
    for layer in model.layers:
        if not isinstance(layer, L.InputLayer):  # a functional model lists its input too
            assert shapes.get(layer.name) == tuple(layer.output.shape[1:]), layer.name


def test_a_model_compiled_without_metrics_is_imported_with_none() -> None:
    """Keras writes `metrics: null` (and `weighted_metrics: null`) when compile got no metrics:
    in `get_compile_config()` and in the compile config inside `to_json()`."""
    model = sequential((64,), L.Dense(10, activation="softmax"))
    compile_config = compiled(model, optimizer="adam", loss="sparse_categorical_crossentropy")
    assert compile_config["metrics"] is None
    for given in (None, compile_config):
        spec = from_keras(json.loads(model.to_json()), compile=given, dataset="digits").spec
        assert (spec.training.loss.type, spec.training.metrics) == (
            "sparse_categorical_crossentropy",
            [],
        )
