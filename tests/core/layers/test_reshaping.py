"""reshape: Keras's row-major order on channels-last tensors, -1 inference, clear errors."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from core.nn.layers import LayerShapeError
from tests.core.layers.build import build, run, spec


def test_reshape_is_row_major_per_sample() -> None:
    built = build((6,), type="reshape", target_shape=(2, 3))
    x = torch.stack([torch.arange(6.0), torch.arange(6.0) + 10])
    assert built.output_shape == (2, 3)
    assert run(built, x).tolist() == [
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
        [[10.0, 11.0, 12.0], [13.0, 14.0, 15.0]],
    ]


def test_reshaping_an_image_to_a_sequence_keeps_each_pixels_channels_together() -> None:
    # (h=2, w=2, c=3) → (4, 3): the pixels in row-major order, each with its channels, as
    # Keras's Reshape((-1, 3)) gives on a channels-last image.
    x = torch.arange(12.0).reshape(1, 2, 2, 3)
    built = build((2, 2, 3), type="Reshape", target_shape=[-1, 3])
    assert built.output_shape == (4, 3)
    out = run(built, x)[0]
    for row, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        assert out[row].tolist() == x[0, i, j].tolist()


@pytest.mark.parametrize(
    ("shape", "target", "out"),
    [((4, 4, 2), (-1, 2), (16, 2)), ((4, 4, 2), (-1,), (32,)), ((784,), (28, 28, 1), (28, 28, 1))],
)
def test_minus_one_is_inferred(shape, target, out) -> None:
    built = build(shape, type="reshape", target_shape=target)
    assert built.output_shape == out
    assert run(built, torch.zeros(2, *shape)).shape == (2, *out)


def test_sizes_that_do_not_match_are_refused_with_both_counts() -> None:
    with pytest.raises(LayerShapeError) as e:
        build((6,), type="reshape", target_shape=(4,))
    assert str(e.value) == "cannot reshape an input of shape (6,) (6 values) into (4,) (4 values)"
    with pytest.raises(LayerShapeError, match="7 is not a multiple of 2"):
        build((7,), type="reshape", target_shape=(-1, 2))


@pytest.mark.parametrize("target", [(-1, -1), (0, 4), (-2, 3), ()])
def test_bad_target_shapes_are_refused_at_submission(target) -> None:
    with pytest.raises(ValidationError, match="target_shape"):
        spec(type="reshape", target_shape=target)
