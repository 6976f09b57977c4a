"""What a layer builder returns, the registry of builders, and shared helpers.

A builder takes a layer spec and its input shape (batch dimension excluded, channels-last as
in Keras) and returns a `Built`. It raises `LayerShapeError` when the input cannot work; the
network builder names the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from core.nn.activations import ACTIVATIONS
from core.registry import Registry
from core.spec.regularizers import L1L2

Shape = tuple[int, ...]


class LayerShapeError(ValueError):
    """The input cannot work with the layer; `argument`: the layer's argument at fault, if one."""

    def __init__(self, message: str, argument: str | None = None):
        super().__init__(message)
        self.argument = argument


@dataclass
class Built:
    module: nn.Module | None  # None: the layer is the identity (e.g. a linear activation)
    output_shape: Shape
    activation: str = "linear"  # applied after `module`; kept apart so logits stay reachable
    initializers: list[tuple[nn.Parameter, str]] = field(default_factory=list)
    penalties: list[tuple[nn.Parameter, L1L2]] = field(default_factory=list)  # weight regularizers
    constraints: list[tuple[nn.Parameter, Any]] = field(
        default_factory=list
    )  # (param, ConstraintSpec)
    activity: L1L2 | None = None  # penalty on the layer's output (after its activation)


Builder = Callable[[Any, Shape], Built]
LAYERS: Registry[Builder] = Registry("layer")


def fits(expected: tuple[int | None, ...], shape: Shape) -> bool:
    """Whether `shape` is Keras's `expected` shape, where null stands for any size."""
    return len(expected) == len(shape) and all(
        e in (None, s) for e, s in zip(expected, shape, strict=True)
    )


def build_layer(spec: Any, shape: Shape) -> Built:
    """The layer `spec` on inputs of `shape`, with what every Keras layer takes: its
    `input_shape` (or `input_dim`) checked against `shape`, and its `activity_regularizer`."""
    stated = spec.expected_input()
    if stated is not None and not fits(stated[1], shape):
        argument, expected = stated
        raise LayerShapeError(
            f"has {argument} {expected} but its input has shape {shape}", argument
        )
    built = LAYERS.get(spec.type)(spec, shape)
    if spec.activity_regularizer is not None:
        built.activity = spec.activity_regularizer
    if not spec.trainable:
        freeze(built)
    return built


def freeze(built: Built) -> None:
    """Keras's `trainable: false`: the weights keep their initial values. Their regularizers
    leave the loss (Keras 3 sums the penalties of its trainable weights only) and their
    constraints are not applied (Keras applies them to what the optimizer updates). The
    activity regularizer stays: Keras adds it whatever the layer's `trainable`."""
    if built.module is not None:
        for param in built.module.parameters():
            param.requires_grad_(False)
    built.penalties = []
    built.constraints = []


def activation_module(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()


def with_kernel(built: Built, spec: Any, kernel: nn.Parameter, bias: nn.Parameter | None) -> Built:
    """Fill in the initializers, regularizers and constraints of a kernel-and-bias layer from
    its spec's Keras options (`core.spec.layers.base.KernelOptions`)."""
    built.initializers.append((kernel, spec.kernel_initializer))
    if spec.kernel_regularizer is not None:
        built.penalties.append((kernel, spec.kernel_regularizer))
    if spec.kernel_constraint is not None:
        built.constraints.append((kernel, spec.kernel_constraint))
    if bias is not None:
        built.initializers.append((bias, spec.bias_initializer))
        if spec.bias_regularizer is not None:
            built.penalties.append((bias, spec.bias_regularizer))
        if spec.bias_constraint is not None:
            built.constraints.append((bias, spec.bias_constraint))
    return built
