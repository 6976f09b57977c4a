"""Weight initializers with Keras's names, fan computations and defaults.

Fans follow Keras for dense and conv kernels alike: for a PyTorch weight of shape
(out, in, *kernel), fan_in = in · prod(kernel) and fan_out = out · prod(kernel).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from core.registry import Registry

Initializer = Callable[[torch.Tensor, int, int], None]
INITIALIZERS: Registry[Initializer] = Registry("initializer")


def fans(shape: torch.Size | tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        size = int(shape[0]) if shape else 1
        return size, size
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) * receptive


@INITIALIZERS.register("zeros")
def zeros(t: torch.Tensor, fan_in: int, fan_out: int) -> None:
    t.zero_()


@INITIALIZERS.register("ones")
def ones(t: torch.Tensor, fan_in: int, fan_out: int) -> None:
    t.fill_(1.0)


@INITIALIZERS.register("glorot_uniform")
def glorot_uniform(t: torch.Tensor, fan_in: int, fan_out: int) -> None:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    t.uniform_(-limit, limit)


@INITIALIZERS.register("he_uniform")
def he_uniform(t: torch.Tensor, fan_in: int, fan_out: int) -> None:
    limit = math.sqrt(6.0 / fan_in)
    t.uniform_(-limit, limit)


@INITIALIZERS.register("random_normal")
def random_normal(t: torch.Tensor, fan_in: int, fan_out: int) -> None:
    t.normal_(0.0, 0.05)  # Keras RandomNormal(mean=0.0, stddev=0.05)


@torch.no_grad()
def initialize(t: torch.Tensor, name: str) -> None:
    fan_in, fan_out = fans(t.shape)
    INITIALIZERS.get(name)(t, fan_in, fan_out)
