"""Pooling: Keras's output shapes, values with "valid" and "same" padding (max pads with -inf,
average leaves padded cells out), global pooling and its keepdims."""

from __future__ import annotations

import pytest
import torch

from core.nn.layers import LayerShapeError
from tests.core.layers.build import build, run, trainable


def channels_last(*planes: list) -> torch.Tensor:
    """A batch of one channels-last input whose channels are the given planes."""
    return torch.stack([torch.as_tensor(p, dtype=torch.float32) for p in planes], -1)[None]


# (layer, input shape, pool_size, strides, padding) -> Keras's output shape
SHAPES = [
    ("max_pooling2d", (32, 32, 3), None, None, "valid", (16, 16, 3)),  # default pool (2, 2)
    ("max_pooling2d", (32, 32, 3), 3, 2, "valid", (15, 15, 3)),
    ("max_pooling2d", (32, 32, 3), 3, None, "same", (11, 11, 3)),
    ("average_pooling2d", (32, 32, 3), 3, 2, "same", (16, 16, 3)),
    ("average_pooling2d", (7, 9, 1), (2, 3), None, "valid", (3, 3, 1)),
    ("max_pooling2d", (7, 9, 1), (2, 3), (1, 2), "same", (7, 5, 1)),
    ("max_pooling1d", (10, 4), None, None, "valid", (5, 4)),
    ("average_pooling1d", (10, 4), 3, None, "same", (4, 4)),
    ("max_pooling1d", (10, 4), 4, 1, "valid", (7, 4)),
    ("average_pooling1d", (11, 2), 2, 3, "valid", (4, 2)),
]


@pytest.mark.parametrize(("layer", "shape", "pool", "strides", "padding", "out"), SHAPES)
def test_output_shape_is_keras_and_matches_the_tensor(
    layer, shape, pool, strides, padding, out
) -> None:
    fields = {"type": layer, "padding": padding, "strides": strides}
    if pool is not None:
        fields["pool_size"] = pool
    built = build(shape, **fields)
    assert built.output_shape == out
    assert run(built, torch.randn(2, *shape)).shape == (2, *out)
    assert trainable(built) == 0


def test_max_pooling_takes_each_windows_maximum_per_channel() -> None:
    plane = torch.arange(1.0, 17.0).reshape(4, 4)
    out = run(build((4, 4, 2), type="max_pooling2d"), channels_last(plane, -plane))
    assert out[0, ..., 0].tolist() == [[6.0, 8.0], [14.0, 16.0]]
    assert out[0, ..., 1].tolist() == [[-1.0, -3.0], [-9.0, -11.0]]


def test_max_pooling_same_padding_never_picks_the_padding() -> None:
    # 3x3 windows, stride 2 on 4x4: one padded row and column after the input (TensorFlow).
    # All values are negative, so a zero padding would win every edge window.
    plane = torch.arange(1.0, 17.0).reshape(4, 4) - 100
    built = build((4, 4, 1), type="max_pooling2d", pool_size=3, strides=2, padding="same")
    assert run(built, channels_last(plane))[0, ..., 0].tolist() == [[-89.0, -88.0], [-85.0, -84.0]]


def test_average_pooling_same_padding_leaves_padded_cells_out() -> None:
    built = build((5, 1), type="average_pooling1d", pool_size=2, padding="same")
    out = run(built, torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 5, 1))
    assert out.flatten().tolist() == [1.5, 3.5, 5.0]  # the last window holds 5 and padding

    plane = torch.arange(1.0, 10.0).reshape(3, 3)
    built = build((3, 3, 2), type="average_pooling2d", pool_size=2, padding="same")
    out = run(built, channels_last(plane, 10 * plane))
    assert out[0, ..., 0].tolist() == [[3.0, 4.5], [7.5, 9.0]]
    assert out[0, ..., 1].tolist() == [[30.0, 45.0], [75.0, 90.0]]

    # Stride 1, 3x3 windows: the corner averages its 4 real neighbours, the center all 9.
    built = build((3, 3, 1), type="average_pooling2d", pool_size=3, strides=1, padding="same")
    out = run(built, channels_last(plane))[0, ..., 0]
    expected = torch.tensor([[3.0, 3.5, 4.0], [4.5, 5.0, 5.5], [6.0, 6.5, 7.0]])
    torch.testing.assert_close(out, expected)


def test_average_pooling_valid_is_the_plain_mean() -> None:
    plane = torch.arange(1.0, 17.0).reshape(4, 4)
    out = run(build((4, 4, 1), type="average_pooling2d"), channels_last(plane))
    assert out[0, ..., 0].tolist() == [[3.5, 5.5], [11.5, 13.5]]


def test_global_pooling_reduces_every_axis_but_the_channels() -> None:
    plane = torch.arange(1.0, 13.0).reshape(3, 4)
    x = channels_last(plane, -plane)
    assert run(build((3, 4, 2), type="global_average_pooling2d"), x).tolist() == [[6.5, -6.5]]
    assert run(build((3, 4, 2), type="global_max_pooling2d"), x).tolist() == [[12.0, -1.0]]
    seq = channels_last([1.0, 5.0, 3.0], [2.0, 2.0, 8.0])  # (1, steps=3, channels=2)
    assert run(build((3, 2), type="global_average_pooling1d"), seq).tolist() == [[3.0, 4.0]]
    assert run(build((3, 2), type="global_max_pooling1d"), seq).tolist() == [[5.0, 8.0]]


@pytest.mark.parametrize(
    ("layer", "shape", "flat", "kept"),
    [
        ("global_average_pooling2d", (5, 6, 3), (3,), (1, 1, 3)),
        ("global_max_pooling2d", (5, 6, 3), (3,), (1, 1, 3)),
        ("global_average_pooling1d", (7, 4), (4,), (1, 4)),
        ("global_max_pooling1d", (7, 4), (4,), (1, 4)),
    ],
)
def test_global_pooling_shapes_with_and_without_keepdims(layer, shape, flat, kept) -> None:
    for keepdims, out in ((False, flat), (True, kept)):
        built = build(shape, type=layer, keepdims=keepdims)
        assert built.output_shape == out
        assert run(built, torch.randn(2, *shape)).shape == (2, *out)


def test_pooling_on_the_wrong_rank_says_to_reshape() -> None:
    with pytest.raises(LayerShapeError) as e:
        build((64,), type="max_pooling2d")
    assert str(e.value) == (
        "expects an input of rank 3 (height, width, channels) but gets (64,): add a reshape layer"
    )
    with pytest.raises(LayerShapeError, match=r"rank 2 \(steps, channels\)"):
        build((8, 8, 1), type="global_average_pooling1d")
    with pytest.raises(LayerShapeError, match="window"):
        build((2, 2, 1), type="max_pooling2d", pool_size=3)
