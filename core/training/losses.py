"""Losses by Keras name.

Each loss says which targets it trains on and which output activation's logits it can use.
A cross-entropy after a softmax or sigmoid output is computed from the logits (log-sum-exp),
never from clipped probabilities, so it stays finite where Keras's does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from core.registry import Registry

Targets = Literal["class_index", "one_hot", "binary", "values"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LossDef:
    targets: Targets  # what `y` the loss compares to
    logits_of: str | None  # output activation whose logits it takes; None: plain outputs
    fn: LossFn  # (logits or outputs, y) -> scalar


LOSSES: Registry[LossDef] = Registry("loss")

LOSSES.register("sparse_categorical_crossentropy")(
    LossDef("class_index", "softmax", lambda logits, y: F.cross_entropy(logits, y))
)
LOSSES.register("categorical_crossentropy")(
    LossDef("one_hot", "softmax", lambda logits, y: F.cross_entropy(logits, y))
)
LOSSES.register("binary_crossentropy")(
    LossDef("binary", "sigmoid", lambda logits, y: F.binary_cross_entropy_with_logits(logits, y))
)
LOSSES.register("mean_squared_error")(LossDef("values", None, F.mse_loss))
LOSSES.register("mean_absolute_error")(LossDef("values", None, F.l1_loss))
