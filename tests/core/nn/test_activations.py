"""Activations against Keras 3's definitions (keras/src/activations/activations.py), written out."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from core.nn.activations import ACTIVATIONS, PROBABILITY_ACTIVATIONS

X = [-7.0, -4.0, -3.0, -1.5, -0.5, 0.0, 0.5, 1.5, 3.0, 4.0, 7.0]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log(1 + math.exp(x))


def hard_sigmoid(x: float) -> float:  # Keras 3: 0 below -3, 1 above 3, x / 6 + 0.5 between
    return 0.0 if x <= -3 else 1.0 if x >= 3 else x / 6 + 0.5


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

FORMULAS: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "sigmoid": sigmoid,
    "tanh": lambda x: (math.exp(x) - math.exp(-x)) / (math.exp(x) + math.exp(-x)),
    "relu": lambda x: max(x, 0.0),
    "relu6": lambda x: min(max(x, 0.0), 6.0),
    "leaky_relu": lambda x: x if x > 0 else 0.2 * x,  # keras.activations.leaky_relu's slope
    "elu": lambda x: x if x > 0 else 1.0 * (math.exp(x) - 1),
    "selu": lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * (math.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))),  # exact: approximate=False
    "silu": lambda x: x * sigmoid(x),
    "swish": lambda x: x * sigmoid(x),
    "softplus": softplus,
    "softsign": lambda x: x / (abs(x) + 1),
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": lambda x: x * hard_sigmoid(x),
    "hard_swish": lambda x: x * hard_sigmoid(x),
    "mish": lambda x: x * math.tanh(softplus(x)),
    "exponential": math.exp,
}


@pytest.mark.parametrize("name", FORMULAS)
def test_elementwise_activations_match_keras_formulas(name: str) -> None:
    x = torch.tensor(X, dtype=torch.float64)
    expected = torch.tensor([FORMULAS[name](v) for v in X], dtype=torch.float64)
    y = ACTIVATIONS.get(name)()(x)
    assert y.dtype == torch.float64
    assert torch.allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_keras_3_choices_that_differ_from_pytorch_or_keras_2() -> None:
    def at(name: str, v: float) -> float:
        return ACTIVATIONS.get(name)()(torch.tensor([v], dtype=torch.float64)).item()

    assert at("leaky_relu", -1.0) == pytest.approx(-0.2)  # PyTorch's default would give -0.01
    assert at("hard_sigmoid", 1.5) == pytest.approx(0.75)  # Keras 2's 0.2x + 0.5 gave 0.8
    tanh_gelu = 0.5 * 1.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1.5 + 0.044715 * 1.5**3)))
    assert abs(at("gelu", 1.5) - tanh_gelu) > 1e-4  # the erf form, not the tanh approximation


def test_softmax_and_log_softmax_act_over_the_last_axis() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]], dtype=torch.float64)
    rows = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in x.tolist()]
    expected = torch.tensor(rows, dtype=torch.float64)
    assert torch.allclose(ACTIVATIONS.get("softmax")()(x), expected, rtol=1e-12)
    assert torch.allclose(ACTIVATIONS.get("log_softmax")()(x), expected.log(), rtol=1e-12)
    images = torch.randn(2, 3, 4, 5)
    assert torch.allclose(ACTIVATIONS.get("softmax")()(images).sum(-1), torch.ones(2, 3, 4))


def test_the_names_are_keras_activation_names() -> None:
    assert set(ACTIVATIONS.names()) == {*FORMULAS, "softmax", "log_softmax"}
    assert sorted(PROBABILITY_ACTIVATIONS) == ["sigmoid", "softmax"]


def test_class_spellings_normalize() -> None:
    assert [
        ACTIVATIONS.canonical(n) for n in ["LeakyReLU", "ReLU6", "GELU", "HardSigmoid", "Softmax"]
    ] == ["leaky_relu", "relu6", "gelu", "hard_sigmoid", "softmax"]


def test_each_call_makes_a_fresh_module() -> None:
    make = ACTIVATIONS.get("leaky_relu")
    assert make() is not make()
