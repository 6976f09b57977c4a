"""Image augmentation: the identity in evaluation; in training, per-image random flips, and
translations, rotations and zooms in Keras's directions, fill modes and centers."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from core.nn.layers import LayerShapeError
from tests.core.layers.build import build, run, spec, trainable

LAYERS = [
    {"type": "random_flip"},
    {"type": "random_translation", "height_factor": 0.2, "width_factor": 0.2},
    {"type": "random_rotation", "factor": 0.2},
    {"type": "random_zoom", "height_factor": 0.3},
]


def image(height: int, width: int) -> torch.Tensor:
    """A batch of one (height, width, 2) image: channel 0 = 10·row + column, channel 1 = -it."""
    plane = (10 * torch.arange(height)[:, None] + torch.arange(width)).float()
    return torch.stack([plane, -plane], -1)[None]


@pytest.mark.parametrize("fields", LAYERS, ids=lambda f: f["type"])
def test_identity_in_evaluation_and_a_change_in_training(fields) -> None:
    torch.manual_seed(0)
    built = build((8, 8, 3), **fields)
    x = torch.rand(16, 8, 8, 3)
    assert torch.equal(run(built, x), x)
    out = run(built, x, training=True)
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert built.output_shape == (8, 8, 3) and trainable(built) == 0


@pytest.mark.parametrize("fields", LAYERS, ids=lambda f: f["type"])
def test_a_seed_reproduces_the_draws_and_each_image_gets_its_own(fields) -> None:
    built = build((6, 6, 1), **fields)
    x = torch.rand(1, 6, 6, 1).expand(32, 6, 6, 1)  # 32 copies of one image
    torch.manual_seed(1)
    first = run(built, x, training=True)
    torch.manual_seed(1)
    assert torch.equal(run(built, x, training=True), first)
    assert len({tuple(img.flatten().tolist()) for img in first}) > 1


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("horizontal", lambda x: [x, x.flip(1)]),
        ("vertical", lambda x: [x, x.flip(0)]),
        ("horizontal_and_vertical", lambda x: [x, x.flip(1), x.flip(0), x.flip(0).flip(1)]),
    ],
)
def test_flips_are_exact_and_every_choice_occurs(mode, options) -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 3, 4, 2)
    out = run(build((3, 4, 2), type="RandomFlip", mode=mode), x, training=True)
    seen = set()
    for original, flipped in zip(x, out, strict=True):
        matches = [i for i, o in enumerate(options(original)) if torch.equal(flipped, o)]
        assert matches
        seen.add(matches[0])
    assert seen == set(range(len(options(x[0]))))


def test_keras_default_flip_mode_is_both() -> None:
    assert spec(type="random_flip").mode == "horizontal_and_vertical"


def test_a_quarter_turn_rotates_counter_clockwise() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    left = build((2, 2, 1), type="random_rotation", factor=(0.25, 0.25))
    assert run(left, x, training=True).flatten().round().tolist() == [2.0, 4.0, 1.0, 3.0]
    x = image(5, 5)
    out = run(left, x, training=True)
    torch.testing.assert_close(out, torch.rot90(x, 1, dims=(1, 2)), atol=1e-4, rtol=0)
    right = build((5, 5, 2), type="random_rotation", factor=(-0.25, -0.25))
    out = run(right, x, training=True)
    torch.testing.assert_close(out, torch.rot90(x, -1, dims=(1, 2)), atol=1e-4, rtol=0)


def test_translation_shifts_down_and_right_by_a_fraction_of_the_size() -> None:
    x = image(4, 5)
    down = build(
        (4, 5, 2),
        type="random_translation",
        height_factor=(0.25, 0.25),  # one row down
        width_factor=(-0.4, -0.4),  # two columns left
        fill_mode="constant",
        fill_value=-1.0,
    )
    out = run(down, x, training=True)[0, ..., 0]
    expected = torch.full((4, 5), -1.0)
    expected[1:, :3] = x[0, :3, 2:, 0]
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("fill_mode", "rows"),
    [("reflect", [1, 0, 0, 1]), ("nearest", [0, 0, 0, 1]), ("constant", [None, None, 0, 1])],
)
def test_fill_modes_follow_keras(fill_mode, rows) -> None:
    # Two rows down on a 4-row image: the two top rows come from outside the image.
    # reflect: (d c b a | a b c d), nearest: (a a | a b c d), constant: fill_value 0.
    x = image(4, 3)
    built = build(
        (4, 3, 2),
        type="random_translation",
        height_factor=(0.5, 0.5),
        width_factor=0.0,
        fill_mode=fill_mode,
    )
    out = run(built, x, training=True)[0, ..., 0]
    expected = torch.stack([x[0, r, :, 0] if r is not None else torch.zeros(3) for r in rows])
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_zoom_in_about_the_center_keeps_the_aspect_ratio_by_default() -> None:
    # Factor -0.5: zoom 0.5, so output pixel p samples the input at c + 0.5 · (p - c), with
    # c = 1.5 the center of 4 pixels: 0.75, 1.25, 1.75, 2.25 (bilinear on a linear ramp).
    x = image(4, 4)
    built = build((4, 4, 2), type="random_zoom", height_factor=(-0.5, -0.5))
    out = run(built, x, training=True)[0, ..., 0]
    at = torch.tensor([0.75, 1.25, 1.75, 2.25])
    torch.testing.assert_close(out, 10 * at[:, None] + at, atol=1e-4, rtol=0)

    # Width factor 1: zoom 2 in width only; columns sample x = -1.5, 0.5, 2.5, 4.5, the outer
    # two wholly outside the image (constant fill 0).
    wide = build(
        (4, 4, 2),
        type="random_zoom",
        height_factor=0.0,
        width_factor=(1.0, 1.0),
        fill_mode="constant",
    )
    out = run(wide, x, training=True)[0, ..., 0]
    rows = 10 * torch.arange(4.0)[:, None]
    expected = torch.cat([torch.zeros(4, 1), rows + 0.5, rows + 2.5, torch.zeros(4, 1)], 1)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_augmentation_needs_images() -> None:
    with pytest.raises(LayerShapeError) as e:
        build((28, 28), type="random_flip")
    assert str(e.value) == (
        "expects an input of rank 3 (height, width, channels) but gets (28, 28): "
        "add a reshape layer"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "random_rotation", "factor": 1.5},
        {"type": "random_zoom", "height_factor": (-2.0, 0.1)},
        {"type": "random_translation", "height_factor": 0.1},
        {"type": "random_flip", "mode": "diagonal"},
        {"type": "random_rotation", "factor": 0.1, "fill_mode": "wrap"},
    ],
)
def test_bad_arguments_are_refused_at_submission(fields) -> None:
    with pytest.raises(ValidationError):
        spec(**fields)
