"""The objective of a run, shared by the training loop and its epoch totals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.nn.network import Network
from core.nn.regularization import ActivityPenalty
from core.training.losses import LossFn
from core.training.metrics import MetricDef


@dataclass(frozen=True)
class Objective:
    """What the loop optimises and reports: the loss, how it reads the network, the metrics."""

    loss: LossFn
    use_logits: bool
    metrics: Mapping[str, MetricDef] = field(default_factory=dict)
    # The activation that makes the metrics' probabilities of the network's outputs, where the
    # network ends in logits (a loss from_logits on a linear output layer).
    metrics_activation: str | None = None


def needs_outputs(objective: Objective, network: Network) -> bool:
    """Whether a forward pass runs the head: the loss reads probabilities, or the head holds an
    activity penalty."""
    return not objective.use_logits or any(
        isinstance(m, ActivityPenalty) for m in network.head.modules()
    )
