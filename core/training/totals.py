"""The epoch's loss and metrics, accumulated on the device batch by batch and read once at the
epoch's end (one sync), in training and in evaluation alike."""

from __future__ import annotations

import torch

from core.nn.layers import activation_module
from core.nn.network import Network
from core.series import REGULARIZATION_LOSS
from core.training.objective import Objective, needs_outputs


class EpochTotals:
    """The epoch's loss (sample-weighted) and metric states, kept on the device.

    The metrics read the logits where they can (`MetricDef.reads_logits_of`) and otherwise
    probabilities made once per batch without autograd; the network's head runs in the forward
    pass only where the loss reads its outputs or it holds an activity penalty."""

    def __init__(self, objective: Objective, network: Network):
        self.objective = objective
        self.network = network
        self.loss_sum: torch.Tensor | None = None
        self.samples = 0
        self.regularization: torch.Tensor | None = None
        self.batches = 0
        self.states = {name: metric.make() for name, metric in objective.metrics.items()}
        self.activation = network.output_activation or objective.metrics_activation
        self.to_probabilities = (
            activation_module(objective.metrics_activation)
            if objective.metrics_activation and not network.output_activation
            else None
        )
        self.needs_outputs = needs_outputs(objective, network)

    def add(
        self,
        loss: torch.Tensor,
        logits: torch.Tensor,
        y: torch.Tensor,
        regularization: torch.Tensor | None = None,
        outputs: torch.Tensor | None = None,
    ) -> None:
        """One batch: its loss (detached, or made without autograd), the network's logits and,
        where the forward made them, its outputs (after the head)."""
        n = logits.shape[0]
        logits = logits.detach()  # nothing here joins the graph: no `no_grad` context needed
        if self.loss_sum is None:
            self.loss_sum = loss * n
        else:
            self.loss_sum.add_(loss, alpha=n)
        self.samples += n
        if regularization is not None:
            r = regularization.detach()
            self.regularization = r if self.regularization is None else self.regularization + r
            self.batches += 1
        scores = probabilities = None
        for name, state in self.states.items():
            if self._reads_logits(name, logits):
                if scores is None:
                    scores = self._scores(logits)
                state.update(scores, y)
            else:
                if probabilities is None:
                    probabilities = self._probabilities(logits, outputs)
                state.update(probabilities, y)

    def _scores(self, logits: torch.Tensor) -> torch.Tensor:
        """What the metrics that may read logits get: after a sigmoid, the logits shifted by
        0.5 (above 0.5 exactly where the probability is); after a softmax the logits as they
        are, since such metrics read only their order (argmax, top-k)."""
        return logits + 0.5 if self.activation == "sigmoid" else logits

    def _reads_logits(self, name: str, logits: torch.Tensor) -> bool:
        if self.activation not in self.objective.metrics[name].reads_logits_of:
            return False
        return self.activation != "softmax" or logits.shape[-1] > 1  # one softmax unit: 1.0

    @torch.no_grad()
    def _probabilities(self, logits: torch.Tensor, outputs: torch.Tensor | None) -> torch.Tensor:
        if outputs is None:  # the head holds no activity penalty: running it again is harmless
            outputs = self.network.head(logits)
        outputs = outputs.detach()
        return outputs if self.to_probabilities is None else self.to_probabilities(outputs)

    def means(self) -> dict[str, float]:
        if self.loss_sum is None:
            return {}
        names = ["loss", *self.states]
        values = [self.loss_sum / self.samples, *(s.compute() for s in self.states.values())]
        if self.regularization is not None:
            names.append(REGULARIZATION_LOSS)  # the penalties' share, per batch on average
            values.append(self.regularization / self.batches)
        floats = torch.stack([v.float().reshape(()) for v in values]).tolist()
        return dict(zip(names, floats, strict=True))
