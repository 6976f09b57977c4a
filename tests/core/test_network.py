"""Networks built from specs: shapes, parameter counts, Keras's default initialization, logits."""

from __future__ import annotations

import math

import pytest
import torch

from core.nn.initializers import fans
from core.nn.network import build_network
from core.spec.job import ModelSpec


def model(*layers: dict) -> ModelSpec:
    return ModelSpec.model_validate({"layers": list(layers)})


def test_summary_has_keras_shapes_and_parameter_counts() -> None:
    net = build_network(
        model(
            {"type": "flatten"},
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dropout", "rate": 0.5},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ),
        (4, 2),
    )
    assert [(r.type, r.output_shape, r.params) for r in net.layer_summaries] == [
        ("flatten", (8,), 0),
        ("dense", (32,), 8 * 32 + 32),
        ("dropout", (32,), 0),
        ("dense", (3,), 32 * 3 + 3),
    ]
    assert net.parameter_count() == 8 * 32 + 32 + 32 * 3 + 3
    assert net(torch.zeros(5, 4, 2)).shape == (5, 3)


def test_dense_acts_on_the_last_axis_of_a_non_flat_input() -> None:
    net = build_network(
        model({"type": "dense", "units": 4}, {"type": "dense", "units": 2}), (16, 4, 3)
    )
    assert [r.output_shape for r in net.layer_summaries] == [(16, 4, 4), (16, 4, 2)]
    assert [r.params for r in net.layer_summaries] == [3 * 4 + 4, 4 * 2 + 2]
    assert net(torch.zeros(5, 16, 4, 3)).shape == (5, 16, 4, 2)


def test_softmax_output_is_split_off_so_logits_are_reachable() -> None:
    torch.manual_seed(0)
    net = build_network(model({"type": "dense", "units": 3, "activation": "softmax"}), (5,))
    net.initialize()
    x = torch.randn(4, 5)
    assert net.output_activation == "softmax"
    assert torch.allclose(net(x), torch.softmax(net.logits(x), dim=-1))
    assert torch.allclose(net(x).sum(-1), torch.ones(4))


def test_an_activation_layer_at_the_end_counts_as_the_output_activation() -> None:
    net = build_network(
        model({"type": "dense", "units": 1}, {"type": "activation", "activation": "sigmoid"}), (3,)
    )
    assert net.output_activation == "sigmoid"
    hidden = build_network(
        model(
            {"type": "dense", "units": 4, "activation": "sigmoid"}, {"type": "dense", "units": 1}
        ),
        (3,),
    )
    assert hidden.output_activation is None


def test_default_initialization_is_keras_glorot_uniform_with_zero_biases() -> None:
    torch.manual_seed(0)
    net = build_network(model({"type": "dense", "units": 300}), (200,))
    net.initialize()
    linear = net.body[0]
    limit = math.sqrt(6 / (200 + 300))
    w = linear.weight
    assert w.abs().max() <= limit
    assert w.abs().max() > 0.99 * limit  # fills the whole range
    assert w.var().item() == pytest.approx(limit**2 / 3, rel=0.03)  # variance of U(-a, a)
    assert torch.count_nonzero(linear.bias) == 0


def test_he_uniform_uses_fan_in() -> None:
    torch.manual_seed(0)
    net = build_network(
        model({"type": "dense", "units": 400, "kernel_initializer": "he_uniform"}), (100,)
    )
    net.initialize()
    assert net.body[0].weight.var().item() == pytest.approx(2 / 100, rel=0.03)  # Var = 2 / fan_in


def test_fans_follow_keras_for_dense_and_conv_kernels() -> None:
    assert fans((300, 200)) == (200, 300)  # torch Linear weight is (out, in)
    assert fans((16, 3, 5, 5)) == (3 * 25, 16 * 25)  # Conv2d weight is (out, in, kh, kw)


def test_building_on_the_meta_device_allocates_nothing() -> None:
    with torch.device("meta"):
        net = build_network(model({"type": "dense", "units": 100_000}), (100_000,))
    assert net.parameter_count() == 100_000 * 100_000 + 100_000
    assert all(p.is_meta for p in net.parameters())
