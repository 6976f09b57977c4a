"""embedding: float token ids looked up in a Keras-shaped table, Keras's parameter count,
fans and default initializer."""

from __future__ import annotations

import pytest
import torch

from core.nn.initializers import fans
from core.nn.network import build_network
from core.spec.job import ModelSpec
from tests.core.layers.build import build, run, spec, trainable


def test_ids_become_vectors_of_the_keras_table() -> None:
    built = build((3,), type="Embedding", input_dim=5, output_dim=2)
    table = torch.arange(10.0).reshape(5, 2)  # Keras's layout: (input_dim, output_dim)
    with torch.no_grad():
        built.module.weight.copy_(table.t())
    ids = torch.tensor([[0.0, 4.0, 1.0], [2.0, 2.0, 3.0]])  # ids arrive as floats
    out = run(built, ids)
    assert built.output_shape == (3, 2)
    assert out.tolist() == [
        [[0.0, 1.0], [8.0, 9.0], [2.0, 3.0]],
        [[4.0, 5.0], [4.0, 5.0], [6.0, 7.0]],
    ]


def test_any_input_shape_gains_an_output_axis() -> None:
    built = build((4, 6), type="embedding", input_dim=10, output_dim=3)
    assert built.output_shape == (4, 6, 3)
    assert run(built, torch.randint(0, 10, (2, 4, 6)).float()).shape == (2, 4, 6, 3)


def test_parameter_count_fans_and_options_are_keras() -> None:
    built = build(
        (20,),
        type="embedding",
        input_dim=1000,
        output_dim=64,
        embeddings_regularizer={"l2": 0.001},
        embeddings_constraint={"type": "max_norm", "max_value": 3},
    )
    weight = built.module.weight
    assert trainable(built) == 64_000
    assert fans(weight.shape) == (1000, 64)  # Keras: fan_in = input_dim, fan_out = output_dim
    assert built.initializers == [(weight, "random_uniform")]
    assert [p is weight for p, _ in built.penalties] == [True]
    assert [c.max_value for _, c in built.constraints] == [3]
    assert spec(type="embedding", input_dim=3, output_dim=2).embeddings_initializer == (
        "random_uniform"
    )


def test_gradients_reach_only_the_looked_up_rows() -> None:
    built = build((2,), type="embedding", input_dim=4, output_dim=3)
    built.module.train()
    built.module(torch.tensor([[1.0, 3.0]])).sum().backward()
    rows_touched = built.module.weight.grad.t().abs().sum(1) > 0
    assert rows_touched.tolist() == [False, True, False, True]


def test_default_initialization_is_keras_uniform() -> None:
    torch.manual_seed(0)
    net = build_network(
        ModelSpec.model_validate(
            {"layers": [{"type": "embedding", "input_dim": 500, "output_dim": 40}]}
        ),
        (3,),
    )
    net.initialize()
    weight = net.body[0].weight
    assert weight.abs().max() <= 0.05
    assert weight.abs().max() > 0.049
    assert weight.var().item() == pytest.approx(0.1**2 / 12, rel=0.05)
