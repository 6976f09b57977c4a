"""Optimizers: Keras parameter names and defaults mapped explicitly onto `torch.optim`.

`parameter_groups` is the one place that decides which parameters get weight decay
(not biases, not 1-D normalisation parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.registry import Registry
from core.spec import optimizers as O

OptimizerFactory = Callable[[list[dict[str, Any]], Any], torch.optim.Optimizer]


@dataclass
class Optimization:
    """What the training loop drives: the optimizer and its per-step companions."""

    optimizer: torch.optim.Optimizer
    before_step: Callable[[], None] | None = None  # after backward, e.g. gradient clipping
    after_step: Callable[[], None] | None = None  # e.g. a per-step learning-rate schedule


OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


@OPTIMIZERS.register("sgd")
def sgd(groups: list[dict[str, Any]], spec: O.SGD) -> torch.optim.Optimizer:
    # torch adds weight_decay * w to the gradient: Keras's decoupled decay when momentum is 0.
    return torch.optim.SGD(
        groups, lr=spec.learning_rate, momentum=spec.momentum, nesterov=spec.nesterov
    )


@OPTIMIZERS.register("adam")
def adam(groups: list[dict[str, Any]], spec: O.Adam) -> torch.optim.Optimizer:
    # Keras's epsilon (1e-7) is added to sqrt(v_hat) as in torch. Keras's weight_decay is
    # decoupled (w -= lr * wd * w), which is torch's AdamW; with weight_decay 0 it is plain Adam.
    return torch.optim.AdamW(
        groups,
        lr=spec.learning_rate,
        betas=(spec.beta_1, spec.beta_2),
        eps=spec.epsilon,
        amsgrad=spec.amsgrad,
    )


def build_optimizer(
    model: nn.Module, spec: Any, *, steps_per_epoch: int, epochs: int
) -> Optimization:
    """The optimizer for `model` from its spec. `steps_per_epoch` and `epochs` let schedules
    that span the whole run (cosine decay, one-cycle) know its length."""
    return Optimization(OPTIMIZERS.get(spec.type)(parameter_groups(model, spec.weight_decay), spec))
