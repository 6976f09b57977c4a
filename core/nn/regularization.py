"""Keras's regularizers and constraints, applied to PyTorch parameters.

- Weight penalty (`L1L2`): l1 · Σ|w| + l2 · Σw², no ½ — as Keras defines it.
- Activity penalty: the same on a layer's output, divided by the batch size — as Keras 3.15
  computes it (a per-sample mean, so its strength does not depend on the batch size).
- Constraints (`max_norm`, `unit_norm`, `min_max_norm`) rescale weights after each optimizer
  step, per output unit: the norm is taken over every axis of PyTorch's (outputs-first) layout
  but the output one — Keras's default (axis=0) for a dense kernel, and Keras's recommended
  axis=[0, 1, 2] (per filter) for a conv kernel. A bias or scale vector is constrained as a
  whole. `non_neg` sets negative weights to 0.
"""

from __future__ import annotations

import torch
from torch import nn

from core.spec.regularizers import L1L2, MaxNorm, MinMaxNorm, NonNeg, UnitNorm

_EPSILON = 1e-7  # Keras's backend epsilon, used by its norm constraints


def penalty(tensor: torch.Tensor, reg: L1L2) -> torch.Tensor:
    total = tensor.new_zeros(())
    if reg.l1:
        total = total + reg.l1 * tensor.abs().sum()
    if reg.l2:
        total = total + reg.l2 * tensor.square().sum()
    return total


class ActivityPenalty(nn.Module):
    """Identity that records the activity penalty of what passes through it. Recorded in
    evaluation too: Keras's validation loss includes the penalties like its training loss."""

    def __init__(self, reg: L1L2):
        super().__init__()
        self.reg = reg
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = penalty(x, self.reg)
        self.last = total / x.shape[0] if x.dim() > 0 and x.shape[0] else total
        return x


@torch.no_grad()
def apply_constraint(
    param: torch.Tensor, constraint: MaxNorm | UnitNorm | MinMaxNorm | NonNeg
) -> None:
    if isinstance(constraint, NonNeg):
        param.clamp_(min=0.0)
        return
    if param.dim() < 2:
        norms = param.norm().reshape(1)  # a bias or a scale vector: the norm of the whole vector
    else:
        dims = tuple(range(1, param.dim()))  # all but PyTorch's output axis
        norms = param.square().sum(dim=dims, keepdim=True).sqrt()
    if isinstance(constraint, MaxNorm):
        desired = norms.clamp(0, constraint.max_value)
    elif isinstance(constraint, MinMaxNorm):
        clipped = norms.clamp(constraint.min_value, constraint.max_value)
        desired = constraint.rate * clipped + (1 - constraint.rate) * norms
    else:
        param.div_(_EPSILON + norms)
        return
    param.mul_(desired / (_EPSILON + norms))
