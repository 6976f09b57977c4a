"""The network assembled from a ModelSpec, its Keras-style summary, and weight initialization."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.errors import SpecError, SpecIssue
from core.nn.activations import PROBABILITY_ACTIVATIONS
from core.nn.initializers import initialize
from core.nn.layers import LAYERS, LayerShapeError, Shape, activation_module
from core.spec.job import ModelSpec


@dataclass(frozen=True)
class LayerSummary:
    name: str
    type: str
    output_shape: Shape
    params: int


class Network(nn.Module):
    """A sequential network whose last probability activation (softmax/sigmoid) is kept apart.

    `forward` returns what the user's Keras model returns; `logits` stops before that final
    activation so cross-entropy losses can be computed stably.
    """

    def __init__(self, body: nn.Sequential, output_activation: str | None):
        super().__init__()
        self.body = body
        self.output_activation = output_activation
        self.head = activation_module(output_activation) if output_activation else nn.Identity()
        self.initializers: list[tuple[nn.Parameter, str]] = []
        self.layer_summaries: list[LayerSummary] = []

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def initialize(self) -> None:
        """The one place that applies initializers (Keras defaults unless the spec says otherwise)."""
        for param, name in self.initializers:
            initialize(param, name)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def layer_label(index: int, layer_type: str) -> str:
    return f"layer {index} ({layer_type})"


def build_network(spec: ModelSpec, input_shape: Shape) -> Network:
    """Build the network for inputs of `input_shape`; raise SpecError naming every bad layer.

    Call under `torch.device("meta")` to check a spec without allocating its weights.
    """
    modules: list[nn.Module] = []
    inits: list[tuple[nn.Parameter, str]] = []
    rows: list[LayerSummary] = []
    issues: list[SpecIssue] = []
    shape = input_shape
    last_activation: str | None = None  # the activation the last module applies, if any
    for i, layer in enumerate(spec.layers):
        try:
            built = LAYERS.get(layer.type)(layer, shape)
        except LayerShapeError as e:
            issues.append(
                SpecIssue(("model", "layers", i), f"{layer_label(i, layer.type)} {e}", "shape")
            )
            break  # later shapes are unknown
        params = 0
        if built.module is not None:
            modules.append(built.module)
            params = sum(p.numel() for p in built.module.parameters())
            last_activation = None
        if built.activation != "linear":
            modules.append(activation_module(built.activation))
            last_activation = built.activation
        inits.extend(built.initializers)
        shape = built.output_shape
        rows.append(LayerSummary(layer.name or f"{layer.type}_{i}", layer.type, shape, params))
    if issues:
        raise SpecError(issues)

    output_activation = last_activation if last_activation in PROBABILITY_ACTIVATIONS else None
    if output_activation:
        modules.pop()  # the Network's head applies it
    network = Network(nn.Sequential(*modules), output_activation)
    network.initializers = inits
    network.layer_summaries = rows
    return network
