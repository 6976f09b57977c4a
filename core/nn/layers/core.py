"""Builders of the core layers: dense, dropout, flatten, activation."""

from __future__ import annotations

import math

from torch import nn

from core.nn.dropout import Dropout
from core.nn.layers.base import LAYERS, Built, Shape, flat, with_kernel
from core.spec.layers import core as L


@LAYERS.register("dense")
def dense(spec: L.Dense, shape: Shape) -> Built:
    linear = nn.Linear(flat(shape), spec.units, bias=spec.use_bias)
    return with_kernel(
        Built(linear, (spec.units,), spec.activation), spec, linear.weight, linear.bias
    )


@LAYERS.register("dropout")
def dropout(spec: L.Dropout, shape: Shape) -> Built:
    return Built(Dropout(spec.rate), shape)


@LAYERS.register("flatten")
def flatten(spec: L.Flatten, shape: Shape) -> Built:
    return Built(nn.Flatten(), (math.prod(shape),))


@LAYERS.register("activation")
def activation(spec: L.Activation, shape: Shape) -> Built:
    return Built(None, shape, spec.activation)
