"""Weight initializers with Keras's names, arguments, fan computations and defaults.

Fans follow Keras for dense and conv kernels alike: for a PyTorch weight of shape
(out, in, *kernel), fan_in = in · prod(kernel) and fan_out = out · prod(kernel).
Each initializer takes the tensor, its spec (`core/spec/initializers.py`) and the generator to
draw from (None: PyTorch's global one; a seeded one when the spec gives a `seed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch.nn import init

from core.registry import Registry
from core.spec.initializers import (
    Constant,
    Identity,
    InitializerArgs,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    default_args,
)

Initializer = Callable[[torch.Tensor, Any, torch.Generator | None], None]
INITIALIZERS: Registry[Initializer] = Registry("initializer")

# The stddev of a standard normal truncated to [-2, 2]: Keras divides by it so that the
# truncated draw has the intended stddev.
TRUNCATED_STDDEV = 0.87962566103423978


def fans(shape: torch.Size | tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        size = int(shape[0]) if shape else 1
        return size, size
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def truncated_normal(
    t: torch.Tensor, mean: float, stddev: float, generator: torch.Generator | None
) -> None:
    """Normal(mean, stddev) with values beyond two stddev redrawn, as Keras's backends do."""
    init.trunc_normal_(t, mean, stddev, mean - 2 * stddev, mean + 2 * stddev, generator=generator)


def variance_scaling(
    t: torch.Tensor,
    scale: float,
    mode: str,
    distribution: str,
    generator: torch.Generator | None,
) -> None:
    fan_in, fan_out = fans(t.shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(1.0, n)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        init.uniform_(t, -limit, limit, generator=generator)
    elif distribution == "untruncated_normal":
        init.normal_(t, 0.0, math.sqrt(variance), generator=generator)
    else:
        truncated_normal(t, 0.0, math.sqrt(variance) / TRUNCATED_STDDEV, generator)


@INITIALIZERS.register("zeros")
def zeros(t: torch.Tensor, spec: Any, generator: torch.Generator | None) -> None:
    t.zero_()


@INITIALIZERS.register("ones")
def ones(t: torch.Tensor, spec: Any, generator: torch.Generator | None) -> None:
    t.fill_(1.0)


@INITIALIZERS.register("constant")
def constant(t: torch.Tensor, spec: Constant, generator: torch.Generator | None) -> None:
    t.fill_(spec.value)


@INITIALIZERS.register("identity")
def identity(t: torch.Tensor, spec: Identity, generator: torch.Generator | None) -> None:
    # Keras's kernel is (in, out) and gets eye(in, out); PyTorch's is its transpose, eye(out, in).
    t.copy_(torch.eye(*t.shape, dtype=t.dtype, device=t.device) * spec.gain)


@INITIALIZERS.register("random_normal")
def random_normal(t: torch.Tensor, spec: RandomNormal, generator: torch.Generator | None) -> None:
    init.normal_(t, spec.mean, spec.stddev, generator=generator)


@INITIALIZERS.register("truncated_normal")
def _truncated_normal(
    t: torch.Tensor, spec: TruncatedNormal, generator: torch.Generator | None
) -> None:
    truncated_normal(t, spec.mean, spec.stddev, generator)


@INITIALIZERS.register("random_uniform")
def random_uniform(t: torch.Tensor, spec: RandomUniform, generator: torch.Generator | None) -> None:
    init.uniform_(t, spec.minval, spec.maxval, generator=generator)


@INITIALIZERS.register("orthogonal")
def orthogonal(t: torch.Tensor, spec: Orthogonal, generator: torch.Generator | None) -> None:
    # Keras makes the (prod(shape[:-1]), out) matrix of its kernel orthogonal along its shorter
    # side; PyTorch's (out, in · prod(kernel)) matrix is its transpose up to a reordering of the
    # fan-in axis, so orthogonalizing it along its shorter side is the same distribution.
    init.orthogonal_(t, spec.gain, generator=generator)


@INITIALIZERS.register("variance_scaling")
def _variance_scaling(
    t: torch.Tensor, spec: VarianceScaling, generator: torch.Generator | None
) -> None:
    variance_scaling(t, spec.scale, spec.mode, spec.distribution, generator)


# Keras's named variance-scaling initializers: (scale, mode, distribution).
PRESETS = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def _preset(
    scale: float, mode: str, distribution: str, t: torch.Tensor, spec: Any, generator: Any
) -> None:
    variance_scaling(t, scale, mode, distribution, generator)


for _name, _args in PRESETS.items():
    INITIALIZERS.register(_name)(partial(_preset, *_args))


def shape_issue(spec: str | InitializerArgs, shape: tuple[int, ...]) -> str | None:
    """Why `spec` cannot initialize a tensor of `shape` (Keras's rank rules), or None."""
    name = spec if isinstance(spec, str) else spec.type
    if name == "identity" and len(shape) != 2:
        return (
            "identity initializer can only be used for 2-D kernels. "
            f"Received: shape={tuple(shape)} of rank {len(shape)}"
        )
    if name == "orthogonal" and len(shape) < 2:
        return (
            "orthogonal initializer needs a kernel of rank 2 or more. "
            f"Received: shape={tuple(shape)} of rank {len(shape)}"
        )
    return None


def generator_for(t: torch.Tensor, spec: InitializerArgs) -> torch.Generator | None:
    seed = getattr(spec, "seed", None)
    if seed is None:
        return None
    return torch.Generator(device=t.device).manual_seed(seed)


@torch.no_grad()
def initialize(t: torch.Tensor, spec: str | InitializerArgs) -> None:
    """Fill `t` as the layer spec's initializer field says (a Keras name or an object)."""
    args = default_args(spec) if isinstance(spec, str) else spec
    issue = shape_issue(args, tuple(t.shape))
    if issue is not None:
        raise ValueError(issue)
    INITIALIZERS.get(args.type)(t, args, generator_for(t, args))
