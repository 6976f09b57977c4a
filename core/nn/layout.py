"""The network's layout: Keras's channels-last at its edges, PyTorch's channels-first inside.

Layer builders return modules on Keras's channels-last tensors. Between convolutions and
pools a network would then move the channel axis in and out around every layer; instead,
`channels_first_inside` moves it in once, before the first convolution or pooling layer of a
run, keeps the layers that follow channels-first (`channels_first()` forms, and the
element-wise modules, which do not care), and moves it back only where a layer needs Keras's
order: before flatten (so that a dense layer's weights see Keras's flatten order), reshape,
dense, recurrent and wrapper layers, and at the end of the body. Outputs, weights and shapes are
the same as on channels-last throughout, and so are the names of the weights: each layer's
module keeps its place's name in the body, the layout changes take names of their own.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from core.nn.activations import ACTIVATIONS
from core.nn.layers.base import Shape
from core.nn.layers.conv import ChannelsLast
from core.nn.layers.normalization import BatchNormalization, Rescaling
from core.nn.layers.pooling import AveragePooling, GlobalPooling
from core.nn.layers.regularization import BroadcastDropout, GaussianDropout, GaussianNoise
from core.nn.regularization import ActivityPenalty

# Layers worth moving the channel axis for: PyTorch's window layers are channels-first.
WINDOWS = (ChannelsLast, AveragePooling)
# Layers with a channels-first form, used where the tensor already is channels-first.
CHANNELS_AWARE = (*WINDOWS, BatchNormalization, GlobalPooling, BroadcastDropout)
AXIS_WISE = (nn.Softmax, nn.LogSoftmax)  # act over the last axis: not element-wise


def elementwise() -> tuple[type[nn.Module], ...]:
    """Modules that act on each value alone (or sum over all of them): any layout will do."""
    activations = {type(ACTIVATIONS.get(name)()) for name in ACTIVATIONS}
    return (
        *(a for a in activations if not issubclass(a, AXIS_WISE)),
        nn.Dropout,
        GaussianNoise,
        GaussianDropout,
        Rescaling,
        ActivityPenalty,
    )


class ToChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(-1, 1)


class ToChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(1, -1)


def _channels_first(module: nn.Module, rank: int) -> nn.Module:
    if isinstance(module, BatchNormalization):
        return module.channels_first(rank)
    return module.channels_first()  # type: ignore[operator]


def channels_first_inside(
    modules: list[nn.Module], owners: list[str], inputs: list[Shape], outputs: list[Shape]
) -> tuple[nn.Sequential, list[str]]:
    """The body: `modules` (each with its layer's name and its Keras input and output shapes,
    batch axis excluded) under their indices as names, with the layout changes inserted; and
    the layer of each of its modules. A change belongs to the layer it feeds (the body's last
    layer for the last)."""
    passive = elementwise()
    body: dict[str, nn.Module] = {}
    names: list[str] = []
    first = False  # whether the tensor between the modules is channels-first
    for i, (module, owner, shape, out) in enumerate(
        zip(modules, owners, inputs, outputs, strict=True)
    ):
        spatial = len(shape) >= 2  # a channel axis apart from the positions
        if first and not isinstance(module, (*passive, *CHANNELS_AWARE)):
            body[f"to_channels_last_{i}"] = ToChannelsLast()
            names.append(owner)
            first = False
        elif not first and spatial and isinstance(module, WINDOWS):
            body[f"to_channels_first_{i}"] = ToChannelsFirst()
            names.append(owner)
            first = True
        if first and isinstance(module, CHANNELS_AWARE):
            module = _channels_first(module, len(shape) + 1)
        body[str(i)] = module
        names.append(owner)
        if len(out) < 2:  # (batch, features): the same in either layout
            first = False
    if first:
        body["to_channels_last"] = ToChannelsLast()
        names.append(owners[-1])
    return nn.Sequential(OrderedDict(body)), names
