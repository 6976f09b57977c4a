"""Optimizers: Keras 3's update rules, names and defaults, mapped explicitly onto `torch.optim`.

What Keras's `BaseOptimizer.apply` does around every update happens here too, in order:
clip the gradients (`clipnorm` per parameter, `global_clipnorm` over all, or `clipvalue`), decay
the weights (decoupled: w -= lr · weight_decay · w, before the update, every optimizer), update,
count the iteration, and move a scheduled learning rate to the next iteration's value.
`parameter_groups` is the one place that decides which parameters get weight decay
(not biases, not 1-D normalisation parameters).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.optim.optimizer as optimizer_module
from torch import nn

from core.errors import DivergenceError
from core.registry import Registry
from core.spec import optimizers as O
from core.training.schedules import learning_rate_schedule

# (parameter groups, spec, initial learning rate) -> the torch optimizer
OptimizerFactory = Callable[[list[dict[str, Any]], Any, float], torch.optim.Optimizer]
# Keras's weight decay rides in each param group under its own key: torch's `weight_decay` is
# an L2 term added to the gradient (coupled), which Keras never does, so it stays 0.
DECAY = "keras_weight_decay"
# Keras's `optimizer.iterations`, kept in every param group so it travels with state_dict().
ITERATIONS = "iterations"
# The steps KerasAdam has taken, on the host (torch's `step` state is a tensor on the
# parameters' device with the fused kernel: reading it would wait for the device).
STEPS = "keras_steps"
FLOAT32_MAX = 3.4028234663852886e38  # a larger learning rate overflows in float32 arithmetic


@dataclass
class Optimization:
    """What the training loop drives: the optimizer and its per-step companions."""

    optimizer: torch.optim.Optimizer
    before_step: Callable[[], None] | None = None  # after backward, e.g. gradient clipping
    after_step: Callable[[], None] | None = None  # e.g. a per-step learning-rate schedule

    def step(self) -> None:
        """The optimizer's update: Adam's fused kernel called directly where it can be
        (`KerasAdam.fused_step`), else the optimizer's `step`."""
        if isinstance(self.optimizer, KerasAdam):
            self.optimizer.fused_step()
        else:
            self.optimizer.step()


OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay for the kernels, none for biases and 1-D normalisation parameters. Without
    weight decay, one group: each group costs a kernel launch per step (see `merged_groups`)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    if not weight_decay:  # in the order of two groups, so that their checkpoints still load
        return [{"params": decay + no_decay, DECAY: 0.0}]
    groups = [{"params": decay, DECAY: weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, DECAY: 0.0})
    return groups


def fast_path(params: list[torch.Tensor]) -> dict[str, bool]:
    """torch's fused kernels where every parameter allows them (floating point, on the CPU or a
    GPU), else its foreach kernels: one call per step over all parameters, never the
    per-parameter loop that torch picks by default off the GPU."""
    fusable = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return {"fused": True} if fusable else {"foreach": True}


def _all_params(groups: list[dict[str, Any]]) -> list[torch.Tensor]:
    return [p for g in groups for p in g["params"]]


class _KerasOptimizer(torch.optim.Optimizer):
    """A torch optimizer whose `update` is one of Keras's rules, where torch's differs, applied
    to each group's parameters at once with torch's foreach kernels."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                states = [self.state[p] for p in params]
                self.update(params, [p.grad for p in params], states, group)
        return loss

    def update(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], group: dict
    ) -> None:
        raise NotImplementedError

    @staticmethod
    def buffers(states: list[dict], name: str, like: list[torch.Tensor]) -> list[torch.Tensor]:
        for state, p in zip(states, like, strict=True):
            if name not in state:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return [state[name] for state in states]


class KerasSGD(_KerasOptimizer):
    """Keras's SGD: velocity = momentum · velocity - lr · g, then w += velocity (Nesterov:
    w += momentum · velocity - lr · g). torch.optim.SGD keeps its buffer in gradient units and
    multiplies it by the current lr (buf = momentum · buf + g; w -= lr · buf): the same while lr
    is constant, not under a schedule or ReduceLROnPlateau."""

    def __init__(self, params: Any, *, lr: float, momentum: float, nesterov: bool):
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov})

    def update(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], group: dict
    ) -> None:
        lr, momentum = group["lr"], group["momentum"]
        if momentum == 0:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        velocity = self.buffers(states, "velocity", params)
        torch._foreach_mul_(velocity, momentum)
        torch._foreach_add_(velocity, grads, alpha=-lr)
        if group["nesterov"]:
            torch._foreach_add_(params, velocity, alpha=momentum)
            torch._foreach_add_(params, grads, alpha=-lr)
        else:
            torch._foreach_add_(params, velocity)


class KerasRMSprop(_KerasOptimizer):
    """Keras's RMSprop: v = rho · v + (1 - rho) · g², increment = lr · g / sqrt(v + eps), with
    v - mean(g)² in place of v when centered; momentum accumulates increments
    (m = momentum · m + increment; w -= m). torch.optim.RMSprop divides by sqrt(v) + eps, which
    for gradients below ~sqrt(eps) = 3e-4 gives steps up to ten times larger, and keeps its
    momentum in gradient units (see KerasSGD)."""

    def __init__(
        self, params: Any, *, lr: float, rho: float, momentum: float, eps: float, centered: bool
    ):
        defaults = {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps, "centered": centered}
        super().__init__(params, defaults)

    def update(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict], group: dict
    ) -> None:
        rho, eps = group["rho"], group["eps"]
        v = self.buffers(states, "velocity", params)
        torch._foreach_mul_(v, rho)
        torch._foreach_addcmul_(v, grads, grads, value=1 - rho)
        if group["centered"]:
            mean = self.buffers(states, "average_gradient", params)
            torch._foreach_mul_(mean, rho)
            torch._foreach_add_(mean, grads, alpha=1 - rho)
            denominator = torch._foreach_addcmul(v, mean, mean, value=-1)
            torch._foreach_add_(denominator, eps)
        else:
            denominator = torch._foreach_add(v, eps)
        torch._foreach_sqrt_(denominator)
        increment = torch._foreach_div(grads, denominator)
        torch._foreach_mul_(increment, group["lr"])
        if group["momentum"] > 0:
            m = self.buffers(states, "momentum", params)
            torch._foreach_mul_(m, group["momentum"])
            torch._foreach_add_(m, increment)
            torch._foreach_sub_(params, m)
        else:
            torch._foreach_sub_(params, increment)


class KerasAdam(torch.optim.Adam):
    """torch's Adam (its fused kernel where it can) with Keras's epsilon. Keras folds the bias
    corrections into the step size and adds eps to sqrt(v):
    w -= lr · sqrt(1 - b2^t) / (1 - b1^t) · m / (sqrt(v) + eps); torch adds it to
    sqrt(v / (1 - b2^t)). They agree when torch's eps is eps / sqrt(1 - b2^t), which a step
    pre-hook sets before each step (AMSGrad alike): torch's own `step` runs, wrapped once."""

    def __init__(self, params: Any, *, epsilon: float, **kwargs: Any):
        groups = list(params)
        super().__init__(groups, eps=epsilon, **fast_path(_all_params(groups)), **kwargs)
        self.keras_epsilon = epsilon
        self.register_step_pre_hook(KerasAdam._keras_eps)

    @torch.no_grad()
    def fused_step(self) -> None:
        """The update `step` makes, without `step`'s per-call Python (its hooks' wrapper and
        profiling record, the state's lazy set-up, the grouping by device): in one profile of the
        digits MLP, 80 µs of a 270 µs step around a 10 µs kernel. Taken once the state exists, every
        group is fused with a float learning rate, every parameter has a gradient, and no hook
        other than Keras's epsilon watches the step; else `step` itself."""
        lists = self._fused_lists()
        if lists is None:
            self.step()
            return
        KerasAdam._keras_eps(self, (), {})
        for group, (params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps) in zip(
            self.param_groups, lists, strict=True
        ):
            torch._foreach_add_(steps, 1)
            kernel = (
                torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
            )
            beta1, beta2 = group["betas"]
            kernel(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                max_sqs,
                steps,
                amsgrad=group["amsgrad"],
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                grad_scale=None,
                found_inf=None,
            )

    def _fused_lists(self) -> list[tuple[list[torch.Tensor], ...]] | None:
        """Per group: the parameters, gradients and state tensors the kernel takes, gathered
        afresh (a restored checkpoint replaces the state's tensors), or None where `step` must
        run: a hook, a state not yet made, a gradient missing, mixed devices or dtypes."""
        if (
            len(self._optimizer_step_pre_hooks) != 1
            or self._optimizer_step_post_hooks
            or optimizer_module._global_optimizer_pre_hooks
            or optimizer_module._global_optimizer_post_hooks
        ):
            return None
        lists = []
        for group in self.param_groups:
            if not group.get("fused") or group["capturable"] or group["differentiable"]:
                return None
            if isinstance(group["lr"], torch.Tensor):
                return None
            params = group["params"]
            grads = [p.grad for p in params]
            states = [self.state.get(p) for p in params]
            if any(g is None for g in grads) or any(not s for s in states):
                return None
            first = params[0]
            if any(p.device != first.device or p.dtype != first.dtype for p in params):
                return None
            max_sqs = [s["max_exp_avg_sq"] for s in states] if group["amsgrad"] else []
            lists.append(
                (
                    params,
                    grads,
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    max_sqs,
                    [s["step"] for s in states],
                )
            )
        return lists

    @staticmethod
    def _keras_eps(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        assert isinstance(optimizer, KerasAdam)
        for group in optimizer.param_groups:
            t = group.get(STEPS)
            if t is None:  # a fresh group, or one restored from a checkpoint without the count
                done = next(
                    (s["step"] for p in group["params"] if (s := optimizer.state.get(p))), 0
                )
                t = int(done)  # read once: the count then lives in the group, on the host
            group[STEPS] = t = t + 1
            group["eps"] = optimizer.keras_epsilon / math.sqrt(1.0 - group["betas"][1] ** t)


@OPTIMIZERS.register("sgd")
def sgd(groups: list[dict[str, Any]], spec: O.SGD, lr: float) -> torch.optim.Optimizer:
    return KerasSGD(groups, lr=lr, momentum=spec.momentum, nesterov=spec.nesterov)


@OPTIMIZERS.register("rmsprop")
def rmsprop(groups: list[dict[str, Any]], spec: O.RMSprop, lr: float) -> torch.optim.Optimizer:
    return KerasRMSprop(
        groups,
        lr=lr,
        rho=spec.rho,
        momentum=spec.momentum,
        eps=spec.epsilon,
        centered=spec.centered,
    )


@OPTIMIZERS.register("adagrad")
def adagrad(groups: list[dict[str, Any]], spec: O.Adagrad, lr: float) -> torch.optim.Optimizer:
    # Keras: acc = initial_accumulator_value + Σg², w -= lr · g / sqrt(acc + eps). torch divides
    # by sqrt(acc) + eps; starting torch's accumulator at initial_accumulator_value + eps with
    # eps 0 gives Keras's rule exactly. lr_decay stays 0 (Keras has none).
    return torch.optim.Adagrad(
        groups,
        **fast_path(_all_params(groups)),
        lr=lr,
        initial_accumulator_value=spec.initial_accumulator_value + spec.epsilon,
        eps=0.0,
    )


@OPTIMIZERS.register("adadelta")
def adadelta(groups: list[dict[str, Any]], spec: O.Adadelta, lr: float) -> torch.optim.Optimizer:
    # The same rule in both (eps inside both square roots, lr applied to the delta); only the
    # defaults differ: Keras's lr 0.001 and eps 1e-7 against torch's 1.0 and 1e-6.
    return torch.optim.Adadelta(groups, lr=lr, rho=spec.rho, eps=spec.epsilon, foreach=True)


@OPTIMIZERS.register("adam")
def adam(groups: list[dict[str, Any]], spec: O.Adam, lr: float) -> torch.optim.Optimizer:
    betas = (spec.beta_1, spec.beta_2)
    return KerasAdam(groups, lr=lr, betas=betas, epsilon=spec.epsilon, amsgrad=spec.amsgrad)


@OPTIMIZERS.register("adamw")
def adamw(groups: list[dict[str, Any]], spec: O.AdamW, lr: float) -> torch.optim.Optimizer:
    # Keras's AdamW is its Adam with weight_decay defaulting to 0.004; the decay is decoupled
    # for every Keras optimizer (`_decay_weights`), as torch's AdamW does it.
    return adam(groups, spec, lr)


@OPTIMIZERS.register("nadam")
def nadam(groups: list[dict[str, Any]], spec: O.Nadam, lr: float) -> torch.optim.Optimizer:
    # Both use Dozat's momentum schedule mu_t = beta_1 · (1 - 0.5 · 0.96^(t · momentum_decay));
    # Keras's has no momentum_decay (0.96^t), so torch's is 1 (its default 0.004). Both add eps
    # to sqrt(v / (1 - b2^t)): the rest is the same.
    betas = (spec.beta_1, spec.beta_2)
    return torch.optim.NAdam(
        groups, lr=lr, betas=betas, eps=spec.epsilon, momentum_decay=1.0, foreach=True
    )


@OPTIMIZERS.register("adamax")
def adamax(groups: list[dict[str, Any]], spec: O.Adamax, lr: float) -> torch.optim.Optimizer:
    # Keras: u = max(b2 · u, |g|), w -= lr / (1 - b1^t) · m / (u + eps). torch puts eps inside
    # the max, u = max(b2 · u, |g| + eps), and divides by u: its denominator is smaller than
    # Keras's by less than eps (by (1 - b2) · eps per step of decay), a relative difference
    # below eps / u that only gradients near eps (1e-7) can see.
    betas = (spec.beta_1, spec.beta_2)
    return torch.optim.Adamax(groups, lr=lr, betas=betas, eps=spec.epsilon, foreach=True)


def clip_gradients(params: list[torch.Tensor], spec: Any) -> None:
    """Keras's `_clip_gradients`: g · c / max(‖g‖, c), per parameter (`clipnorm`) or with the
    norm of all gradients together (`global_clipnorm`); or each entry into [-c, c]."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if spec.clipvalue is not None:
        torch.nn.utils.clip_grad_value_(params, spec.clipvalue)
    elif spec.clipnorm is not None:
        norms = torch._foreach_norm(grads)
        torch._foreach_clamp_min_(norms, spec.clipnorm)
        torch._foreach_reciprocal_(norms)
        torch._foreach_mul_(norms, spec.clipnorm)
        torch._foreach_mul_(grads, norms)
    elif spec.global_clipnorm is not None:
        # Not torch's clip_grad_norm_, which divides by the norm + 1e-6.
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        scale = spec.global_clipnorm / norm.clamp(min=spec.global_clipnorm)
        torch._foreach_mul_(grads, scale.to(grads[0].device))


def _decay_weights(optimizer: torch.optim.Optimizer) -> None:
    """Keras's `_apply_weight_decay`: w -= lr · weight_decay · w, with the current lr, on the
    parameters that have a gradient, before the update."""
    with torch.no_grad():
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if group[DECAY] and params:
                torch._foreach_mul_(params, 1.0 - group["lr"] * group[DECAY])


def build_optimizer(
    model: nn.Module, spec: Any, *, steps_per_epoch: int, epochs: int
) -> Optimization:
    """The optimizer for `model` from its spec. `steps_per_epoch` and `epochs` let schedules
    that span the whole run (one_cycle, step_decay) know its length."""
    schedule = learning_rate_schedule(
        spec.learning_rate, steps_per_epoch=steps_per_epoch, epochs=epochs
    )
    lr = schedule(0) if schedule is not None else spec.learning_rate
    groups = [{**g, ITERATIONS: 0} for g in parameter_groups(model, spec.weight_decay)]
    optimizer = OPTIMIZERS.get(spec.type)(groups, spec, lr)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    clips = spec.clipnorm or spec.clipvalue or spec.global_clipnorm
    decays = any(g[DECAY] for g in optimizer.param_groups)

    def before_step() -> None:
        if clips:
            clip_gradients(params, spec)
        if decays:
            _decay_weights(optimizer)

    def after_step() -> None:
        for group in optimizer.param_groups:
            group[ITERATIONS] += 1
            if schedule is not None:
                group["lr"] = lr = schedule(group[ITERATIONS])
                if not 0 <= lr <= FLOAT32_MAX:
                    raise DivergenceError(
                        f"the learning-rate schedule gave lr={lr} at step {group[ITERATIONS]}; "
                        "check its arguments"
                    )

    return Optimization(optimizer, before_step if clips or decays else None, after_step)


def merged_groups(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """An optimizer's saved state for `optimizer`: a checkpoint from before runs without weight
    decay had one parameter group holds two (kernels, then the rest), which become one."""
    groups = saved["param_groups"]
    if (
        len(optimizer.param_groups) == 1
        and len(groups) > 1
        and not any(g.get(DECAY) for g in groups)
    ):
        params = [i for g in groups for i in g["params"]]
        return {**saved, "param_groups": [{**groups[0], "params": params}]}
    return saved
