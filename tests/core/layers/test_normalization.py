"""Batch and layer normalization with Keras's arithmetic (biased variance, epsilon 1e-3, Keras
momentum), parameter counts, rescaling and the leaky_relu layer."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from core.nn.layers import LayerShapeError
from tests.core.layers.build import build, run, spec, trainable

# Two channels over a batch of four: channel 0 has mean 2.5 and biased variance 1.25 (the
# unbiased one, 5/3, is what PyTorch's BatchNorm would move its running variance by).
X = torch.tensor([[1.0, 10.0], [2.0, 10.0], [3.0, 30.0], [4.0, 30.0]])


def test_keras_defaults() -> None:
    bn = spec(type="BatchNormalization")
    ln = spec(type="LayerNormalization")
    assert (bn.axis, bn.momentum, bn.epsilon, bn.center, bn.scale) == (-1, 0.99, 1e-3, True, True)
    assert (ln.axis, ln.epsilon, ln.center, ln.scale) == (-1, 1e-3, True, True)
    assert spec(type="LeakyReLU").negative_slope == 0.3  # the layer's, not the function's 0.2


def test_batch_normalization_in_training_uses_the_batch_and_moves_keras_averages() -> None:
    built = build((2,), type="batch_normalization")
    out = run(built, X, training=True)
    expected_0 = (X[:, 0] - 2.5) / math.sqrt(1.25 + 1e-3)
    expected_1 = (X[:, 1] - 20.0) / math.sqrt(100.0 + 1e-3)
    torch.testing.assert_close(out, torch.stack([expected_0, expected_1], 1))
    layer = built.module
    # moving = moving · 0.99 + batch · 0.01, from zeros and ones
    torch.testing.assert_close(layer.moving_mean, torch.tensor([0.025, 0.2]))
    torch.testing.assert_close(layer.moving_variance, torch.tensor([0.99 + 0.0125, 0.99 + 1.0]))

    run(built, X, training=True)  # a second step moves them again by 1%
    torch.testing.assert_close(layer.moving_mean, torch.tensor([0.025 * 0.99 + 0.025, 0.398]))


def test_batch_normalization_trains_on_a_batch_of_one_sample_as_keras_does() -> None:
    """A last batch of one sample (PyTorch's kernel refuses one value per channel): Keras's
    batch variance is 0, so the output is beta, and the averages move towards the sample."""
    built = build((2,), type="batch_normalization")
    out = run(built, X[:1], training=True)
    torch.testing.assert_close(out, torch.zeros(1, 2))  # beta starts at zeros
    torch.testing.assert_close(built.module.moving_mean, 0.01 * X[0])
    torch.testing.assert_close(built.module.moving_variance, torch.full((2,), 0.99))


def test_batch_normalization_channels_first_trains_with_keras_averages_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 3, 4, 4) * 2.0 + 1.0  # channels-first, as inside a network
    built = build((4, 4, 3), type="batch_normalization", momentum=0.9)
    layer = built.module.channels_first(4)
    gamma = torch.tensor([1.0, 2.0, 0.5])
    with torch.no_grad():
        layer.gamma.copy_(gamma)
    layer.train()
    out = layer(x)
    (out * x).sum().backward()  # the statistics' hand-over leaves the graph intact

    dims = (0, 2, 3)
    xr = x.clone().requires_grad_(True)
    mean, var = xr.mean(dims, keepdim=True), xr.var(dims, unbiased=False, keepdim=True)
    expected = (xr - mean) / torch.sqrt(var + 1e-3) * gamma.view(1, 3, 1, 1)
    (expected * x).sum().backward()
    torch.testing.assert_close(out, expected.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        layer.gamma.grad,
        ((expected.detach() / gamma.view(1, 3, 1, 1)) * x).sum(dims),
        rtol=1e-4,
        atol=1e-4,
    )
    # Keras's moving averages, from zeros and ones, by the biased variance
    torch.testing.assert_close(layer.moving_mean, 0.1 * x.mean(dims))
    torch.testing.assert_close(layer.moving_variance, 0.9 + 0.1 * x.var(dims, unbiased=False))


def test_batch_normalization_in_evaluation_uses_the_moving_averages_and_keeps_them() -> None:
    built = build((2,), type="batch_normalization", momentum=0.5)
    run(built, X, training=True)  # moving mean (1.25, 10), variance (1.125, 50.5)
    out = run(built, X)
    expected = (X - torch.tensor([1.25, 10.0])) / torch.sqrt(torch.tensor([1.125, 50.5]) + 1e-3)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(built.module.moving_mean, torch.tensor([1.25, 10.0]))


@pytest.mark.parametrize("shape", [(3,), (5, 3), (4, 5, 3)])
def test_batch_normalization_normalizes_each_channel_over_batch_and_positions(shape) -> None:
    torch.manual_seed(0)
    x = torch.randn(6, *shape) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([0.0, 3.0, -2.0])
    built = build(shape, type="batch_normalization", epsilon=1e-5)
    out = run(built, x, training=True)
    dims = tuple(range(x.dim() - 1))
    expected = (x - x.mean(dims)) / torch.sqrt(x.var(dims, unbiased=False) + 1e-5)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert built.output_shape == shape


def test_batch_normalization_on_a_non_last_axis() -> None:
    x = torch.randn(4, 3, 5)
    built = build((3, 5), type="batch_normalization", axis=1)
    assert trainable(built) == 6
    out = run(built, x, training=True)
    mean = x.mean((0, 2), keepdim=True)
    var = x.var((0, 2), unbiased=False, keepdim=True)
    torch.testing.assert_close(out, (x - mean) / torch.sqrt(var + 1e-3))


def test_batch_normalization_parameters_are_keras_gamma_and_beta() -> None:
    built = build((8, 8, 32), type="batch_normalization")
    layer = built.module
    assert trainable(built) == 64  # Keras: 128 params, of which 64 trainable
    assert sum(b.numel() for b in layer.buffers()) == 64  # moving mean and variance
    assert set(layer.state_dict()) == {"gamma", "beta", "moving_mean", "moving_variance"}
    assert built.initializers == [
        (layer.gamma, "ones"),
        (layer.beta, "zeros"),
        (layer.moving_mean, "zeros"),
        (layer.moving_variance, "ones"),
    ]
    assert trainable(build((32,), type="batch_normalization", center=False)) == 32
    assert trainable(build((32,), type="batch_normalization", center=False, scale=False)) == 0


def test_gamma_and_beta_options_reach_the_network() -> None:
    built = build(
        (4,),
        type="batch_normalization",
        gamma_initializer="zeros",
        beta_regularizer={"l1": 0.1},
        gamma_constraint={"type": "unit_norm"},
    )
    layer = built.module
    assert built.initializers[:2] == [(layer.gamma, "zeros"), (layer.beta, "zeros")]
    assert [(p is layer.beta, r.l1) for p, r in built.penalties] == [(True, 0.1)]
    assert [p is layer.gamma for p, _ in built.constraints] == [True]


def test_layer_normalization_normalizes_each_sample_over_its_last_axis() -> None:
    built = build((4,), type="layer_normalization")
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 50.0]])
    out = run(built, x, training=True)
    first = (x[0] - 2.5) / math.sqrt(1.25 + 1e-3)
    second = (x[1] - 20.0) / math.sqrt(300.0 + 1e-3)
    torch.testing.assert_close(out, torch.stack([first, second]))
    torch.testing.assert_close(run(built, x), out)  # no batch statistics: same in evaluation
    assert trainable(built) == 8


def test_layer_normalization_over_several_axes_and_its_scale() -> None:
    x = torch.randn(3, 2, 4)
    built = build((2, 4), type="layer_normalization", axis=[1, 2], center=False)
    assert trainable(built) == 8  # gamma over (2, 4); no beta
    with torch.no_grad():
        built.module.gamma.copy_(torch.arange(8.0))
    out = run(built, x)
    mean = x.mean((1, 2), keepdim=True)
    var = x.var((1, 2), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-3) * torch.arange(8.0).reshape(2, 4)
    torch.testing.assert_close(out, expected)


def test_normalization_axes_must_exist_and_not_be_the_batch() -> None:
    with pytest.raises(LayerShapeError, match=r"non-batch axis of its input \(5, 3\).*axis=3"):
        build((5, 3), type="batch_normalization", axis=3)
    with pytest.raises(LayerShapeError, match="axis=-3"):
        build((5, 3), type="layer_normalization", axis=-3)
    with pytest.raises(ValidationError, match="non-batch axes"):
        spec(type="layer_normalization", axis=0)


def test_rescaling_scales_then_offsets() -> None:
    built = build((2, 2, 1), type="Rescaling", scale=1 / 255)
    x = torch.tensor([0.0, 51.0, 255.0, 127.5]).reshape(1, 2, 2, 1)
    torch.testing.assert_close(run(built, x).flatten(), torch.tensor([0.0, 0.2, 1.0, 0.5]))
    centered = build((3,), type="rescaling", scale=1 / 127.5, offset=-1)
    out = run(centered, torch.tensor([[0.0, 127.5, 255.0]]))
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0, 1.0]]))
    assert trainable(built) == 0 and built.output_shape == (2, 2, 1)


def test_leaky_relu_layer() -> None:
    x = torch.tensor([[-10.0, -5.0, 0.0, 5.0, 10.0]])
    assert run(build((5,), type="leaky_relu"), x).tolist() == [[-3.0, -1.5, 0.0, 5.0, 10.0]]
    half = build((5,), type="LeakyReLU", negative_slope=0.5)  # Keras's docstring example
    assert run(half, x).tolist() == [[-5.0, -2.5, 0.0, 5.0, 10.0]]
    with pytest.raises(ValidationError):
        spec(type="leaky_relu", negative_slope=-0.1)
