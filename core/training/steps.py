"""One training step's forward and backward pass, behind one interface.

The loop asks a step for the batch's loss and gradients, then runs the optimizer itself, so
callbacks, clipping and schedules sit between the two the same way for every step. The
autograd step here runs any network; `direct_step` has one without autograd for dense chains.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch

from core.nn.network import Network
from core.training.objective import Objective, needs_outputs
from core.training.precision import Precision


class StepResult(NamedTuple):
    loss: torch.Tensor  # what Keras reports as the loss: the loss plus any penalties, detached
    logits: torch.Tensor  # the body's output, for the metrics
    outputs: torch.Tensor | None  # the head's output where the step made it
    penalties: torch.Tensor | None  # the regularization share of `loss`


class Step(Protocol):
    """Forward and backward for one batch: `p.grad` holds the batch's gradients on return."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> StepResult: ...


class AutogradStep:
    """Any network, at any precision: the forward pass under the precision's autocast, its
    outputs back in float32 for the loss, backward through the precision (fp16's scaling)."""

    def __init__(
        self,
        network: Network,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        precision: Precision | None = None,
    ) -> None:
        self.network = network
        self.objective = objective
        self.optimizer = optimizer
        self.precision = precision or Precision()
        self.needs_outputs = needs_outputs(objective, network)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        precision = self.precision
        with precision.autocast():
            logits = self.network.logits(x)
            outputs = self.network.head(logits) if self.needs_outputs else None
        logits, outputs = precision.fp32(logits), precision.fp32(outputs)
        loss = self.objective.loss(logits if outputs is None else outputs, y)
        penalties = self.network.regularization_loss()
        total = loss if penalties is None else loss + penalties  # what Keras reports as loss
        self.optimizer.zero_grad(set_to_none=True)
        precision.backward(total)
        return StepResult(total.detach(), logits.detach(), outputs, penalties)
