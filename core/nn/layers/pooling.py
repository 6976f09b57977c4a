"""Builders of the pooling layers: max and average pooling over windows, and global pooling.

Windows, strides and "same" padding follow Keras (see `conv.py`). Max pooling pads with -inf so
padded cells never win; average pooling leaves padded cells out of each average, as Keras does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.nn.layers.base import LAYERS, Built, Shape
from core.nn.layers.conv import ChannelsLast, check_rank, symmetric, window_shape
from core.spec.layers import pooling as L
from core.spec.layers.conv import as_tuple

MAX_POOLS: dict[int, type[nn.Module]] = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
AVERAGE_POOLS: dict[int, Callable[..., torch.Tensor]] = {1: F.avg_pool1d, 2: F.avg_pool2d}

Pooling = L.MaxPooling1D | L.MaxPooling2D | L.AveragePooling1D | L.AveragePooling2D
GlobalPoolingSpec = (
    L.GlobalMaxPooling1D
    | L.GlobalMaxPooling2D
    | L.GlobalAveragePooling1D
    | L.GlobalAveragePooling2D
)


class AveragePooling(nn.Module):
    """Average pooling on channels-last tensors (channels-first after `channels_first()`); with
    padding, each window's sum is divided by the number of input cells it covers (padded cells
    excluded)."""

    def __init__(self, rank: int, window: Shape, strides: Shape, padding: Shape):
        super().__init__()
        self.pool = AVERAGE_POOLS[rank]
        self.window = window
        self.strides = strides
        self.padding = padding
        self.first = False

    def channels_first(self) -> AveragePooling:
        self.first = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.first:
            x = x.movedim(-1, 1)
        x = self._pool(x)
        return x if self.first else x.movedim(1, -1)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if not any(self.padding):
            return self.pool(x, self.window, self.strides)
        half = symmetric(self.padding)
        if half is not None:  # PyTorch pads and leaves the padded cells out of each average
            return self.pool(x, self.window, self.strides, half, count_include_pad=False)
        ones = x.new_ones((1, 1, *x.shape[2:]))
        sums = self.pool(F.pad(x, self.padding), self.window, self.strides)
        counts = self.pool(F.pad(ones, self.padding), self.window, self.strides)
        return sums / counts

    def extra_repr(self) -> str:
        return f"window={self.window}, strides={self.strides}, padding={self.padding}"


def pooling(spec: Pooling, shape: Shape, rank: int, average: bool) -> Built:
    check_rank(shape, rank)
    window = as_tuple(spec.pool_size, rank)
    strides = window if spec.strides is None else as_tuple(spec.strides, rank)
    out, padding = window_shape(shape, window, strides, (1,) * rank, spec.padding)
    if average:
        module: nn.Module = AveragePooling(rank, window, strides, padding)
    else:
        module = ChannelsLast(MAX_POOLS[rank](window, strides), padding, float("-inf"))
    return Built(module, (*out, shape[-1]))


@LAYERS.register("max_pooling1d")
def max_pooling1d(spec: L.MaxPooling1D, shape: Shape) -> Built:
    return pooling(spec, shape, 1, average=False)


@LAYERS.register("max_pooling2d")
def max_pooling2d(spec: L.MaxPooling2D, shape: Shape) -> Built:
    return pooling(spec, shape, 2, average=False)


@LAYERS.register("average_pooling1d")
def average_pooling1d(spec: L.AveragePooling1D, shape: Shape) -> Built:
    return pooling(spec, shape, 1, average=True)


@LAYERS.register("average_pooling2d")
def average_pooling2d(spec: L.AveragePooling2D, shape: Shape) -> Built:
    return pooling(spec, shape, 2, average=True)


class GlobalPooling(nn.Module):
    """Max or mean over every axis but the batch and the channel axis (the last; the second
    after `channels_first()`)."""

    def __init__(self, reduce: Callable[..., torch.Tensor], keepdims: bool):
        super().__init__()
        self.reduce = reduce
        self.keepdims = keepdims
        self.first = False

    def channels_first(self) -> GlobalPooling:
        self.first = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = range(2, x.dim()) if self.first else range(1, x.dim() - 1)
        return self.reduce(x, dim=tuple(axes), keepdim=self.keepdims)


def global_pooling(
    spec: GlobalPoolingSpec, shape: Shape, rank: int, reduce: Callable[..., torch.Tensor]
) -> Built:
    check_rank(shape, rank)
    out = (*(1,) * rank, shape[-1]) if spec.keepdims else (shape[-1],)
    return Built(GlobalPooling(reduce, spec.keepdims), out)


@LAYERS.register("global_max_pooling1d")
def global_max_pooling1d(spec: L.GlobalMaxPooling1D, shape: Shape) -> Built:
    return global_pooling(spec, shape, 1, torch.amax)


@LAYERS.register("global_max_pooling2d")
def global_max_pooling2d(spec: L.GlobalMaxPooling2D, shape: Shape) -> Built:
    return global_pooling(spec, shape, 2, torch.amax)


@LAYERS.register("global_average_pooling1d")
def global_average_pooling1d(spec: L.GlobalAveragePooling1D, shape: Shape) -> Built:
    return global_pooling(spec, shape, 1, torch.mean)


@LAYERS.register("global_average_pooling2d")
def global_average_pooling2d(spec: L.GlobalAveragePooling2D, shape: Shape) -> Built:
    return global_pooling(spec, shape, 2, torch.mean)
