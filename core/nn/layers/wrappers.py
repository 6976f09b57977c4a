"""Builders of the layer wrappers: bidirectional and time_distributed.

A wrapper builds its inner layer with that layer's own builder and keeps everything the
network would have added around it (the activation, the activity penalty) inside itself; the
inner layer's initializers, weight penalties and constraints are passed on in its `Built`.
"""

from __future__ import annotations

import torch
from torch import nn

from core.nn.layers.base import (
    LAYERS,
    Built,
    LayerShapeError,
    Shape,
    activation_module,
    build_layer,
)
from core.nn.regularization import ActivityPenalty
from core.spec.layers import wrappers as L


def as_module(built: Built) -> nn.Module:
    """The inner layer as one module, chained as the network chains a layer: the layer's module,
    its activation, then its activity penalty."""
    parts: list[nn.Module] = [] if built.module is None else [built.module]
    if built.activation != "linear":
        parts.append(activation_module(built.activation))
    if built.activity is not None:
        parts.append(ActivityPenalty(built.activity))
    if not parts:
        return nn.Identity()
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


def wrapping(module: nn.Module, output_shape: Shape, *inner: Built) -> Built:
    built = Built(module, output_shape)
    for part in inner:
        built.initializers += part.initializers
        built.penalties += part.penalties
        built.constraints += part.constraints
    return built


class TimeDistributed(nn.Module):
    """Applies `layer` to every time step by folding the steps into the batch."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps = x.shape[:2]
        return self.layer(x.flatten(0, 1)).unflatten(0, (batch, steps))


class Bidirectional(nn.Module):
    """Runs a forward and a backward (go_backwards) layer on the same input and merges them."""

    def __init__(
        self,
        forward_layer: nn.Module,
        backward_layer: nn.Module,
        merge_mode: str,
        return_sequences: bool,
    ):
        super().__init__()
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.forward_layer(x)
        y_rev = self.backward_layer(x)
        if self.return_sequences:  # the backward layer's step t read input step T-1-t
            y_rev = y_rev.flip(1)
        if self.merge_mode == "concat":
            return torch.cat([y, y_rev], dim=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "mul":
            return y * y_rev
        return (y + y_rev) / 2  # "ave"

    def extra_repr(self) -> str:
        return f"merge_mode={self.merge_mode!r}"


@LAYERS.register("time_distributed")
def time_distributed(spec: L.TimeDistributed, shape: Shape) -> Built:
    if len(shape) < 2:
        raise LayerShapeError(
            f"expects inputs with a time axis, (steps, *step_shape), but gets {shape}"
        )
    steps, step_shape = shape[0], shape[1:]
    inner = spec.layer
    try:
        built = build_layer(inner, step_shape)
    except LayerShapeError as e:
        raise LayerShapeError(
            f"applies {inner.type} to each time step, of shape {step_shape}, and {inner.type} {e}"
        ) from None
    return wrapping(TimeDistributed(as_module(built)), (steps, *built.output_shape), built)


@LAYERS.register("bidirectional")
def bidirectional(spec: L.Bidirectional, shape: Shape) -> Built:
    forward = build_layer(spec.layer, shape)
    back = spec.backward_layer or spec.layer.model_copy(update={"go_backwards": True})
    backward = build_layer(back, shape)
    output = forward.output_shape
    if spec.merge_mode == "concat":
        output = (*output[:-1], output[-1] + backward.output_shape[-1])
    elif backward.output_shape != output:
        raise LayerShapeError(
            f"merges its two directions with {spec.merge_mode!r}, which needs outputs of one "
            f"shape, but gets {output} and {backward.output_shape}: use merge_mode 'concat'",
            "backward_layer",
        )
    module = Bidirectional(
        as_module(forward), as_module(backward), spec.merge_mode, spec.layer.return_sequences
    )
    return wrapping(module, output, forward, backward)
