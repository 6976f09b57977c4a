"""Layer builders: from a layer spec and its input shape to a module and its output shape.

Shapes exclude the batch dimension and are channels-last, as in Keras. A builder raises
`LayerShapeError` when its input cannot work; the network builder names the layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from core.nn.activations import ACTIVATIONS
from core.registry import Registry
from core.spec import layers as L

Shape = tuple[int, ...]


class LayerShapeError(ValueError):
    pass


@dataclass
class Built:
    module: nn.Module | None  # None: the layer is the identity (e.g. a linear activation)
    output_shape: Shape
    activation: str = "linear"  # applied after `module`; kept apart so logits stay reachable
    initializers: list[tuple[nn.Parameter, str]] = field(default_factory=list)


Builder = Callable[[Any, Shape], Built]
LAYERS: Registry[Builder] = Registry("layer")


def _flat(shape: Shape) -> int:
    if len(shape) != 1:
        raise LayerShapeError(f"expects a flat input but gets {shape}: add a flatten layer")
    return shape[0]


@LAYERS.register("dense")
def dense(spec: L.Dense, shape: Shape) -> Built:
    linear = nn.Linear(_flat(shape), spec.units, bias=spec.use_bias)
    inits = [(linear.weight, spec.kernel_initializer)]
    if linear.bias is not None:
        inits.append((linear.bias, spec.bias_initializer))
    return Built(linear, (spec.units,), spec.activation, inits)


@LAYERS.register("dropout")
def dropout(spec: L.Dropout, shape: Shape) -> Built:
    return Built(nn.Dropout(spec.rate), shape)


@LAYERS.register("flatten")
def flatten(spec: L.Flatten, shape: Shape) -> Built:
    return Built(nn.Flatten(), (math.prod(shape),))


@LAYERS.register("activation")
def activation(spec: L.Activation, shape: Shape) -> Built:
    return Built(None, shape, spec.activation)


def activation_module(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()
