"""The direct step: forward and gradients of a dense network written out by hand.

For a small network the cost of a training step is not arithmetic but the per-operation
overhead of autograd (building the graph, walking it back, allocating every gradient). A chain
of dense layers with a cross-entropy or squared-error loss has gradients simple enough to write
down: this step computes them with a few torch kernels under `no_grad`, into `.grad` tensors it
allocates once, and leaves the update to the run's own optimizer. What reads `p.grad` after the
backward pass (clipping, weight decay, diagnostics, every optimizer and schedule) sees what
autograd would have written, to float rounding.

`direct_step` returns None, with the reason, for anything outside what it computes exactly:
then the loop takes the autograd step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from core.nn.dropout import Dropout, keep_mask
from core.nn.network import Network
from core.training import losses as L
from core.training.precision import Precision
from core.training.steps import AutogradStep, Step, StepResult

if TYPE_CHECKING:
    from core.training.objective import Objective

log = logging.getLogger(__name__)

_aten = torch.ops.aten
# Hidden activations by module type: (forward in place on a fresh tensor, gradient through it
# from the activation's output alone), each taking the module for its arguments.
_ACTIVATIONS: dict[type[nn.Module], tuple[Callable, Callable]] = {
    nn.ReLU: (lambda h, m: h.relu_(), lambda g, out, m: _aten.threshold_backward(g, out, 0.0)),
    nn.Tanh: (lambda h, m: h.tanh_(), lambda g, out, m: _aten.tanh_backward(g, out)),
    nn.Sigmoid: (lambda h, m: h.sigmoid_(), lambda g, out, m: _aten.sigmoid_backward(g, out)),
    nn.LeakyReLU: (
        lambda h, m: F.leaky_relu_(h, m.negative_slope),
        lambda g, out, m: _aten.leaky_relu_backward(g, out, m.negative_slope, True),
    ),
    nn.ELU: (
        lambda h, m: F.elu_(h, m.alpha),
        lambda g, out, m: _aten.elu_backward(g, m.alpha, 1.0, 1.0, True, out),
    ),
}


def _invertible(module: nn.Module) -> bool:
    """Whether the activation's gradient can be read from its output (positive slopes)."""
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope > 0
    if isinstance(module, nn.ELU):
        return module.alpha >= 0
    return type(module) in _ACTIVATIONS


@dataclass(frozen=True)
class _Dense:
    linear: nn.Linear
    activation: nn.Module | None = None  # a hidden activation of `_ACTIVATIONS`
    dropout: float = 0.0  # dropout on this layer's output (after its activation)


def _loss_rule(
    objective_loss: Callable, output_activation: str | None
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
    """(body output, y) -> (loss, its gradient with respect to the body output), for the losses
    whose gradient is the prediction minus the target; None for any other."""
    fn = getattr(objective_loss, "func", objective_loss)
    smoothing = getattr(objective_loss, "keywords", {}).get("label_smoothing", 0.0)
    if fn is L.sparse_categorical_crossentropy and output_activation in ("softmax", None):
        return _sparse_categorical
    if fn is L.categorical_crossentropy and output_activation in ("softmax", None):
        return partial(_categorical, smoothing=smoothing)
    if fn is L.binary_crossentropy and output_activation in ("sigmoid", None):
        return partial(_binary, smoothing=smoothing)
    if fn is L.mean_squared_error and output_activation is None:
        return _squared
    return None


def _sparse_categorical(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    log_p = torch.log_softmax(z, -1)
    loss = F.nll_loss(log_p, y)
    grad = log_p.exp_()  # the softmax, from the same pass
    grad.scatter_add_(1, y.unsqueeze(1), _minus_ones(len(y), grad))
    return loss, grad.div_(len(y))


@lru_cache(maxsize=8)
def _minus_ones_of(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.full((n, 1), -1.0, dtype=dtype, device=device)


def _minus_ones(n: int, like: torch.Tensor) -> torch.Tensor:
    """A column of -1 (the one-hot target, subtracted): made once per batch size, not a step."""
    return _minus_ones_of(n, like.dtype, like.device)


def _categorical(
    z: torch.Tensor, y: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    target = y if smoothing == 0 else y * (1.0 - smoothing) + smoothing / z.shape[-1]
    log_p = torch.log_softmax(z, -1)
    loss = (target * log_p).sum().div(-len(y))
    grad = log_p.exp_() * target.sum(-1, keepdim=True) - target  # Σ target is 1 for one-hot
    return loss, grad.div_(len(y))


def _binary(
    z: torch.Tensor, y: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    target = y if smoothing == 0 else y * (1.0 - smoothing) + 0.5 * smoothing
    loss = F.binary_cross_entropy_with_logits(z, target)
    return loss, torch.sigmoid(z).sub_(target).div_(z.numel())


def _squared(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    diff = z - y
    return diff.square().mean(), diff.mul_(2.0 / z.numel())


def _layers(network: Network) -> tuple[list[_Dense] | None, str]:
    """The body as dense layers, each with its activation and dropout, or None and why not."""
    layers: list[_Dense] = []
    for module in network.body:
        last = layers[-1] if layers else None
        if isinstance(module, nn.Linear):
            layers.append(_Dense(module))
        elif isinstance(module, nn.Identity) or (isinstance(module, nn.Flatten) and not layers):
            continue  # the input is flattened first
        elif _invertible(module) and last and not last.activation and not last.dropout:
            layers[-1] = _Dense(last.linear, module)
        elif type(module) is Dropout and last and not last.dropout and module.p < 1.0:
            layers[-1] = _Dense(last.linear, last.activation, module.p)
        else:
            return None, f"a {type(module).__name__} module"
    if not layers:
        return None, "no dense layer"
    return layers, ""


StepMode = Literal["auto", "autograd"]


def make_step(
    network: Network,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    mode: StepMode,
    precision: Precision | None = None,
) -> Step:
    """The direct step where `mode` allows it and the network and loss fit it (in float32
    only), else autograd's (the reason logged at debug level)."""
    precision = precision or Precision()
    if mode == "auto" and precision.dtype is None:
        step, why = direct_step(network, objective, optimizer)
        if step is not None:
            return step
        log.debug("training with autograd: the direct step does not cover %s", why)
    elif mode == "auto":
        log.debug("training with autograd: the direct step runs in float32 only")
    return AutogradStep(network, objective, optimizer, precision)


def direct_step(
    network: Network, objective: Objective, optimizer: torch.optim.Optimizer
) -> tuple[DirectStep | None, str]:
    """The direct step for `network` and `objective`, or None and what it does not cover."""
    if network.penalties or network.activity_penalties:
        return None, "weight or activity regularizers"
    if network.output_activation is not None and not objective.use_logits:
        return None, "a loss that reads the output activation's probabilities"
    rule = _loss_rule(objective.loss, network.output_activation)
    if rule is None:
        return None, "a loss without a direct gradient"
    layers, why = _layers(network)
    if layers is None:
        return None, why
    params = list(network.parameters())
    if any(p.dtype != torch.float32 or not p.requires_grad for p in params):
        return None, "parameters that are not trainable float32"
    trained = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if any(id(p) not in trained for p in params):
        return None, "parameters outside the optimizer"
    return DirectStep(network, layers, rule, AutogradStep(network, objective, optimizer)), ""


class DirectStep:
    """Forward, loss and gradients of a dense chain, written into preallocated `.grad`s."""

    def __init__(
        self, network: Network, layers: list[_Dense], rule: Callable, autograd: AutogradStep
    ):
        self.network = network
        self.layers = layers
        self.rule = rule
        self.params = list(network.parameters())
        self.autograd = autograd
        self.modules = list(network.modules())
        # Whether the body flattens its input first; if not, a dense layer acts on the last axis
        # of an input of rank 3 or more (Keras's Dense), which this step does not compute.
        self.flattens = isinstance(next(iter(network.body), None), nn.Flatten)

    def _needs_autograd(self, x: torch.Tensor) -> bool:
        """Whether a forward hook watches a module (diagnostics attach some before the steps they
        measure), or autocast is on (mixed precision), or the input is not flat and the body does
        not flatten it: those steps run the modules, through autograd."""
        return bool(
            (x.dim() > 2 and not self.flattens)
            or torch.is_autocast_enabled(x.device.type)
            or _global_forward_hooks
            or _global_forward_pre_hooks
            or any(m._forward_hooks or m._forward_pre_hooks for m in self.modules)
        )

    def _grads(self) -> None:
        for p in self.params:
            if p.grad is None:  # the first step, or after an autograd step set them to None
                p.grad = torch.zeros_like(p)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        if self._needs_autograd(x):
            return self.autograd(x, y)
        return self._direct(x, y)

    def _direct(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        self._grads()
        with torch.no_grad():
            return self._pass(x, y)

    def _pass(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        training = self.network.training
        inputs: list[torch.Tensor] = []  # each layer's input
        outputs: list[torch.Tensor] = []  # each layer's activation output (before dropout)
        masks: list[torch.Tensor | None] = []
        h = x.flatten(1) if x.dim() > 2 else x
        for layer in self.layers:
            inputs.append(h)
            h = F.linear(h, layer.linear.weight, layer.linear.bias)
            if layer.activation is not None:
                h = _ACTIVATIONS[type(layer.activation)][0](h, layer.activation)
            outputs.append(h)
            mask = None
            if training and layer.dropout > 0:
                mask = keep_mask(h, layer.dropout)  # the Dropout layer's draw (on the CPU)
                h = h * mask
            masks.append(mask)
        logits = h
        loss, g = self.rule(logits, y)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if masks[i] is not None:
                g = g.mul_(masks[i])
            if layer.activation is not None:
                g = _ACTIVATIONS[type(layer.activation)][1](g, outputs[i], layer.activation)
            w, b = layer.linear.weight, layer.linear.bias
            torch.mm(g.t(), inputs[i], out=w.grad)
            if b is not None:
                torch.sum(g, 0, out=b.grad)
            if i > 0:
                g = g @ w
        outputs_for_metrics = logits if isinstance(self.network.head, nn.Identity) else None
        return StepResult(loss, logits, outputs_for_metrics, None)
