"""Builders of the layers that rescale values: batch and layer normalization (Keras's
arithmetic, on channels-last inputs of any rank), rescaling and leaky_relu."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.nn.layers.base import LAYERS, Built, LayerShapeError, Shape
from core.spec.layers import normalization as L

HALF = (torch.float16, torch.bfloat16)  # normalized in float32, as Keras does

Normalization = L.BatchNormalization | L.LayerNormalization


def batch_axis(axis: int, shape: Shape) -> int:
    """The index of Keras's `axis` (batch axis 0) in a batch of inputs of `shape`."""
    rank = len(shape) + 1
    index = axis + rank if axis < 0 else axis
    if not 1 <= index < rank:
        raise LayerShapeError(
            f"expects axis to name a non-batch axis of its input {shape} (1 to {rank - 1}, "
            f"or -1 to -{rank - 1}) but gets axis={axis}"
        )
    return index


class ScaleAndOffset(nn.Module):
    """The learned gamma and beta of a normalization layer, each optional."""

    def __init__(self, size: int, scale: bool, center: bool):
        super().__init__()
        self.register_parameter("gamma", nn.Parameter(torch.ones(size)) if scale else None)
        self.register_parameter("beta", nn.Parameter(torch.zeros(size)) if center else None)

    def affine(self, x: torch.Tensor, shape: list[int]) -> torch.Tensor:
        if self.gamma is not None:
            x = x * self.gamma.view(shape)
        if self.beta is not None:
            x = x + self.beta.view(shape)
        return x


class BatchNormalization(ScaleAndOffset):
    """Keras's BatchNormalization: batch statistics (biased variance) in training, which move
    the averages by `1 - momentum`; the moving averages otherwise, and always when the layer is
    frozen (Keras 3's trainable false runs it in inference mode)."""

    def __init__(self, channels: int, axis: int, spec: L.BatchNormalization):
        super().__init__(channels, spec.scale, spec.center)
        self.axis = axis
        self.momentum = spec.momentum
        self.epsilon = spec.epsilon
        self.frozen = not spec.trainable
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))

    def channels_first(self, rank: int) -> BatchNormalization:
        """On channels-first tensors of `rank` (batch axis included): the channel axis moves
        from last to second, the axes between move one place back."""
        self.axis = 1 if self.axis == rank - 1 else self.axis + (self.axis > 0)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        if dtype in HALF:
            x = x.float()
        if self.axis == 1 and x.numel() > x.shape[1]:
            # channels-first, or (batch, features): PyTorch's own kernel, which refuses one
            # value per channel (a batch of one sample) where Keras normalizes it to beta
            return self._native(x).to(dtype)
        shape = [1] * x.dim()
        shape[self.axis] = -1
        if self.training and not self.frozen:
            dims = [d for d in range(x.dim()) if d != self.axis]
            variance, mean = torch.var_mean(x, dim=dims, correction=0)
            with torch.no_grad():
                weight = 1.0 - self.momentum
                self.moving_mean.lerp_(mean.to(self.moving_mean.dtype), weight)
                self.moving_variance.lerp_(variance.to(self.moving_variance.dtype), weight)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        x = (x - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.epsilon)
        return self.affine(x, shape).to(dtype)

    def _native(self, x: torch.Tensor) -> torch.Tensor:
        """The same arithmetic in `F.batch_norm`'s single kernel (forward and backward). The
        kernel computes the batch statistics anyway: it hands them over through fresh running
        buffers moved by momentum 1 (the mean, and the unbiased variance, which Keras's biased
        one is (n - 1) / n of), and Keras's averages move from them. A separate `var_mean` over
        the batch and positions would cost more than the whole normalization."""
        if not self.training or self.frozen:
            mean, variance = self.moving_mean, self.moving_variance
            return F.batch_norm(x, mean, variance, self.gamma, self.beta, False, 0.0, self.epsilon)
        mean = torch.zeros_like(self.moving_mean, dtype=x.dtype)
        variance = torch.zeros_like(self.moving_variance, dtype=x.dtype)
        out = F.batch_norm(x, mean, variance, self.gamma, self.beta, True, 1.0, self.epsilon)
        n = x.numel() // x.shape[1]
        with torch.no_grad():
            weight = 1.0 - self.momentum
            self.moving_mean.lerp_(mean.to(self.moving_mean.dtype), weight)
            biased = variance * ((n - 1) / n)  # not in place: the backward reads `variance`
            self.moving_variance.lerp_(biased.to(self.moving_variance.dtype), weight)
        return out

    def extra_repr(self) -> str:
        return f"axis={self.axis}, momentum={self.momentum}, epsilon={self.epsilon}"


class LayerNormalization(ScaleAndOffset):
    """Keras's LayerNormalization: each sample normalized over `axes` (biased variance)."""

    def __init__(self, axes: tuple[int, ...], sizes: Shape, spec: L.LayerNormalization):
        super().__init__(math.prod(sizes), spec.scale, spec.center)
        self.axes = axes
        self.sizes = sizes
        self.epsilon = spec.epsilon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        if dtype in HALF:
            x = x.float()
        variance, mean = torch.var_mean(x, dim=self.axes, keepdim=True, correction=0)
        x = (x - mean) * torch.rsqrt(variance + self.epsilon)
        shape = [1] * x.dim()
        for axis, size in zip(self.axes, self.sizes, strict=True):
            shape[axis] = size
        return self.affine(x, shape).to(dtype)

    def extra_repr(self) -> str:
        return f"axes={self.axes}, epsilon={self.epsilon}"


def with_scale_and_offset(built: Built, spec: Normalization, layer: ScaleAndOffset) -> Built:
    """Fill in the initializers, regularizers and constraints of gamma and beta."""
    for param, initializer, regularizer, constraint in (
        (layer.gamma, spec.gamma_initializer, spec.gamma_regularizer, spec.gamma_constraint),
        (layer.beta, spec.beta_initializer, spec.beta_regularizer, spec.beta_constraint),
    ):
        if param is None:
            continue
        built.initializers.append((param, initializer))
        if regularizer is not None:
            built.penalties.append((param, regularizer))
        if constraint is not None:
            built.constraints.append((param, constraint))
    return built


@LAYERS.register("batch_normalization")
def batch_normalization(spec: L.BatchNormalization, shape: Shape) -> Built:
    axis = batch_axis(spec.axis, shape)
    layer = BatchNormalization(shape[axis - 1], axis, spec)
    built = with_scale_and_offset(Built(layer, shape), spec, layer)
    built.initializers += [
        (layer.moving_mean, spec.moving_mean_initializer),
        (layer.moving_variance, spec.moving_variance_initializer),
    ]
    return built


@LAYERS.register("layer_normalization")
def layer_normalization(spec: L.LayerNormalization, shape: Shape) -> Built:
    axes = (spec.axis,) if isinstance(spec.axis, int) else spec.axis
    indices = tuple(sorted({batch_axis(a, shape) for a in axes}))
    layer = LayerNormalization(indices, tuple(shape[i - 1] for i in indices), spec)
    return with_scale_and_offset(Built(layer, shape), spec, layer)


class Rescaling(nn.Module):
    def __init__(self, scale: float, offset: float):
        super().__init__()
        self.scale = scale
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"


@LAYERS.register("rescaling")
def rescaling(spec: L.Rescaling, shape: Shape) -> Built:
    return Built(Rescaling(spec.scale, spec.offset), shape)


@LAYERS.register("leaky_relu")
def leaky_relu(spec: L.LeakyReLU, shape: Shape) -> Built:
    return Built(nn.LeakyReLU(spec.negative_slope), shape)
