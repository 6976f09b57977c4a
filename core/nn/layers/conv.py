"""Builders of the convolution layers, and the window arithmetic pooling shares with them.

Keras computes on channels-last tensors and PyTorch's convolutions want channels first, so
`ChannelsLast` moves the channel axis in and out around the PyTorch layer: that is the layer as a
builder returns it, on Keras's layout. Inside a network the layers run channels-first
(`core.nn.layout`), with `ChannelsLast.channels_first()`. Keras's "same" padding is
TensorFlow's: the total padding that keeps ceil(size / stride) outputs, split with the odd cell
after (bottom/right). Where it splits evenly it is passed to the PyTorch layer, which pads each
side by as much; otherwise (PyTorch's own `padding="same"` cannot do strides above 1) the input
is padded explicitly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.nn.layers.base import LAYERS, Built, LayerShapeError, Shape, with_kernel
from core.spec.layers import conv as L
from core.spec.layers.conv import as_tuple

AXES = {1: "(steps, channels)", 2: "(height, width, channels)"}
CONVOLUTIONS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d}


def output_size(size: int, window: int, stride: int, dilation: int, padding: str) -> int:
    """Keras's output length along one axis: floor((size - span) / stride) + 1 for "valid",
    ceil(size / stride) for "same" and "causal"."""
    span = (window - 1) * dilation + 1
    if padding == "valid":
        return (size - span) // stride + 1
    return -(-size // stride)


def padding_amounts(size: int, window: int, stride: int, dilation: int, padding: str) -> Shape:
    """(before, after) padding along one axis, as TensorFlow pads."""
    span = (window - 1) * dilation + 1
    if padding == "causal":
        return (span - 1, 0)
    if padding == "valid":
        return (0, 0)
    total = max(
        (output_size(size, window, stride, dilation, padding) - 1) * stride + span - size, 0
    )
    return (total // 2, total - total // 2)


def torch_padding(pairs: list[Shape]) -> Shape:
    """`F.pad`'s argument for per-axis (before, after) pairs: the last axis comes first."""
    return tuple(amount for pair in reversed(pairs) for amount in pair)


def check_rank(shape: Shape, rank: int) -> None:
    if len(shape) != rank + 1:
        raise LayerShapeError(
            f"expects an input of rank {rank + 1} {AXES[rank]} but gets {shape}: "
            "add a reshape layer"
        )


def window_shape(
    shape: Shape, window: Shape, strides: Shape, dilation: Shape, padding: str
) -> tuple[Shape, Shape]:
    """The spatial output shape of a window layer on a channels-last `shape`, and the
    `F.pad` padding its input needs. Raises LayerShapeError when the output would be empty."""
    spatial = shape[:-1]
    args = list(zip(spatial, window, strides, dilation, strict=True))
    out = tuple(output_size(*a, padding) for a in args)
    if min(out) < 1:
        raise LayerShapeError(
            f"has a window {window} (dilation {dilation}) larger than its input {shape} with "
            f"padding {padding!r}: use padding 'same', a smaller window or a larger input"
        )
    return out, torch_padding([padding_amounts(*a, padding) for a in args])


def symmetric(padding: Shape) -> Shape | None:
    """Per spatial axis (first axis first), the padding of each side where `F.pad`'s `padding`
    pads both sides of every axis alike; else None."""
    before, after = padding[0::2], padding[1::2]
    return tuple(reversed(before)) if before == after else None


PADDED_BY_ITSELF = (nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d)  # zeros and -inf


class ChannelsLast(nn.Module):
    """Runs a channels-first PyTorch layer on a channels-last tensor, after padding its spatial
    axes with `value` by `padding` (`F.pad`'s order); on a channels-first tensor after
    `channels_first()`."""

    def __init__(self, layer: nn.Module, padding: Shape = (), value: float = 0.0):
        super().__init__()
        self.layer = layer
        self.padding = padding
        self.value = value
        self.first = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.first:
            x = x.movedim(-1, 1)
        if any(self.padding):
            x = F.pad(x, self.padding, value=self.value)
        x = self.layer(x)
        return x if self.first else x.movedim(1, -1)

    def extra_repr(self) -> str:
        layout = "channels_first" if self.first else "channels_last"
        return f"{layout}, padding={self.padding}" if any(self.padding) else layout

    def channels_first(self) -> ChannelsLast:
        """The same layer on channels-first tensors. A symmetric padding goes to the PyTorch
        layer, which pads each side itself (a convolution with zeros, max pooling with -inf, as
        here; Keras's padding never exceeds half the window, as PyTorch requires)."""
        self.first = True
        half = symmetric(self.padding)
        if any(self.padding) and half is not None and isinstance(self.layer, PADDED_BY_ITSELF):
            self.layer.padding = half
            self.padding = ()
        return self


def convolution(spec: L.Conv1D | L.Conv2D, shape: Shape, rank: int) -> Built:
    check_rank(shape, rank)
    channels = shape[-1]
    if channels % spec.groups:
        raise LayerShapeError(
            f"expects a number of input channels divisible by groups={spec.groups} but gets "
            f"{channels} channels"
        )
    kernel = as_tuple(spec.kernel_size, rank)
    strides = as_tuple(spec.strides, rank)
    dilation = as_tuple(spec.dilation_rate, rank)
    out, padding = window_shape(shape, kernel, strides, dilation, spec.padding)
    conv = CONVOLUTIONS[rank](
        channels,
        spec.filters,
        kernel,
        stride=strides,
        dilation=dilation,
        groups=spec.groups,
        bias=spec.use_bias,
    )
    built = Built(ChannelsLast(conv, padding), (*out, spec.filters), spec.activation)
    return with_kernel(built, spec, conv.weight, conv.bias)


@LAYERS.register("conv1d")
def conv1d(spec: L.Conv1D, shape: Shape) -> Built:
    return convolution(spec, shape, 1)


@LAYERS.register("conv2d")
def conv2d(spec: L.Conv2D, shape: Shape) -> Built:
    return convolution(spec, shape, 2)
