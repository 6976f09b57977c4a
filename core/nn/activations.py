"""Activation functions by Keras name (`keras.activations.get`). Each entry makes a fresh `nn.Module`.

Keras 3's definitions, which PyTorch's modules compute when given Keras's arguments:
leaky_relu has negative_slope 0.2 (PyTorch's default is 0.01), gelu is exact (erf, not tanh),
hard_sigmoid is relu6(x + 3) / 6 (Keras 2's was 0.2 · x + 0.5), swish and silu are both
x · sigmoid(x), and softmax and log_softmax act over the last axis.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from core.registry import Registry

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")


class Exponential(nn.Module):
    """Keras's `exponential`: exp(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)


ACTIVATIONS.register("linear")(nn.Identity)
ACTIVATIONS.register("sigmoid")(nn.Sigmoid)
ACTIVATIONS.register("tanh")(nn.Tanh)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("relu6")(nn.ReLU6)
ACTIVATIONS.register("leaky_relu")(partial(nn.LeakyReLU, negative_slope=0.2))
ACTIVATIONS.register("elu")(partial(nn.ELU, alpha=1.0))
ACTIVATIONS.register("selu")(nn.SELU)  # scale 1.0507009873554805, alpha 1.6732632423543772
ACTIVATIONS.register("gelu")(partial(nn.GELU, approximate="none"))
ACTIVATIONS.register("silu")(nn.SiLU)
ACTIVATIONS.register("swish")(nn.SiLU)
ACTIVATIONS.register("softplus")(nn.Softplus)
ACTIVATIONS.register("softsign")(nn.Softsign)
ACTIVATIONS.register("hard_sigmoid")(nn.Hardsigmoid)
ACTIVATIONS.register("hard_silu")(nn.Hardswish)
ACTIVATIONS.register("hard_swish")(nn.Hardswish)
ACTIVATIONS.register("mish")(nn.Mish)
ACTIVATIONS.register("exponential")(Exponential)
ACTIVATIONS.register("softmax")(partial(nn.Softmax, dim=-1))
ACTIVATIONS.register("log_softmax")(partial(nn.LogSoftmax, dim=-1))

# Output activations whose pre-activation values are logits: a cross-entropy loss is computed from
# them (stable log-sum-exp) instead of from the probabilities, as Keras does.
PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid"})
