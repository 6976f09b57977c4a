"""Builders of the core layers: input, dense, dropout, flatten, activation."""

from __future__ import annotations

import math

from torch import nn

from core.nn.dropout import Dropout
from core.nn.layers.base import LAYERS, Built, LayerShapeError, Shape, fits, with_kernel
from core.nn.layers.regularization import BroadcastDropout
from core.spec.layers import core as L


@LAYERS.register("input")
def input_layer(spec: L.Input, shape: Shape) -> Built:
    """No module: the data set's input shape checked against Keras's."""
    expected = spec.sample_shape()
    if not fits(expected, shape):
        argument = "shape" if spec.shape is not None else "batch_shape"
        written = expected if spec.shape is not None else (None, *expected)
        raise LayerShapeError(
            f"has {argument} {written} but the data set's inputs have shape {shape}", argument
        )
    return Built(None, shape)


@LAYERS.register("dense")
def dense(spec: L.Dense, shape: Shape) -> Built:
    """On the last axis, as Keras's Dense: (..., features) → (..., units)."""
    linear = nn.Linear(shape[-1], spec.units, bias=spec.use_bias)
    return with_kernel(
        Built(linear, (*shape[:-1], spec.units), spec.activation), spec, linear.weight, linear.bias
    )


def noise(spec: L.Dropout, shape: Shape) -> Shape | None:
    """Keras's `noise_shape` for inputs of `shape` (-1 for the input's size), or None when it
    draws one value per unit (plain dropout)."""
    if spec.noise_shape is None:
        return None
    sizes = (None, *shape)
    if len(spec.noise_shape) != len(sizes) or not all(
        n in (None, 1, s) for n, s in zip(spec.noise_shape, sizes, strict=True)
    ):
        raise LayerShapeError(
            f"has noise_shape {spec.noise_shape}, which does not broadcast to its input "
            f"(batch, *{shape}): expected {len(sizes)} entries, each null, 1 or the input's "
            "size (the batch's: null or 1)",
            "noise_shape",
        )
    resolved = tuple(
        -1 if n in (None, s) else n for n, s in zip(spec.noise_shape, sizes, strict=True)
    )
    return None if all(n == -1 for n in resolved) else resolved


@LAYERS.register("dropout")
def dropout(spec: L.Dropout, shape: Shape) -> Built:
    mask = noise(spec, shape)
    if mask is None:
        return Built(Dropout(spec.rate), shape)
    return Built(BroadcastDropout(spec.rate, mask), shape)


@LAYERS.register("flatten")
def flatten(spec: L.Flatten, shape: Shape) -> Built:
    return Built(nn.Flatten(), (math.prod(shape),))


@LAYERS.register("activation")
def activation(spec: L.Activation, shape: Shape) -> Built:
    return Built(None, shape, spec.activation)
