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
    pass


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


def activation_module(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()


def flat(shape: Shape) -> int:
    if len(shape) != 1:
        raise LayerShapeError(f"expects a flat input but gets {shape}: add a flatten layer")
    return shape[0]


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
    built.activity = spec.activity_regularizer
    return built
