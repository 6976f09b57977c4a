"""Builders of the regularization layers beyond dropout: spatial dropout, Gaussian noise and
dropout (all active in training only), and activity regularization."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.nn.layers.base import LAYERS, Built, Shape
from core.nn.layers.conv import check_rank
from core.spec.layers import regularization as L
from core.spec.regularizers import L1L2


class SpatialDropout(nn.Module):
    """Zeroes whole channels (the last axis; the second after `channels_first()`) with
    probability `rate` (one draw per sample and channel) and scales the rest by
    1 / (1 - rate), as Keras does."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate
        self.first = False

    def channels_first(self) -> SpatialDropout:
        self.first = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        ones = (1,) * (x.dim() - 2)
        shape = (*x.shape[:2], *ones) if self.first else (x.shape[0], *ones, x.shape[-1])
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.rate)
        return x * keep / (1 - self.rate)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


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
    return Built(SpatialDropout(spec.rate), shape)


@LAYERS.register("spatial_dropout2d")
def spatial_dropout2d(spec: L.SpatialDropout2D, shape: Shape) -> Built:
    check_rank(shape, 2)
    return Built(SpatialDropout(spec.rate), shape)


@LAYERS.register("gaussian_noise")
def gaussian_noise(spec: L.GaussianNoise, shape: Shape) -> Built:
    return Built(GaussianNoise(spec.stddev), shape)


@LAYERS.register("gaussian_dropout")
def gaussian_dropout(spec: L.GaussianDropout, shape: Shape) -> Built:
    return Built(GaussianDropout(spec.rate), shape)


@LAYERS.register("activity_regularization")
def activity_regularization(spec: L.ActivityRegularization, shape: Shape) -> Built:
    return Built(None, shape, activity=L1L2(l1=spec.l1, l2=spec.l2))
