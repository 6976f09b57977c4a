"""Spatial dropout, Gaussian noise and dropout (training only), activity regularization."""

from __future__ import annotations

import math

import pytest
import torch

from core.nn.layers import LayerShapeError
from core.nn.network import build_network
from core.spec.job import ModelSpec
from tests.core.layers.build import build, run


@pytest.mark.parametrize(
    ("layer", "shape"), [("spatial_dropout2d", (4, 5, 16)), ("spatial_dropout1d", (6, 16))]
)
def test_spatial_dropout_zeroes_whole_channels_and_rescales_the_rest(layer, shape) -> None:
    torch.manual_seed(0)
    built = build(shape, type=layer, rate=0.5)
    x = torch.ones(8, *shape)
    out = run(built, x, training=True)
    per_channel = out.movedim(-1, 1).reshape(8, 16, -1)  # (sample, channel, positions)
    first = per_channel[..., :1]
    assert torch.equal(per_channel, first.expand_as(per_channel))  # one value per channel
    assert set(first.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-0.5)
    assert torch.equal(run(built, x), x)


def test_spatial_dropout_checks_the_rank() -> None:
    with pytest.raises(LayerShapeError, match=r"rank 3 \(height, width, channels\)"):
        build((10, 3), type="spatial_dropout2d", rate=0.1)
    with pytest.raises(LayerShapeError, match=r"rank 2 \(steps, channels\)"):
        build((10,), type="spatial_dropout1d", rate=0.1)


def test_gaussian_noise_adds_noise_of_stddev_in_training_only() -> None:
    torch.manual_seed(0)
    built = build((100_000,), type="gaussian_noise", stddev=0.3)
    x = torch.full((2, 100_000), 5.0)
    noise = run(built, x, training=True) - x
    assert noise.mean().item() == pytest.approx(0.0, abs=0.005)
    assert noise.std().item() == pytest.approx(0.3, rel=0.01)
    assert torch.equal(run(built, x), x)


def test_gaussian_dropout_multiplies_by_noise_around_one_in_training_only() -> None:
    torch.manual_seed(0)
    built = build((100_000,), type="gaussian_dropout", rate=0.2)
    x = torch.full((2, 100_000), 3.0)
    factor = run(built, x, training=True) / x
    assert factor.mean().item() == pytest.approx(1.0, abs=0.01)
    assert factor.std().item() == pytest.approx(math.sqrt(0.2 / 0.8), rel=0.01)  # 0.5
    assert torch.equal(run(built, x), x)


def test_activity_regularization_adds_its_penalty_on_the_input() -> None:
    net = build_network(
        ModelSpec.model_validate(
            {"layers": [{"type": "ActivityRegularization", "l1": 0.1, "l2": 0.01}]}
        ),
        (3,),
    )
    x = torch.tensor([[1.0, -2.0, 3.0], [0.0, 4.0, -1.0]])
    assert torch.equal(net(x), x)
    penalty = net.regularization_loss()
    assert penalty is not None
    assert penalty.item() == pytest.approx((0.1 * 11 + 0.01 * 31) / 2)  # per sample, as Keras
    assert net.layer_summaries[0].output_shape == (3,)
