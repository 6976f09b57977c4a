"""Builders of the regularization layers beyond dropout: spatial dropout, Gaussian noise and
dropout (all active in training only), and activity regularization; and the dropout whose mask
is shared along some axes (Keras's `noise_shape`), which spatial dropout is."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.nn.layers.base import LAYERS, Built, Shape
from core.nn.layers.conv import check_rank
from core.spec.layers import regularization as L
from core.spec.regularizers import L1L2


class BroadcastDropout(nn.Module):
    """Keras's dropout with a `noise_shape`: one keep-or-drop draw per entry of the mask, of
    shape `noise` (Keras's layout, batch axis included; a 1 shares the draw along that axis,
    -1 takes the input's size), kept units scaled by 1 / (1 - rate). After `channels_first()`
    the mask's channel axis (the last) moves second, as the tensor's does."""

    def __init__(self, rate: float, noise: Shape):
        super().__init__()
        self.rate = rate
        self.noise = noise
        self.first = False

    def channels_first(self) -> BroadcastDropout:
        self.first = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        noise = (self.noise[0], self.noise[-1], *self.noise[1:-1]) if self.first else self.noise
        shape = [size if n == -1 else n for n, size in zip(noise, x.shape, strict=True)]
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.rate)
        return x * keep / (1 - self.rate)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, noise_shape={self.noise}"


def spatial(rate: float, shape: Shape) -> BroadcastDropout:
    """Spatial dropout: whole channels (the last axis) of each sample dropped."""
    return BroadcastDropout(rate, (-1, *(1,) * (len(shape) - 1), -1))


class GaussianNoise(nn.Module):
    def __init__(self, stddev: float):
        super().__init__()
        self.stddev = stddev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.stddev == 0:
            return x
        return x + torch.randn_like(x) * self.stddev

    def extra_repr(self) -> str:
        return f"stddev={self.stddev}"


class GaussianDropout(nn.Module):
    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        stddev = math.sqrt(self.rate / (1 - self.rate))
        return x * (1 + torch.randn_like(x) * stddev)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


@LAYERS.register("spatial_dropout1d")
def spatial_dropout1d(spec: L.SpatialDropout1D, shape: Shape) -> Built:
    check_rank(shape, 1)
    return Built(spatial(spec.rate, shape), shape)


@LAYERS.register("spatial_dropout2d")
def spatial_dropout2d(spec: L.SpatialDropout2D, shape: Shape) -> Built:
    check_rank(shape, 2)
    return Built(spatial(spec.rate, shape), shape)


@LAYERS.register("gaussian_noise")
def gaussian_noise(spec: L.GaussianNoise, shape: Shape) -> Built:
    return Built(GaussianNoise(spec.stddev), shape)


@LAYERS.register("gaussian_dropout")
def gaussian_dropout(spec: L.GaussianDropout, shape: Shape) -> Built:
    return Built(GaussianDropout(spec.rate), shape)


@LAYERS.register("activity_regularization")
def activity_regularization(spec: L.ActivityRegularization, shape: Shape) -> Built:
    return Built(None, shape, activity=L1L2(l1=spec.l1, l2=spec.l2))
