"""Keras's layer arguments: each accepted with Keras's meaning (shapes and parameter counts
compared with real Keras 3 on the torch backend), or refused at the argument with the reason."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from core.errors import SpecError
from core.nn.layers.regularization import BroadcastDropout
from core.nn.network import build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.issues import issues_of
from core.spec.job import ModelSpec
from core.training.plan import plan_job
from core.training.session import train_spec
from tests.core.layers.build import build, run

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers


def passed_through(layer: Any) -> dict:
    """A Keras layer's config as the Keras-JSON importer hands it over: `type` from the class,
    without `trainable: true`, the dtype policy and the serialized objects (initializers and
    the like, translated elsewhere)."""
    config = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in layer.get_config().items()
        if key not in ("trainable", "dtype") and not isinstance(value, dict)
    }
    return {"type": type(layer).__name__, **config}


def keras_summary(model: Any) -> list[tuple[tuple[int, ...], int]]:
    """Each layer's output shape and trainable parameter count (what Epochal's summary counts:
    Keras's count_params() adds batch normalization's moving statistics)."""
    return [
        (tuple(layer.output.shape[1:]), sum(math.prod(w.shape) for w in layer.trainable_weights))
        for layer in model.layers
    ]


def epochal_summary(configs: list[dict], shape: tuple[int, ...]) -> list[tuple[tuple, int]]:
    net = build_network(ModelSpec.model_validate({"layers": configs}), shape)
    return [(r.output_shape, r.params) for r in net.layer_summaries]


# Every layer family, each as Keras writes its config (at Keras's defaults), on an input shape.
KERAS_LAYERS = [
    (lambda: layers.Dense(4), (5, 3)),  # Dense on a rank-3 batch: the last axis
    (lambda: layers.Dense(4, use_bias=False), (2, 5, 3)),
    (lambda: layers.Dropout(0.3, noise_shape=(None, 1, 3), seed=1), (5, 3)),
    (lambda: layers.Flatten(), (4, 4, 2)),
    (lambda: layers.Activation("relu"), (3,)),
    (lambda: layers.Conv1D(4, 3, padding="causal"), (9, 2)),
    (lambda: layers.Conv2D(4, 3, strides=2), (9, 9, 2)),
    (lambda: layers.MaxPooling1D(), (8, 2)),
    (lambda: layers.AveragePooling2D(2, padding="same"), (5, 5, 2)),
    (lambda: layers.GlobalMaxPooling1D(keepdims=True), (6, 2)),
    (lambda: layers.GlobalAveragePooling2D(), (4, 4, 3)),
    (lambda: layers.BatchNormalization(), (4, 4, 3)),
    (lambda: layers.LayerNormalization(), (6, 3)),
    (lambda: layers.Rescaling(0.5), (3,)),
    (lambda: layers.LeakyReLU(), (3,)),
    (lambda: layers.Reshape((2, 6)), (12,)),
    (lambda: layers.SpatialDropout1D(0.2, seed=3), (6, 3)),
    (lambda: layers.SpatialDropout2D(0.2, seed=3), (4, 4, 3)),
    (lambda: layers.GaussianNoise(0.1, seed=2), (3,)),
    (lambda: layers.GaussianDropout(0.1, seed=2), (3,)),
    (lambda: layers.ActivityRegularization(l1=0.1), (3,)),
    (lambda: layers.RandomFlip(seed=4), (8, 8, 1)),
    (lambda: layers.RandomTranslation(0.1, 0.1, seed=4), (8, 8, 1)),
    (lambda: layers.RandomZoom(0.1, seed=4), (8, 8, 1)),
    (lambda: layers.RandomRotation(0.1, seed=4), (8, 8, 1)),
    (lambda: layers.Embedding(10, 4), (6,)),
    (lambda: layers.SimpleRNN(3, seed=5), (6, 2)),
    (lambda: layers.LSTM(3, return_sequences=True, unroll=True), (6, 2)),
    (lambda: layers.GRU(3, seed=5), (6, 2)),
]


@pytest.mark.parametrize(("make", "shape"), KERAS_LAYERS)
def test_a_keras_layer_config_builds_with_keras_shapes_and_parameter_counts(make, shape) -> None:
    layer = make()
    model = keras.Sequential([keras.Input(shape), layer])
    assert epochal_summary([passed_through(layer)], shape) == keras_summary(model)


def test_an_input_layer_as_keras_writes_it_fixes_the_input_and_adds_no_module() -> None:
    model = keras.Sequential([keras.Input((5, 3)), layers.Dense(4)])
    config = model.get_config()["layers"][0]
    assert config["class_name"] == "InputLayer"
    written = {"type": "InputLayer", **config["config"]}  # batch_shape [None, 5, 3], sparse…
    net = build_network(
        ModelSpec.model_validate({"layers": [written, passed_through(model.layers[0])]}), (5, 3)
    )
    assert [(r.type, r.output_shape, r.params) for r in net.layer_summaries] == [
        ("input", (5, 3), 0),
        ("dense", (5, 4), 16),
    ]
    assert len(net.body) == 1  # the dense layer's module alone
    variable = ModelSpec.model_validate({"layers": [{"type": "Input", "shape": [None, 3]}]})
    assert build_network(variable, (7, 3)).layer_summaries[0].output_shape == (7, 3)


def digits(layers: list[dict]) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "digits"},
            "model": {"layers": layers},
            "training": {"loss": "sparse_categorical_crossentropy"},
        }
    )


SOFTMAX10 = {"type": "dense", "units": 10, "activation": "softmax"}


def plan_issues(layers: list[dict]) -> dict[tuple, str]:
    with pytest.raises(SpecError) as e:
        plan_job(digits(layers), Settings())
    return {i.loc: i.msg for i in e.value.issues}


def test_the_input_layer_is_checked_against_the_data_set_and_comes_first() -> None:
    assert plan_job(digits([{"type": "Input", "shape": [64]}, SOFTMAX10]), Settings())
    found = plan_issues([{"type": "Input", "shape": [8, 8, 1]}, SOFTMAX10])
    assert found == {
        ("model", "layers", 0, "shape"): "layer 0 (input) has shape (8, 8, 1) but the data "
        "set's inputs have shape (64,)"
    }
    found = plan_issues([{"type": "InputLayer", "batch_shape": [None, 32]}, SOFTMAX10])
    assert "has batch_shape (None, 32)" in found[("model", "layers", 0, "batch_shape")]
    found = plan_issues([SOFTMAX10, {"type": "Input", "shape": [10]}])
    assert (
        found[("model", "layers", 1)]
        == "layer 1 (input) is an input layer: it comes first, as in Keras"
    )


def test_a_first_layers_input_shape_is_checked_like_keras_input() -> None:
    assert plan_job(digits([{**SOFTMAX10, "input_shape": [64]}]), Settings())
    assert plan_job(digits([{**SOFTMAX10, "input_dim": 64}]), Settings())
    found = plan_issues([{**SOFTMAX10, "input_shape": [784]}])
    assert (
        "has input_shape (784,) but its input has shape (64,)"
        in (found[("model", "layers", 0, "input_shape")])
    )


def test_dropout_noise_shape_shares_the_mask_along_its_ones() -> None:
    torch.manual_seed(0)
    built = build((6, 8), type="dropout", rate=0.5, noise_shape=[None, 1, 8])
    out = run(built, torch.ones(4, 6, 8), training=True)
    assert torch.equal(out, out[:, :1].expand_as(out))  # one mask for every step
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(run(built, torch.ones(4, 6, 8)), torch.ones(4, 6, 8))
    # Keras's own dropout shares its mask the same way.
    kept = layers.Dropout(0.5, noise_shape=(None, 1, 8))(torch.ones(4, 6, 8), training=True)
    kept = torch.as_tensor(kept.detach().cpu().numpy())
    assert torch.equal(kept, kept[:, :1].expand_as(kept))


def test_a_shared_mask_follows_the_channel_axis_inside_a_convolution_stack() -> None:
    torch.manual_seed(0)
    dropout = BroadcastDropout(0.5, (-1, 1, 1, -1)).channels_first()  # Keras (N, 1, 1, C)
    dropout.train()
    out = dropout(torch.ones(4, 8, 5, 5))  # (N, C, H, W)
    assert torch.equal(out, out[..., :1, :1].expand_as(out))


def test_a_full_noise_shape_is_plain_dropout_and_a_wrong_one_is_refused() -> None:
    assert type(build((6, 8), type="dropout", rate=0.5, noise_shape=[None, 6, 8]).module) is (
        type(build((6, 8), type="dropout", rate=0.5).module)
    )
    found = plan_issues([{"type": "Dropout", "rate": 0.5, "noise_shape": [None, 32]}, SOFTMAX10])
    assert "does not broadcast to its input" in found[("model", "layers", 0, "noise_shape")]


def test_activity_regularizer_is_taken_by_every_layer() -> None:
    net = build_network(
        ModelSpec.model_validate(
            {"layers": [{"type": "flatten", "activity_regularizer": {"l1": 0.5}}]}
        ),
        (2, 2),
    )
    net(torch.tensor([[[1.0, -2.0], [3.0, 0.0]]]))
    penalty = net.regularization_loss()
    assert penalty is not None and penalty.item() == pytest.approx(3.0)


def test_batch_normalization_moving_initializers() -> None:
    net = build_network(
        ModelSpec.model_validate(
            {"layers": [{"type": "BatchNormalization", "moving_mean_initializer": "ones"}]}
        ),
        (3,),
    )
    net.initialize()
    assert net.state_dict()["body.0.moving_mean"].tolist() == [1.0, 1.0, 1.0]


def test_bidirectional_takes_keras_backward_layer() -> None:
    forward, backward = layers.LSTM(3), layers.GRU(2, go_backwards=True)
    model = keras.Sequential(
        [keras.Input((6, 2)), layers.Bidirectional(forward, backward_layer=backward)]
    )
    spec = {
        "type": "Bidirectional",
        "layer": passed_through(forward),
        "backward_layer": passed_through(backward),
    }
    # The output as Keras computes it: 3 + 2 units (its symbolic shape says 2 · 3).
    output = tuple(model(torch.zeros(1, 6, 2)).shape[1:])
    assert epochal_summary([spec], (6, 2)) == [(output, model.count_params())] == [((5,), 108)]
    found = plan_issues(
        [
            {"type": "reshape", "target_shape": [8, 8]},
            {**spec, "merge_mode": "sum"},
            SOFTMAX10,
        ]
    )
    assert "needs outputs of one shape" in found[("model", "layers", 1, "backward_layer")]


def test_embedding_input_length_is_checked_against_the_input() -> None:
    built = build((6,), type="embedding", input_dim=10, output_dim=3, input_length=6)
    assert built.output_shape == (6, 3)
    with pytest.raises(SpecError) as e:
        build_network(
            ModelSpec.model_validate(
                {
                    "layers": [
                        {"type": "embedding", "input_dim": 9, "output_dim": 3, "input_length": 5}
                    ]
                }
            ),
            (6,),
        )
    assert e.value.issues[0].loc == ("model", "layers", 0, "input_length")


def test_keras_2s_alpha_is_leaky_relus_negative_slope() -> None:
    assert build((3,), type="LeakyReLU", alpha=0.1).module.negative_slope == 0.1
    assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1


def test_a_dense_layer_on_sequences_trains() -> None:
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "sine", "n_samples": 100},
            "model": {
                "layers": [
                    {"type": "dense", "units": 4, "activation": "tanh"},
                    {"type": "flatten"},
                    {"type": "dense", "units": 1},
                ]
            },
            "training": {"loss": "mean_squared_error", "epochs": 2, "seed": 0},
        }
    )
    result = train_spec(spec, Settings(), device=torch.device("cpu"))
    steps = result.plan.info.feature_shape[0]
    assert [r.output_shape for r in result.plan.layers] == [(steps, 4), (steps * 4,), (1,)]
    assert math.isfinite(result.history.epochs[-1]["loss"])


def test_a_dtype_policy_of_float32_is_accepted() -> None:
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}
    assert digits([{**SOFTMAX10, "dtype": policy}]).model.layers[0].dtype == "float32"


def frozen_xor(epochs: int) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "xor", "n_samples": 200},
            "model": {
                "layers": [
                    {
                        "type": "dense",
                        "units": 8,
                        "activation": "tanh",
                        "trainable": False,
                        "kernel_constraint": {"type": "unit_norm"},
                    },
                    {"type": "batch_normalization", "trainable": False},
                    {"type": "dense", "units": 1, "activation": "sigmoid"},
                ]
            },
            "training": {"loss": "binary_crossentropy", "epochs": epochs, "seed": 0},
        }
    )


def test_a_frozen_layer_keeps_its_initial_weights_as_in_keras() -> None:
    cpu = torch.device("cpu")
    first = train_spec(frozen_xor(1), Settings(), device=cpu).network
    start = {k: v.clone() for k, v in first.state_dict().items()}
    trained = train_spec(frozen_xor(2), Settings(), device=cpu, init_weights=start).network
    after = trained.state_dict()
    frozen = [k for k in start if k.startswith(("body.0.", "body.2."))]  # dense, batch norm
    assert frozen and all(torch.equal(after[k], start[k]) for k in frozen)  # moving stats too
    assert not torch.equal(after["body.3.weight"], start["body.3.weight"])
    assert [p.requires_grad for p in trained.parameters()] == [False] * 4 + [True] * 2


def test_a_frozen_batch_normalization_runs_in_inference_mode_as_in_keras() -> None:
    x = torch.randn(6, 3) * 4 + 2
    ours = build((3,), type="batch_normalization", trainable=False)
    assert torch.equal(run(ours, x, training=True), run(ours, x))
    theirs = layers.BatchNormalization(trainable=False)
    training = theirs(x.numpy(), training=True)
    assert torch.allclose(torch.as_tensor(training.detach().cpu().numpy()), run(ours, x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")
def test_a_frozen_layers_weight_penalties_leave_the_loss_as_in_keras() -> None:
    """Keras 3 sums the penalties of the trainable weights only; a frozen layer's activity
    penalty still counts, divided by the batch size (Keras 3.15), as Epochal's."""
    frozen = {"kernel_regularizer": {"l2": 1.0}, "bias_regularizer": {"l1": 0.5}}
    activity = {"activity_regularizer": {"l1": 0.25}}
    ours = build_network(
        ModelSpec.model_validate(
            {
                "layers": [
                    {"type": "dense", "units": 3, "trainable": False, **frozen, **activity},
                    {"type": "dense", "units": 1, "kernel_regularizer": {"l2": 0.1}},
                ]
            }
        ),
        (2,),
    )
    theirs = keras.Sequential(
        [
            keras.Input((2,)),
            layers.Dense(
                3,
                trainable=False,
                kernel_regularizer=keras.regularizers.L2(1.0),
                bias_regularizer=keras.regularizers.L1(0.5),
                activity_regularizer=keras.regularizers.L1(0.25),
                bias_initializer="ones",
            ),
            layers.Dense(1, kernel_regularizer=keras.regularizers.L2(0.1)),
        ]
    )
    theirs.compile(loss="mse")
    linears = [m for m in ours.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, layer in zip(linears, theirs.layers, strict=True):
            kernel, bias = (torch.as_tensor(w) for w in layer.get_weights())
            linear.weight.copy_(kernel.T)
            linear.bias.copy_(bias)
    x = torch.tensor([[0.4, -1.2], [1.5, 0.3], [-0.7, 2.0]])  # a batch of three
    y = torch.tensor([[1.0], [0.0], [-1.0]])
    with torch.no_grad():
        loss = torch.nn.functional.mse_loss(ours(x), y) + ours.regularization_loss()
    expected = theirs.evaluate(x.numpy(), y.numpy(), batch_size=3, verbose=0)
    assert len(theirs.losses) == 2  # the trainable kernel's penalty, the activity penalty
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_a_network_with_every_weight_frozen_is_refused() -> None:
    found = plan_issues([{**SOFTMAX10, "trainable": False}])
    assert found[("model", "layers")] == (
        "every layer with weights has trainable false: there is nothing to train"
    )


# (layer, argument, a phrase of the reason): each refused at the argument.
REFUSED = [
    (
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "data_format": "channels_first"},
        "data_format",
        "channels-last",
    ),
    (
        {"type": "conv1d", "filters": 2, "kernel_size": 3, "data_format": "channels_first"},
        "data_format",
        "channels-last",
    ),
    ({"type": "flatten", "data_format": "channels_first"}, "data_format", "channels-last"),
    ({"type": "max_pooling2d", "data_format": "channels_first"}, "data_format", "channels-last"),
    (
        {"type": "average_pooling1d", "data_format": "channels_first"},
        "data_format",
        "channels-last",
    ),
    (
        {"type": "global_average_pooling2d", "data_format": "channels_first"},
        "data_format",
        "channels-last",
    ),
    (
        {"type": "spatial_dropout2d", "rate": 0.1, "data_format": "channels_first"},
        "data_format",
        "channels-last",
    ),
    ({"type": "random_flip", "data_format": "channels_first"}, "data_format", "channels-last"),
    ({"type": "dense", "units": 2, "dtype": "float16"}, "dtype", "training.precision"),
    ({"type": "dense", "units": 2, "autocast": False}, "autocast", "training.precision"),
    ({"type": "dense", "units": 2, "lora_rank": 4}, "lora_rank", "LoRA adapts pretrained weights"),
    (
        {"type": "dense", "units": 2, "quantization_config": "int8"},
        "quantization_config",
        "no quantization",
    ),
    (
        {"type": "embedding", "input_dim": 5, "output_dim": 2, "mask_zero": True},
        "mask_zero",
        "no masks",
    ),
    (
        {"type": "embedding", "input_dim": 5, "output_dim": 2, "weights": [[0.0]]},
        "weights",
        "initializers instead",
    ),
    ({"type": "lstm", "units": 2, "return_state": True}, "return_state", "one tensor"),
    ({"type": "gru", "units": 2, "stateful": True}, "stateful", "no state is carried"),
    ({"type": "batch_normalization", "renorm": True}, "renorm", "not implemented"),
    ({"type": "layer_normalization", "rms_scaling": True}, "rms_scaling", "deprecates it"),
    (
        {"type": "activity_regularization", "activity_regularizer": {"l1": 0.1}},
        "activity_regularizer",
        "l1 and l2",
    ),
    (
        {"type": "bidirectional", "layer": {"type": "lstm", "units": 2}, "merge_mode": None},
        "merge_mode",
        "one tensor",
    ),
    (
        {"type": "bidirectional", "layer": {"type": "lstm", "units": 2}, "weights": [[0.0]]},
        "weights",
        "initializers instead",
    ),
    ({"type": "input", "shape": [3], "sparse": True}, "sparse", "dense"),
    ({"type": "input", "shape": [3], "ragged": True}, "ragged", "same shape"),
    ({"type": "input", "shape": [3], "optional": True}, "optional", "always has its one input"),
    ({"type": "input", "shape": [3], "batch_size": 8}, "batch_size", "batches vary"),
    ({"type": "input", "batch_shape": [8, 3]}, "batch_shape", "batches vary"),
    ({"type": "input", "shape": [3], "dtype": "float16"}, "dtype", "training.precision"),
]


@pytest.mark.parametrize(("layer", "argument", "why"), REFUSED)
def test_a_refused_argument_is_named_with_the_reason(layer: dict, argument: str, why: str) -> None:
    body = {
        "dataset": {"name": "digits"},
        "model": {"layers": [layer]},
        "training": {"loss": "mean_squared_error"},
    }
    with pytest.raises(ValidationError) as e:
        JobSpec.model_validate(body)
    [issue] = issues_of(e.value, body)
    assert issue.loc == ("model", "layers", 0, argument)
    assert why in issue.msg and f"Received: {argument}=" in issue.msg


def test_keras_values_that_change_nothing_are_accepted() -> None:
    accepted = [
        {"type": "dropout", "rate": 0.1, "seed": 3},
        {"type": "gaussian_noise", "stddev": 0.1, "seed": 3},
        {"type": "random_rotation", "factor": 0.1, "seed": 3, "data_format": "channels_last"},
        {"type": "lstm", "units": 2, "seed": 3, "unroll": True, "use_cudnn": False},
        {"type": "gru", "units": 2, "implementation": 1, "zero_output_for_mask": True},
        {"type": "batch_normalization", "synchronized": True, "renorm_momentum": 0.9},
        {"type": "dense", "units": 2, "trainable": True, "dtype": "float32", "lora_alpha": 8},
        {"type": "input", "shape": [3], "dtype": "int32", "sparse": False, "ragged": False},
    ]
    spec = ModelSpec.model_validate({"layers": accepted})
    assert [layer.type for layer in spec.layers] == [layer["type"] for layer in accepted]
