"""`Diagnostics`: per-layer gradient, update and activation health, measured every n steps.

Measured on the first step and every `every_n_steps`-th after it (1, n+1, 2n+1, ...). Nothing
runs on other steps: forward hooks are attached after the step before a measured one and
removed once its forward has run; a measurement costs one device sync, at the step's end.
Per layer with weights (kernel and bias together):

- `diag/grad_norm/<layer>`: the L2 norm of its gradients, after backward, before any clipping;
- `diag/update_ratio/<layer>`: ‖Δw‖ / ‖w‖, what the step (and any constraint) changed relative
  to the weights before it; around 1e-3 is healthy, far below is frozen, far above thrashing.

Per activation module, named after the layer that applies it, on the step's training batch (a
unit is one output value: a dense layer's feature, or one channel at one position):

- `diag/activation_mean/<layer>`, `diag/activation_std/<layer>` over all the batch's values;
- `diag/dead_fraction/<layer>` (relu, relu6): the fraction of units zero for every sample;
- `diag/saturated_fraction/<layer>` (sigmoid, tanh): of units saturated for more than half of
  the samples: |tanh| > 0.99 (derivative < 0.02), sigmoid < 0.01 or > 0.99 (derivative < 0.01).

Warnings, one per type and layer (thresholds, and why):

- `vanishing_gradients`: a layer's gradient norm below 1e-4 times the last weighted layer's, at
  two successive measurements. Under SGD the layer then learns 10^4 times slower than the
  output: it is frozen. Healthy layers stay within a couple of orders of magnitude of each other
  (what Glorot's and He's initializations aim at); a sigmoid divides the gradient by 4 or more,
  so seven of them get there. One reading is not enough: a zero-initialized output layer gives
  every other layer an exactly zero gradient at the first step.
- `exploding_gradients`, at once (a diverging run may not live to a second reading): a NaN or
  infinite gradient norm; or one above 1e4 times the last layer's (the mirror image); or one
  that grew over 1e3-fold since the layer's first reading and is at least the last layer's (a
  layer recovering from a vanishing gradient grows too, but stays below). No absolute bound: a
  gradient's scale follows the loss's (unscaled targets give large ones that Adam trains
  through).
- `dead_relu`: over half of a layer's relu units dead at a measurement after the first epoch, on
  a batch of 16 samples or more. A dead unit gets no gradient and never recovers; on smaller
  batches a living unit is too often zero by chance (one active half the time is zero on all of
  16 samples once in 65,536).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from core.nn.activations import ACTIVATIONS
from core.nn.network import Network
from core.series import DIAGNOSTICS_PREFIX
from core.training.callbacks import Callback, TrainState

Emit = Callable[[str, int, int, float], None]  # (series name, step, epoch from 1, value)

VANISHING_RATIO = 1e-4
EXPLODING_RATIO = 1e4
EXPLODING_GROWTH = 1e3
DEAD_FRACTION = 0.5
DEAD_MIN_BATCH = 16
TANH_SATURATION = 0.99  # |tanh| above: derivative below 0.02
SIGMOID_SATURATION = 0.01  # sigmoid below, or above 1 minus it: derivative below 0.01
SATURATED_SHARE = 0.5  # of the batch's samples

DEAD_KINDS = (nn.ReLU, nn.ReLU6)
SATURATING_KINDS = (nn.Sigmoid, nn.Tanh)

ADVICE = {
    "vanishing_gradients": "the layer barely learns; use relu with he_uniform, or fewer layers",
    "exploding_gradients": "lower the learning rate, normalise inputs and targets, or clip "
    "the gradients",
    "dead_relu": "these units no longer learn; lower the learning rate, or use leaky_relu",
}


@cache
def activation_types() -> tuple[type[nn.Module], ...]:
    """The module classes of the registered activations (`linear` adds no module)."""
    return tuple({type(ACTIVATIONS.get(name)()) for name in ACTIVATIONS if name != "linear"})


def activation_stats(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """[mean, std] of `output`, then its dead or saturated fraction for the kinds that have one."""
    x = output.detach().float().reshape(output.shape[0], -1)  # (samples, units)
    stats = [x.mean(), x.std(correction=0)]
    if isinstance(module, DEAD_KINDS):
        stats.append((~(x > 0).any(0)).float().mean())
    elif isinstance(module, SATURATING_KINDS):
        if isinstance(module, nn.Tanh):
            far = x.abs() > TANH_SATURATION
        else:
            far = (x < SIGMOID_SATURATION) | (x > 1 - SIGMOID_SATURATION)
        stats.append((far.float().mean(0) > SATURATED_SHARE).float().mean())
    return torch.stack(stats)


def vanishing_layers(norms: dict[str, float]) -> dict[str, float]:
    """Layer -> its gradient norm over the last layer's, for those below VANISHING_RATIO."""
    if len(norms) < 2:
        return {}
    *rest, (_, last) = norms.items()
    if not (math.isfinite(last) and last > 0):
        return {}
    return {name: v / last for name, v in rest if v / last < VANISHING_RATIO}


def exploding_layers(
    norms: dict[str, float], first: dict[str, tuple[int, float]]
) -> dict[str, str]:
    """Layer -> why its gradient norm is exploding. `first`: each layer's first finite, nonzero
    reading (step, norm)."""
    if not norms:
        return {}
    last_name, last = list(norms.items())[-1]
    found = {}
    for name, v in norms.items():
        if not math.isfinite(v):
            found[name] = f"{name}'s gradient norm is {v}"
        elif math.isfinite(last) and last > 0 and v > EXPLODING_RATIO * last:
            found[name] = (
                f"{name}'s gradient norm {v:.3g} is {v / last:.2g} times the last layer's "
                f"({last_name}: {last:.3g})"
            )
        elif name in first and v > EXPLODING_GROWTH * first[name][1] and v >= last:
            step, v0 = first[name]
            found[name] = f"{name}'s gradient norm grew from {v0:.3g} (step {step}) to {v:.3g}"
    return found


def new_finding(
    kind: str, layer: str | None, state: TrainState, value: float, message: str, *, step: int
) -> dict[str, Any]:
    """What health-based stopping acts on: the condition, where and when, and the figure."""
    return {
        "type": kind,
        "layer": layer,
        "step": step,
        "epoch": state.epoch + 1,
        "value": value,
        "message": message,
    }


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


class _Probe:
    """A forward hook that keeps the stats of one activation module's last training output."""

    def __init__(self, layer: str, module: nn.Module):
        self.layer = layer
        self.module = module
        kind = (
            ["dead_fraction"]
            if isinstance(module, DEAD_KINDS)
            else ["saturated_fraction"]
            if isinstance(module, SATURATING_KINDS)
            else []
        )
        self.series = [
            f"{DIAGNOSTICS_PREFIX}{s}/{layer}" for s in ["activation_mean", "activation_std", *kind]
        ]
        self.stats: torch.Tensor | None = None
        self.batch = 0

    def __call__(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if module.training:  # validation runs in eval mode: not the measured batch
            self.stats = activation_stats(module, output)
            self.batch = output.shape[0]


class Diagnostics(Callback):
    """Measures the network every `every_n_steps` optimizer steps and hands each value to
    `emit(name, step, epoch, value)`; `warnings` lists what looked wrong, once per type and
    layer."""

    def __init__(self, every_n_steps: int, emit: Emit):
        if every_n_steps < 1:
            raise ValueError(
                f"every_n_steps: expected a positive integer. Received: {every_n_steps}"
            )
        self.every_n_steps = every_n_steps
        self.emit = emit
        self._layers: dict[str, list[nn.Parameter]] = {}  # layers with weights, input first
        self._probes: list[_Probe] = []
        self._hooks: list[RemovableHandle] = []
        self._grad_norms: dict[str, torch.Tensor] | None = None  # of the step being measured
        self._before: dict[str, list[torch.Tensor]] = {}  # its weights before the update
        self._first: dict[str, tuple[int, float]] = {}  # first finite nonzero gradient norms
        self._suspects: dict[str, int] = {}  # vanishing at the last measurement: layer -> step
        self._warnings: dict[tuple[str, str], dict[str, Any]] = {}
        # Every finding of every measurement since the last `take_findings`, not only the first
        # per type and layer: what `training.stop_on` counts (core/training/health.py). Kept
        # only once a consumer asked (`keep_findings`), which drains them every epoch: with
        # none, the list would grow for the whole run.
        self._findings: list[dict[str, Any]] = []
        self._keep_findings = False

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [dict(w) for w in self._warnings.values()]

    def keep_findings(self) -> None:
        """Collect every finding for `take_findings`, which the caller then drains."""
        self._keep_findings = True

    def take_findings(self) -> list[dict[str, Any]]:
        """The findings since the last call, each {type, layer, step, epoch, value, message}:
        value is the gradient norm over the last layer's (vanishing_gradients), the gradient
        norm (exploding_gradients), the dead fraction (dead_relu)."""
        found, self._findings = self._findings, []
        return found

    def measures(self, step: int) -> bool:
        """Whether optimizer step `step` (counted from 1) is measured: the first, every n-th."""
        return (step - 1) % self.every_n_steps == 0

    def on_train_begin(self, state: TrainState) -> None:
        network: Network = state.network
        owners = network.module_layers
        self._layers = {}
        for owner, module in zip(owners, network.body, strict=True):
            params = [p for p in module.parameters() if p.requires_grad]
            if params:
                self._layers.setdefault(owner, []).extend(params)
        self._probes = [
            _Probe(owner, module)
            for owner, module in zip(owners, network.body, strict=True)
            if isinstance(module, activation_types())
        ]
        if self.measures(state.step + 1):
            self._arm()

    def on_before_optimizer_step(self, state: TrainState) -> None:
        if not self.measures(state.step + 1):
            return
        self._disarm()  # this step's forward has run
        with torch.no_grad():
            self._grad_norms = {}
            for name, params in self._layers.items():
                grads = [p.grad.detach().float() for p in params if p.grad is not None]
                if grads:
                    self._grad_norms[name] = _norm(grads)
            self._before = {n: [p.detach().clone() for p in ps] for n, ps in self._layers.items()}

    def on_batch_end(self, state: TrainState) -> None:
        if self._grad_norms is not None:
            self._report(state)
        if self.measures(state.step + 1):
            self._arm()

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self._disarm()

    def state_dict(self) -> dict[str, Any]:
        return {
            "warnings": self.warnings,
            "first": {k: list(v) for k, v in self._first.items()},
            "suspects": dict(self._suspects),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._warnings = {(w["type"], w["layer"]): dict(w) for w in state["warnings"]}
        self._first = {k: (int(s), float(v)) for k, (s, v) in state["first"].items()}
        self._suspects = dict(state["suspects"])

    def _arm(self) -> None:
        if not self._hooks:
            self._hooks = [p.module.register_forward_hook(p) for p in self._probes]

    def _disarm(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    @torch.no_grad()
    def _report(self, state: TrainState) -> None:
        """Emit the step's values (one device sync), then judge them."""
        assert self._grad_norms is not None
        grad_names = [f"{DIAGNOSTICS_PREFIX}grad_norm/{n}" for n in self._grad_norms]
        names = list(grad_names)
        values = [v.reshape(1) for v in self._grad_norms.values()]
        for name, before in self._before.items():
            after = [p.detach() for p in self._layers[name]]
            delta = _norm([(a - b).float() for a, b in zip(after, before, strict=True)])
            names.append(f"{DIAGNOSTICS_PREFIX}update_ratio/{name}")
            values.append((delta / _norm([b.float() for b in before])).reshape(1))
        probes = [p for p in self._probes if p.stats is not None]
        for probe in probes:
            names += probe.series
            values.append(probe.stats)  # type: ignore[arg-type]
        floats = torch.cat(values).tolist() if values else []
        step, epoch = state.step, state.epoch + 1
        for name, value in zip(names, floats, strict=True):
            self.emit(name, step, epoch, value)
        measured = dict(zip(names, floats, strict=True))
        norms = {n: measured[s] for n, s in zip(self._grad_norms, grad_names, strict=True)}
        self._judge(state, norms, measured)
        self._grad_norms, self._before = None, {}
        for probe in probes:
            probe.stats = None

    def _judge(
        self, state: TrainState, norms: dict[str, float], measured: dict[str, float]
    ) -> None:
        step = state.step
        last_name, last = list(norms.items())[-1] if norms else ("", 0.0)
        vanished = vanishing_layers(norms)
        for name, ratio in vanished.items():
            if name in self._suspects:
                why = (
                    f"{name}'s gradient norm is {norms[name]:.3g}, {ratio:.2g} times the last "
                    f"layer's ({last_name}: {last:.3g}), at steps {self._suspects[name]} and {step}"
                )
                self._warn("vanishing_gradients", name, state, ratio, why)
        self._suspects = dict.fromkeys(vanished, step)
        for name, why in exploding_layers(norms, self._first).items():
            self._warn("exploding_gradients", name, state, norms[name], f"{why} at step {step}")
        for name, v in norms.items():
            if name not in self._first and math.isfinite(v) and v > 0:
                self._first[name] = (step, v)
        if state.epoch < 1:
            return
        for probe in self._probes:
            dead = measured.get(f"{DIAGNOSTICS_PREFIX}dead_fraction/{probe.layer}")
            if dead is not None and dead > DEAD_FRACTION and probe.batch >= DEAD_MIN_BATCH:
                why = (
                    f"{dead:.0%} of {probe.layer}'s units output zero for every sample of the "
                    f"batch at step {step} (epoch {state.epoch + 1})"
                )
                self._warn("dead_relu", probe.layer, state, dead, why)

    def _warn(self, kind: str, layer: str, state: TrainState, value: float, message: str) -> None:
        step = state.step
        if self._keep_findings:
            self._findings.append(new_finding(kind, layer, state, value, message, step=step))
        self._warnings.setdefault(
            (kind, layer),
            {"type": kind, "layer": layer, "step": step, "message": f"{message}: {ADVICE[kind]}"},
        )
