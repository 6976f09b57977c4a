"""The network runs channels-first inside and gives what the layers on Keras's channels-last
layout give, layer by layer, with Keras's shapes at its edges."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.nn.layers import activation_module, build_layer
from core.nn.layers.conv import ChannelsLast
from core.nn.layout import ToChannelsFirst, ToChannelsLast
from core.nn.network import build_network
from core.nn.regularization import ActivityPenalty
from core.spec.job import ModelSpec

CONV = {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"}
IMAGE = [
    {"type": "reshape", "target_shape": [7, 6, 2]},
    {**CONV, "activation": "relu", "activity_regularizer": {"l1": 0.01}},  # padding (1, 1)
    {"type": "batch_normalization"},
    {"type": "activation", "activation": "relu"},
    {**CONV, "kernel_size": 2, "strides": 2},  # padding split (0, 1): padded explicitly
    {"type": "spatial_dropout2d", "rate": 0.5},
    {"type": "max_pooling2d", "pool_size": 3, "strides": 1, "padding": "same"},
    {"type": "average_pooling2d", "pool_size": 2, "padding": "same"},
    {"type": "batch_normalization", "axis": 1},  # a spatial axis
    {"type": "global_average_pooling2d", "keepdims": True},
    {"type": "flatten"},
    {"type": "dense", "units": 3, "activation": "softmax"},
]
SEQUENCE = [
    {"type": "conv1d", "filters": 4, "kernel_size": 3, "padding": "causal"},
    {"type": "average_pooling1d", "pool_size": 3, "strides": 1, "padding": "same"},
    {"type": "conv1d", "filters": 5, "kernel_size": 3, "padding": "same", "activation": "tanh"},
    {"type": "global_max_pooling1d"},
    {"type": "dense", "units": 2},
]
CONV_OUTPUT = [  # a softmax over the channels of a convolution's output, no flatten
    {"type": "conv2d", "filters": 3, "kernel_size": 1, "activation": "relu"},
    {"type": "max_pooling2d", "pool_size": 2},
    {"type": "conv2d", "filters": 3, "kernel_size": 1, "activation": "softmax"},
]


def keras_layout(layers: list[dict], shape: tuple[int, ...]) -> list[nn.Module]:
    """Each layer as its builder makes it, on channels-last tensors, with its activation and
    activity penalty."""
    out = []
    for layer in ModelSpec.model_validate({"layers": layers}).layers:
        built = build_layer(layer, shape)
        parts = [] if built.module is None else [built.module]
        if built.activation != "linear":
            parts.append(activation_module(built.activation))
        if built.activity is not None:
            parts.append(ActivityPenalty(built.activity))
        out.append(nn.Sequential(*parts))
        shape = built.output_shape
    return out


@pytest.mark.parametrize(
    ("layers", "shape"), [(IMAGE, (84,)), (SEQUENCE, (9, 3)), (CONV_OUTPUT, (4, 4, 2))]
)
@pytest.mark.parametrize("training", [False, True])
def test_the_network_gives_the_keras_layout_layers_outputs(layers, shape, training) -> None:
    torch.manual_seed(0)
    network = build_network(ModelSpec.model_validate({"layers": layers}), shape)
    network.initialize()
    reference = keras_layout(layers, shape)
    params = [p for layer in reference for p in layer.parameters()]
    assert len(params) == len(list(network.parameters()))
    with torch.no_grad():
        for mine, theirs in zip(network.parameters(), params, strict=True):
            theirs.copy_(mine)
    x = torch.randn(5, *shape)
    network.train(training)
    outputs, y = [], x
    for layer in reference:
        layer.train(training)
        torch.manual_seed(1)  # the same dropout draws: one dropout layer per network
        y = layer(y)
        outputs.append(y)
    torch.manual_seed(1)
    logits = network.logits(x)
    # Keras's shapes, layer by layer, are the summary's; the network's result is theirs
    assert [tuple(o.shape[1:]) for o in outputs] == [
        r.output_shape for r in network.layer_summaries
    ]
    torch.testing.assert_close(network.head(logits), outputs[-1])
    if training:  # the penalties and the moving statistics follow alike
        penalty = network.regularization_loss()
        if penalty is not None:
            torch.testing.assert_close(penalty, reference[1][-1].last)
        theirs = [b for layer in reference for b in layer.buffers()]
        for ours, reference_buffer in zip(network.buffers(), theirs, strict=True):
            torch.testing.assert_close(ours, reference_buffer)


def test_the_layout_changes_once_each_way_and_symmetric_padding_goes_to_the_layer() -> None:
    network = build_network(ModelSpec.model_validate({"layers": IMAGE}), (84,))
    kinds = [type(m) for m in network.body]
    assert kinds.count(ToChannelsFirst) == kinds.count(ToChannelsLast) == 1
    assert kinds.index(ToChannelsFirst) == 1  # after the reshape, before the first conv
    assert network.module_layers[kinds.index(ToChannelsLast)] == "flatten_10"
    windows = [m for m in network.body if isinstance(m, ChannelsLast)]
    assert all(m.first for m in windows)
    assert [(m.padding, m.layer.padding) for m in windows] == [
        ((), (1, 1)),  # symmetric: the convolution pads
        ((0, 0, 0, 1), (0, 0)),  # the strided conv's uneven split (height 7 -> 4): F.pad
        ((), (1, 1)),  # max pooling pads with -inf itself
    ]


def test_the_weights_keep_the_names_they_had_on_keras_layout() -> None:
    """Saved models and checkpoints name each weight by its layer's place in the body."""
    network = build_network(ModelSpec.model_validate({"layers": IMAGE}), (84,))
    assert list(network.state_dict())[:8] == [
        "body.1.layer.weight",  # reshape 0, conv 1 (its relu 2 and activity penalty 3)
        "body.1.layer.bias",
        "body.4.gamma",
        "body.4.beta",
        "body.4.moving_mean",
        "body.4.moving_variance",
        "body.6.layer.weight",
        "body.6.layer.bias",
    ]
