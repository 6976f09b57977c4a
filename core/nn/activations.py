"""Activation functions by Keras name. Each entry makes a fresh `nn.Module`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from core.registry import Registry

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")

ACTIVATIONS.register("linear")(nn.Identity)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("sigmoid")(nn.Sigmoid)
ACTIVATIONS.register("tanh")(nn.Tanh)


@ACTIVATIONS.register("softmax")
def _softmax() -> nn.Module:
    return nn.Softmax(dim=-1)


# Output activations whose pre-activation values are logits: a cross-entropy loss is computed from
# them (stable log-sum-exp) instead of from the probabilities, as Keras does.
PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid"})
