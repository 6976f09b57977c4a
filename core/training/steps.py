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
    # What Keras reports as the loss: the loss plus any penalties (detached once a step returns).
    loss: torch.Tensor
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
        result = forward(self.network, self.objective, self.precision, self.needs_outputs, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(result.loss)
        return result._replace(loss=result.loss.detach(), logits=result.logits.detach())


def forward(
    network: Network,
    objective: Objective,
    precision: Precision,
    head: bool,
    x: torch.Tensor,
    y: torch.Tensor,
) -> StepResult:
    """One batch's forward pass, for training and evaluation alike: the network under the
    precision's autocast (and its head where `head`), the outputs back in float32, the loss
    plus any penalties (what Keras reports as the loss), not yet detached."""
    with precision.autocast():
        logits = network.logits(x)
        outputs = network.head(logits) if head else None
    logits, outputs = precision.fp32(logits), precision.fp32(outputs)
    loss = objective.loss(logits if outputs is None else outputs, y)
    penalties = network.regularization_loss()
    total = loss if penalties is None else loss + penalties
    return StepResult(total, logits, outputs, penalties)
