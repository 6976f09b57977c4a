"""The network assembled from a ModelSpec, its Keras-style summary, and weight initialization."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.errors import SpecError, SpecIssue
from core.nn.activations import PROBABILITY_ACTIVATIONS
from core.nn.initializers import initialize, shape_issue
from core.nn.layers import Built, LayerShapeError, Shape, activation_module, build_layer
from core.nn.layout import channels_first_inside
from core.nn.regularization import ActivityPenalty, apply_constraint, penalty
from core.spec.job import ModelSpec
from core.spec.regularizers import L1L2


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

    def __init__(self, body: nn.Sequential, head: nn.Module, output_activation: str | None):
        super().__init__()
        self.body = body
        self.head = head
        self.output_activation = output_activation
        self.initializers: list[tuple[nn.Parameter, str]] = []
        self.penalties: list[tuple[nn.Parameter, L1L2]] = []
        self.constraints: list[tuple[nn.Parameter, object]] = []
        self.layer_summaries: list[LayerSummary] = []
        self.module_layers: list[str] = []  # the layer each module of `body` belongs to
        self.activity_penalties = [m for m in self.modules() if isinstance(m, ActivityPenalty)]

    def regularization_loss(self) -> torch.Tensor | None:
        """The weight penalties plus the activity penalties of the last forward pass, or None
        when the network has no regularizer."""
        if not self.penalties and not self.activity_penalties:
            return None  # the common case, checked once per step: keep it free
        terms = [penalty(p, reg) for p, reg in self.penalties]
        terms += [m.last for m in self.activity_penalties if m.last is not None]
        return torch.stack(terms).sum() if terms else None

    def has_convolutions(self) -> bool:
        """Whether it holds 2-D convolutions (4-D kernels): what the channels-last memory
        format speeds up on a GPU."""
        return any(p.dim() == 4 for p in self.parameters())

    def has_activity_penalties(self) -> bool:
        return bool(self.activity_penalties)

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """After each optimizer step, as Keras applies kernel and bias constraints."""
        for param, constraint in self.constraints:
            apply_constraint(param, constraint)

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
    acts: list[str | None] = []  # the activation each module applies, if it is one
    owners: list[str] = []  # the layer each module belongs to
    inputs: list[Shape] = []  # each module's input shape (Keras's, batch axis excluded)
    parts = Built(None, ())  # collects initializers, penalties and constraints of every layer
    rows: list[LayerSummary] = []
    issues: list[SpecIssue] = []
    shape = input_shape
    for i, layer in enumerate(spec.layers):
        if layer.type == "input" and i > 0:
            message = "is an input layer: it comes first, as in Keras"
            issues.append(
                SpecIssue(("model", "layers", i), f"{layer_label(i, layer.type)} {message}")
            )
            continue
        try:
            built = build_layer(layer, shape)
        except LayerShapeError as e:
            where = ("model", "layers", i, *([e.argument] if e.argument else []))
            issues.append(SpecIssue(where, f"{layer_label(i, layer.type)} {e}", "shape"))
            break  # later shapes are unknown
        params = 0
        label = layer.name or f"{layer.type}_{i}"
        if built.module is not None:
            modules.append(built.module)
            acts.append(None)
            params = sum(p.numel() for p in built.module.parameters())
        inputs += [shape] * (len(modules) - len(inputs))
        if built.activation != "linear":
            modules.append(activation_module(built.activation))
            acts.append(built.activation)
        if built.activity is not None:
            modules.append(ActivityPenalty(built.activity))
            acts.append(None)
        owners += [label] * (len(modules) - len(owners))
        inputs += [built.output_shape] * (len(modules) - len(inputs))
        for param, init in built.initializers:  # e.g. identity or orthogonal on a 1-D weight
            issue = shape_issue(init, tuple(param.shape))
            message = f"{layer_label(i, layer.type)}: {issue}"
            if issue and all(known.msg != message for known in issues):
                issues.append(SpecIssue(("model", "layers", i), message))
        parts.initializers += built.initializers
        parts.penalties += built.penalties
        parts.constraints += built.constraints
        shape = built.output_shape
        rows.append(LayerSummary(label, layer.type, shape, params))
    params = [p for m in modules for p in m.parameters()]
    if params and not any(p.requires_grad for p in params):
        message = "every layer with weights has trainable false: there is nothing to train"
        issues.append(SpecIssue(("model", "layers"), message))
    if issues:
        raise SpecError(issues)

    # The output activation (softmax/sigmoid) goes to the head, with an activity penalty that
    # follows it, so the body ends in logits.
    head: list[nn.Module] = []
    if (
        modules
        and isinstance(modules[-1], ActivityPenalty)
        and acts[-2:-1]
        and acts[-2] in PROBABILITY_ACTIVATIONS
    ):
        head = [modules.pop(-2), modules.pop()]
        output_activation = acts[-2]
    elif acts and acts[-1] in PROBABILITY_ACTIVATIONS:
        head = [modules.pop()]
        output_activation = acts[-1]
    else:
        output_activation = None
    outputs = [*inputs[1:], shape][: len(modules)]
    body, body_owners = channels_first_inside(
        modules, owners[: len(modules)], inputs[: len(modules)], outputs
    )
    network = Network(
        body,
        (head[0] if len(head) == 1 else nn.Sequential(*head)) if head else nn.Identity(),
        output_activation,
    )
    network.initializers = parts.initializers
    network.penalties = parts.penalties
    network.constraints = parts.constraints
    network.layer_summaries = rows
    network.module_layers = body_owners
    return network
