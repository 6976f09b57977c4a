"""bidirectional and time_distributed: Keras's shapes and merges, the inner layer's weights,
activation and regularizers carried through, nested specs, and the CNN+LSTM (LRCN) stack."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from core.errors import SpecError
from core.nn.layers import LAYERS
from core.nn.network import Network, build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.spec.layers import wrappers
from core.training.session import train_spec


def model(*layers: dict) -> ModelSpec:
    return ModelSpec.model_validate({"layers": list(layers)})


def network(shape: tuple[int, ...], *layers: dict) -> Network:
    torch.manual_seed(0)
    net = build_network(model(*layers), shape)
    net.initialize()
    return net.eval()


MERGES = {
    "concat": lambda a, b: torch.cat([a, b], dim=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
}


@pytest.mark.parametrize("merge_mode", list(MERGES))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_merges_the_forward_and_the_time_aligned_backward_output(
    merge_mode: str, return_sequences: bool
) -> None:
    layer = {"type": "gru", "units": 4, "return_sequences": return_sequences}
    net = network((6, 3), {"type": "bidirectional", "layer": layer, "merge_mode": merge_mode})
    units = 8 if merge_mode == "concat" else 4
    shape = (6, units) if return_sequences else (units,)
    assert net.layer_summaries[0].output_shape == shape
    assert net.layer_summaries[0].params == 2 * 3 * (4 * 3 + 4 * 4 + 2 * 4)  # two GRUs

    bi = net.body[0]
    forward, backward = bi.forward_layer.rnn, bi.backward_layer.rnn
    assert not torch.equal(forward.weight_ih_l0, backward.weight_ih_l0)  # weights of its own
    x = torch.randn(2, 6, 3)
    y, _ = forward(x)
    y_rev, _ = backward(x.flip(1))  # step t read input step 5 - t ...
    y_rev = y_rev.flip(1)  # ... so flip it back: step t of both saw input step t last
    if not return_sequences:  # each direction's last output: the backward one ends at step 0
        y, y_rev = y[:, -1], y_rev[:, 0]
    out = net(x)
    assert out.shape == (2, *shape)
    torch.testing.assert_close(out, MERGES[merge_mode](y, y_rev))


def test_bidirectional_refuses_a_backward_or_a_non_recurrent_layer() -> None:
    with pytest.raises(ValidationError, match="expected a layer with go_backwards false"):
        model(
            {"type": "bidirectional", "layer": {"type": "lstm", "units": 2, "go_backwards": True}}
        )
    with pytest.raises(ValidationError, match="'simple_rnn', 'lstm', 'gru'"):
        model({"type": "bidirectional", "layer": {"type": "dense", "units": 2}})
    with pytest.raises(ValidationError, match="merge_mode"):
        model({"type": "bidirectional", "layer": {"type": "lstm", "units": 2}, "merge_mode": None})


def test_time_distributed_dense_is_the_dense_applied_at_every_step() -> None:
    net = network(
        (5, 3),
        {"type": "time_distributed", "layer": {"type": "dense", "units": 4, "activation": "relu"}},
    )
    assert net.layer_summaries[0].output_shape == (5, 4)
    assert net.layer_summaries[0].params == 3 * 4 + 4
    linear = net.body[0].layer[0]
    x = torch.randn(2, 5, 3)
    per_step = torch.stack([torch.relu(linear(x[:, t])) for t in range(5)], dim=1)
    torch.testing.assert_close(net(x), per_step)  # the activation is applied inside
    assert (net(x) >= 0).all() and (per_step == 0).any()


def test_time_distributed_initializes_and_regularizes_its_layer_as_keras() -> None:
    dense = {"type": "dense", "units": 50, "kernel_regularizer": {"l2": 0.01}}
    net = network((4, 30), {"type": "time_distributed", "layer": dense})
    linear = net.body[0].layer
    limit = (6 / (30 + 50)) ** 0.5  # glorot_uniform on (30, 50), and zero biases
    assert linear.weight.abs().max() <= limit and linear.weight.abs().max() > 0.95 * limit
    assert torch.equal(linear.bias.detach(), torch.zeros(50))
    net(torch.randn(2, 4, 30))
    torch.testing.assert_close(net.regularization_loss(), 0.01 * linear.weight.square().sum())


def test_time_distributed_refuses_its_layers_activity_regularizer_which_keras_ignores() -> None:
    """Keras 3's TimeDistributed calls its layer's `call`, which skips the activity penalty."""
    dense = {"type": "dense", "units": 5, "activity_regularizer": {"l1": 0.1}}
    with pytest.raises(ValidationError, match="activity_regularization layer after"):
        ModelSpec.model_validate({"layers": [{"type": "time_distributed", "layer": dense}]})


def test_time_distributed_folds_any_step_shape() -> None:
    net = network(
        (3, 4, 4, 2),
        {"type": "time_distributed", "layer": {"type": "flatten"}},
        {"type": "time_distributed", "layer": {"type": "dropout", "rate": 0.5}},
        {"type": "lstm", "units": 2},
    )
    assert [r.output_shape for r in net.layer_summaries] == [(3, 32), (3, 32), (2,)]
    x = torch.arange(2 * 3 * 32, dtype=torch.float32).reshape(2, 3, 4, 4, 2)
    torch.testing.assert_close(net.body[0](x), x.reshape(2, 3, 32))  # row-major per step


def test_time_distributed_says_which_step_shape_its_layer_refuses() -> None:
    with pytest.raises(SpecError) as e:
        build_network(
            model({"type": "time_distributed", "layer": {"type": "lstm", "units": 2}}),
            (5, 4, 4, 1),
        )
    assert e.value.issues[0].msg == (
        "layer 0 (time_distributed) applies lstm to each time step, of shape (4, 4, 1), and lstm "
        "expects a sequence of shape (steps, features) but gets (4, 4, 1): wrap the layers "
        "before it in time_distributed, ending with flatten"
    )
    with pytest.raises(SpecError, match=r"expects inputs with a time axis, \(steps, \*step_shape"):
        build_network(model({"type": "time_distributed", "layer": {"type": "flatten"}}), (5,))


def test_nested_layer_specs_validate_normalize_and_round_trip() -> None:
    spec = model(
        {
            "type": "TimeDistributed",
            "layer": {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 3}},
        }
    )
    outer = spec.layers[0]
    assert isinstance(outer, wrappers.TimeDistributed)
    assert (outer.layer.type, outer.layer.layer.type) == ("bidirectional", "lstm")
    assert ModelSpec.model_validate(spec.model_dump()) == spec
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        model({"type": "time_distributed", "layer": {"type": "denze", "units": 2}})
    net = build_network(spec, (2, 5, 4))  # a bidirectional LSTM over each of 2 sequences
    assert net.layer_summaries[0].output_shape == (2, 6)
    assert net(torch.randn(3, 2, 5, 4)).shape == (3, 2, 6)


needs_conv = pytest.mark.skipif(
    "conv2d" not in LAYERS or "max_pooling2d" not in LAYERS,
    reason="conv2d and max_pooling2d are not registered yet",
)


@needs_conv
def test_lrcn_cnn_then_lstm_over_video_frames() -> None:
    net = network(
        (8, 8, 8, 1),
        {
            "type": "time_distributed",
            "layer": {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
        },
        {"type": "time_distributed", "layer": {"type": "max_pooling2d", "pool_size": 2}},
        {"type": "time_distributed", "layer": {"type": "flatten"}},
        {"type": "lstm", "units": 8},
        {"type": "dense", "units": 4, "activation": "softmax"},
    )
    assert [(r.output_shape, r.params) for r in net.layer_summaries] == [
        ((8, 6, 6, 4), 3 * 3 * 1 * 4 + 4),
        ((8, 3, 3, 4), 0),
        ((8, 36), 0),
        ((8,), 4 * (8 * 36 + 8 * 8 + 8)),
        ((4,), 8 * 4 + 4),
    ]
    x = torch.randn(2, 8, 8, 8, 1)
    assert net(x).shape == (2, 4)
    # each frame goes through the same convolution: frame 3 alone gives frame 3's features
    features = net.body[0](x)
    torch.testing.assert_close(features[:, 3:4], net.body[0](x[:, 3:4]))


@needs_conv
def test_an_lrcn_learns_the_direction_of_a_moving_dot() -> None:
    """One frame cannot tell the direction: only the LSTM over the frames' features can."""
    conv = {
        "type": "conv2d",
        "filters": 8,
        "kernel_size": 3,
        "padding": "same",
        "activation": "relu",
    }
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "moving_dot", "n_samples": 400, "validation_split": 0.25},
            "model": {
                "layers": [
                    {"type": "time_distributed", "layer": conv},
                    {"type": "time_distributed", "layer": {"type": "max_pooling2d"}},
                    {"type": "time_distributed", "layer": {"type": "flatten"}},
                    {"type": "lstm", "units": 16},
                    {"type": "dense", "units": 4, "activation": "softmax"},
                ]
            },
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "optimizer": {"type": "adam", "learning_rate": 0.01},
                "epochs": 12,
                "metrics": ["accuracy"],
                "seed": 0,
            },
        }
    )
    epochs = train_spec(spec, Settings(), device=torch.device("cpu")).history.epochs
    assert epochs[0]["val_accuracy"] < 0.4  # about chance (0.25) after one epoch
    assert epochs[-1]["val_accuracy"] >= 0.9
