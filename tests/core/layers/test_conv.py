"""conv1d / conv2d: Keras's output shapes, TensorFlow's "same" padding, channels-last
correlation, parameter counts, and the weight options wired to the network."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from core.nn.layers import LayerShapeError
from tests.core.layers.build import build, run, spec, trainable


def keras_kernel(built, kernel: torch.Tensor) -> None:
    """Load a kernel written in Keras's layout (*window, in, out) into the built layer."""
    conv = built.module.layer
    with torch.no_grad():
        conv.weight.copy_(kernel.permute(-1, -2, *range(kernel.dim() - 2)))
        if conv.bias is not None:
            conv.bias.zero_()


def correlate2d(x: torch.Tensor, kernel: torch.Tensor, stride: int) -> torch.Tensor:
    """Plain-loop reference: valid cross-correlation of one channels-last image (h, w, c) with a
    Keras kernel (kh, kw, c, f)."""
    kh, kw, _, filters = kernel.shape
    rows = (x.shape[0] - kh) // stride + 1
    cols = (x.shape[1] - kw) // stride + 1
    out = torch.zeros(rows, cols, filters, dtype=x.dtype)
    for i in range(rows):
        for j in range(cols):
            patch = x[i * stride : i * stride + kh, j * stride : j * stride + kw]
            for f in range(filters):
                out[i, j, f] = (patch * kernel[..., f]).sum()
    return out


# (input shape, kernel_size, strides, padding, dilation_rate) -> Keras's output shape
CONV2D_SHAPES = [
    ((28, 28, 1), 3, 1, "valid", 1, (26, 26)),
    ((28, 28, 1), 3, 1, "same", 1, (28, 28)),
    ((28, 28, 1), 3, 2, "valid", 1, (13, 13)),
    ((28, 28, 1), 3, 2, "same", 1, (14, 14)),
    ((7, 7, 2), 3, 2, "same", 1, (4, 4)),
    ((32, 32, 3), 5, 3, "valid", 1, (10, 10)),
    ((7, 9, 2), (3, 1), (2, 1), "valid", 1, (3, 9)),
    ((5, 8, 3), (2, 3), (1, 2), "same", 1, (5, 4)),
    ((10, 10, 1), 3, 1, "valid", 2, (6, 6)),
    ((10, 10, 1), 3, 1, "same", 2, (10, 10)),
    ((10, 12, 1), (3, 2), 1, "valid", (1, 3), (8, 9)),
]


@pytest.mark.parametrize(
    ("shape", "kernel", "strides", "padding", "dilation", "out"), CONV2D_SHAPES
)
def test_conv2d_output_shape_is_keras_and_matches_the_tensor(
    shape, kernel, strides, padding, dilation, out
) -> None:
    built = build(
        shape,
        type="conv2d",
        filters=4,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
    )
    assert built.output_shape == (*out, 4)
    assert run(built, torch.randn(2, *shape)).shape == (2, *out, 4)


CONV1D_SHAPES = [
    (3, 1, "valid", 1, 98),
    (5, 1, "valid", 1, 96),
    (5, 2, "same", 1, 50),
    (4, 3, "valid", 1, 33),
    (3, 1, "causal", 2, 100),
    (3, 3, "causal", 1, 34),
    (3, 1, "valid", 4, 92),
]


@pytest.mark.parametrize(("kernel", "strides", "padding", "dilation", "steps"), CONV1D_SHAPES)
def test_conv1d_output_shape_is_keras_and_matches_the_tensor(
    kernel, strides, padding, dilation, steps
) -> None:
    built = build(
        (100, 4),
        type="conv1d",
        filters=6,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
    )
    assert built.output_shape == (steps, 6)
    assert run(built, torch.randn(3, 100, 4)).shape == (3, steps, 6)


def test_same_padding_with_stride_two_pads_bottom_right_like_tensorflow() -> None:
    # 4x4 input, 3x3 window of ones, stride 2: 2x2 outputs need one padded row and column,
    # which TensorFlow (and so Keras) puts after the input, not before.
    built = build((4, 4, 1), type="conv2d", filters=1, kernel_size=3, strides=2, padding="same")
    keras_kernel(built, torch.ones(3, 3, 1, 1))
    x = torch.arange(1.0, 17.0).reshape(1, 4, 4, 1)
    out = run(built, x)[0, ..., 0]
    assert out.tolist() == [[54.0, 45.0], [72.0, 54.0]]


def test_conv2d_is_the_channels_last_cross_correlation_of_a_keras_kernel() -> None:
    torch.manual_seed(0)
    built = build((5, 6, 2), type="conv2d", filters=3, kernel_size=(3, 2), strides=2)
    kernel = torch.randn(3, 2, 2, 3)  # Keras layout (kh, kw, in, out)
    keras_kernel(built, kernel)
    x = torch.randn(2, 5, 6, 2)
    out = run(built, x)
    for b in range(2):
        assert torch.allclose(out[b], correlate2d(x[b], kernel, 2), atol=1e-5)


def test_causal_conv1d_sees_only_the_past() -> None:
    built = build((4, 1), type="conv1d", filters=1, kernel_size=3, padding="causal")
    keras_kernel(built, torch.tensor([1.0, 10.0, 100.0]).reshape(3, 1, 1))
    out = run(built, torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1))
    # y[t] = 1·x[t-2] + 10·x[t-1] + 100·x[t], zeros before the start
    assert out.flatten().tolist() == [100.0, 210.0, 321.0, 432.0]


@pytest.mark.parametrize(
    ("fields", "shape", "params"),
    [
        ({"type": "conv2d", "filters": 32, "kernel_size": 3}, (32, 32, 3), 896),
        ({"type": "conv2d", "filters": 64, "kernel_size": 3}, (15, 15, 32), 18_496),
        ({"type": "conv2d", "filters": 8, "kernel_size": 3, "use_bias": False}, (9, 9, 4), 288),
        ({"type": "conv2d", "filters": 8, "kernel_size": 3, "groups": 2}, (9, 9, 4), 152),
        ({"type": "conv1d", "filters": 16, "kernel_size": 5}, (50, 8), 656),
    ],
)
def test_parameter_counts_are_keras(fields, shape, params) -> None:
    assert trainable(build(shape, **fields)) == params


def test_kernel_options_reach_the_network() -> None:
    built = build(
        (8, 8, 3),
        type="conv2d",
        filters=4,
        kernel_size=3,
        activation="relu",
        kernel_initializer="he_uniform",
        kernel_regularizer={"l2": 0.01},
        bias_constraint={"type": "max_norm"},
    )
    conv = built.module.layer
    assert built.activation == "relu"
    assert built.initializers == [(conv.weight, "he_uniform"), (conv.bias, "zeros")]
    assert [(p is conv.weight, reg.l2) for p, reg in built.penalties] == [(True, 0.01)]
    assert [p is conv.bias for p, _ in built.constraints] == [True]


def test_keras_class_spelling_and_json_lists_are_accepted() -> None:
    layer = spec(type="Conv2D", filters=2, kernel_size=[3, 1], strides=[1, 2])
    assert (layer.type, layer.kernel_size, layer.strides) == ("conv2d", (3, 1), (1, 2))


def test_conv_on_a_flat_input_says_to_reshape() -> None:
    with pytest.raises(LayerShapeError) as e:
        build((64,), type="conv1d", filters=2, kernel_size=3)
    assert str(e.value) == (
        "expects an input of rank 2 (steps, channels) but gets (64,): add a reshape layer"
    )
    with pytest.raises(LayerShapeError, match=r"rank 3 \(height, width, channels\)"):
        build((28, 28), type="conv2d", filters=2, kernel_size=3)


def test_a_window_larger_than_the_input_is_refused() -> None:
    with pytest.raises(LayerShapeError, match=r"window \(5, 5\).*\(4, 4, 1\)"):
        build((4, 4, 1), type="conv2d", filters=2, kernel_size=5)
    assert build(
        (4, 4, 1), type="conv2d", filters=2, kernel_size=5, padding="same"
    ).output_shape == (
        4,
        4,
        2,
    )


def test_channels_must_divide_into_groups() -> None:
    with pytest.raises(LayerShapeError, match="divisible by groups=2 but gets 3 channels"):
        build((8, 8, 3), type="conv2d", filters=4, kernel_size=3, groups=2)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strides": 2, "dilation_rate": 2}, "strides > 1 is not supported together"),
        ({"filters": 5, "groups": 2}, "filters=5, groups=2"),
        ({"padding": "causal"}, "'valid' or 'same'"),
        ({"kernel_size": 0}, "greater than 0"),
    ],
)
def test_impossible_arguments_are_refused_at_submission(fields, message) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**{"type": "conv2d", "filters": 4, "kernel_size": 3, **fields})
