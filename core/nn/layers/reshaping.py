"""Builder of the reshape layer (flatten is in `core.py`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.nn.layers.base import LAYERS, Built, LayerShapeError, Shape
from core.spec.layers import reshaping as L


class Reshape(nn.Module):
    """Row-major reshape of each sample, as Keras reshapes channels-last tensors."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def resolve(target: Shape, shape: Shape) -> Shape:
    """`target` with its -1 (if any) inferred from `shape`'s size."""
    size = math.prod(shape)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if size % known:
            raise LayerShapeError(
                f"cannot reshape an input of shape {shape} ({size} values) into "
                f"{target}: {size} is not a multiple of {known}"
            )
        return tuple(size // known if d == -1 else d for d in target)
    if known != size:
        raise LayerShapeError(
            f"cannot reshape an input of shape {shape} ({size} values) into {target} "
            f"({known} values)"
        )
    return target


@LAYERS.register("reshape")
def reshape(spec: L.Reshape, shape: Shape) -> Built:
    out = resolve(spec.target_shape, shape)
    return Built(Reshape(out), out)
