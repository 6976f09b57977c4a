"""The initialization pre-flight: is the first batch's loss what an untrained classifier's is?

An untrained classifier whose outputs are near uniform (what Glorot's and He's initializations
give, with zero biases) has an expected cross-entropy of ln C over C classes, whatever their
frequencies (each sample's loss is -ln(1/C)); per output unit, binary cross-entropy's is ln 2.
A last-layer bias set to the classes' log-frequencies brings it down to the entropy of the
class prior, H = -sum p ln p <= ln C (the seeds' "init well": the network need not spend its
first steps learning the prior). A first loss far above ln C means the network starts
confidently wrong: logits with a large scale or bias (the last layer's initializer), or a
from_logits mismatch (probabilities taken for logits, or the reverse).

The warning: the first step's data loss above INITIAL_LOSS_RATIO (2) times the reference,
2 ln C: the network gives the true class a
(geometric mean) probability below 1/C², C times below chance. For ten classes that is 4.61
against 2.30; for a binary output 1.39 against 0.69. Below it the excess costs a few steps (a
well-built CNN whose batch-normalized ReLU features feed the last layer starts near 1.6 ln C);
above it, the first epochs are spent undoing the initialization.
Classification losses only (cross-entropies): a regression loss's scale is the targets'.
Reads the first step's loss as the loop hands it over (what Keras reports: penalties included)
and takes the weight penalties of the initial weights off it, computed once before the first
step: strong L2 on wide layers starts far above 2 ln C through `regularization_loss` alone,
which says nothing of the initialization (the warning names the penalty it took off). Activity
penalties depend on the batch and are not separated: a network with some is judged with them,
and the warning says so. No extra work in the step.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from core.nn.regularization import penalty
from core.training.callbacks import Callback, TrainState

INITIAL_LOSS_RATIO = 2.0
SOFTMAX_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy")
BINARY_LOSSES = ("binary_crossentropy",)
ADVICE = (
    "check the last layer: a kernel_initializer with a large scale or a large bias_initializer "
    "makes confident wrong predictions; leave its bias at zeros (or set it to the classes' "
    "log-frequencies), and check from_logits against the output activation"
)


def class_prior(y: torch.Tensor, num_classes: int) -> list[float]:
    """The classes' frequencies in training targets: labels, one-hot rows or 0/1 values."""
    y = y.detach().cpu()
    if y.dtype.is_floating_point and y.ndim == 2 and y.shape[1] > 1:  # one-hot
        counts = y.sum(0).double()
    else:
        counts = torch.bincount(y.reshape(-1).long(), minlength=num_classes).double()
    return (counts / counts.sum()).tolist()


def entropy(prior: list[float]) -> float:
    return -sum(p * math.log(p) for p in prior if p > 0)


def expected_initial_loss(loss: str, num_classes: int | None) -> float | None:
    """ln C for a softmax cross-entropy, ln 2 for a binary one; None for other losses."""
    if loss in SOFTMAX_LOSSES and num_classes and num_classes > 1:
        return math.log(num_classes)
    if loss in BINARY_LOSSES:
        return math.log(2)
    return None


class InitialLossCheck(Callback):
    """Warns (`warnings`, the diagnostics' shape, type `initial_loss`) when the first step's
    data loss is over INITIAL_LOSS_RATIO times `expected`. A resumed run is not checked again."""

    def __init__(self) -> None:
        self.expected: float | None = None
        self.prior_entropy: float | None = None
        self.warnings: list[dict[str, Any]] = []
        self.last_layer: str | None = None
        self.weight_penalty = 0.0  # of the initial weights: in the first step's loss
        self.activity_penalties = False

    def on_train_begin(self, state: TrainState) -> None:
        network = state.network
        layers = getattr(network, "module_layers", None)
        self.last_layer = layers[-1] if layers else None
        if self.expected is not None and state.step == 0:
            with torch.no_grad():
                terms = [float(penalty(p, reg)) for p, reg in getattr(network, "penalties", [])]
            self.weight_penalty = sum(terms)
            self.activity_penalties = bool(getattr(network, "activity_penalties", []))

    def expect(self, loss: str, num_classes: int | None, y: torch.Tensor) -> None:
        """Set the reference for a run of `loss` on targets `y`."""
        self.expected = expected_initial_loss(loss, num_classes)
        if self.expected is not None and num_classes:
            self.prior_entropy = entropy(class_prior(y, num_classes))

    def on_step_losses(self, state: TrainState, steps: list[int], losses: list[float]) -> None:
        if self.expected is None or steps[0] != 1:
            return
        first = losses[0] - self.weight_penalty
        if not (math.isfinite(first) and first <= INITIAL_LOSS_RATIO * self.expected):
            prior = (
                f" ({self.prior_entropy:.3g} with the last bias set to the class prior)"
                if self.prior_entropy is not None
                else ""
            )
            weights = (
                f" (without the weight penalties' {self.weight_penalty:.4g})"
                if self.weight_penalty
                else ""
            )
            activity = " (activity penalties included)" if self.activity_penalties else ""
            message = (
                f"the first batch's loss is {first:.4g}{weights}{activity}, "
                f"{first / self.expected:.2g} times what an untrained classifier's should be: "
                f"{self.expected:.3g}{prior}"
            )
            self.warnings.append(
                {
                    "type": "initial_loss",
                    "layer": self.last_layer,
                    "step": 1,
                    "message": f"{message}: {ADVICE}",
                }
            )
        self.expected = None  # once

    def state_dict(self) -> dict[str, Any]:
        """The warnings: a resumed run keeps them (it is not checked again)."""
        return {"warnings": [dict(w) for w in self.warnings]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warnings = [dict(w) for w in state["warnings"]]
