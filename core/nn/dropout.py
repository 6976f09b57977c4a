"""`Dropout`: Keras's inverted dropout, with its mask drawn one way for every step.

torch's `nn.Dropout` draws its mask with `bernoulli_`, whose CPU kernel draws element by
element (about a sixth of the digits CNN's step in one profile). A uniform draw compared with
the keep probability is vectorised (two to three times faster in one timing) and keeps each unit
with probability 1 - rate, as Keras's dropout does. On CUDA torch's fused dropout kernel is the
faster one, and is used there. The direct step (core/training/direct_step.py) draws with
`keep_mask` too, so that both steps of a run draw the same masks from the same generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def keep_mask(like: torch.Tensor, rate: float) -> torch.Tensor:
    """The multiplier of inverted dropout for `like`: 0 where a unit is dropped, 1 / (1 - rate)
    where it is kept (rate < 1)."""
    keep = 1.0 - rate
    return torch.rand_like(like).lt_(keep).div_(keep)


class Dropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.is_cuda or self.p >= 1:
            return F.dropout(x, self.p, training=True)
        return x * keep_mask(x, self.p)
