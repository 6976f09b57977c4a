"""`fit`: the training loop. A plain function of its arguments; it reports only through callbacks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from core.errors import DivergenceError, TrainingCancelled
from core.nn.network import Network
from core.training.callbacks import Callback, TrainState
from core.training.losses import LossFn
from core.training.metrics import MetricDef

LOSS_REPORT_EVERY = 32  # steps between conversions of the per-step losses to Python floats


@dataclass(frozen=True)
class TensorData:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass
class History:
    epochs: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None


@dataclass(frozen=True)
class Objective:
    """What the loop optimises and reports: the loss, how it reads the network, the metrics."""

    loss: LossFn
    use_logits: bool
    metrics: Mapping[str, MetricDef] = field(default_factory=dict)
    # Maps the network's outputs to what the metrics read (probabilities for classifiers).
    to_metric_inputs: Callable[[torch.Tensor], torch.Tensor] | None = None


def fit(
    network: Network,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    train: TensorData,
    *,
    epochs: int,
    batch_size: int,
    val: TensorData | None = None,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
) -> History:
    state = TrainState(epochs=epochs, steps_per_epoch=math.ceil(len(train) / batch_size))
    history = History()
    for cb in callbacks:
        cb.on_train_begin(state)
    logs: dict[str, float] = {}
    for _ in range(epochs):
        logs = _train_epoch(
            network, objective, optimizer, train, batch_size, shuffle, generator, state, callbacks
        )
        if val is not None:
            logs.update(
                {f"val_{k}": v for k, v in evaluate(network, objective, val, batch_size).items()}
            )
        logs["lr"] = float(optimizer.param_groups[0]["lr"])
        state.epoch += 1
        history.epochs.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(state, logs)
        if state.stop_training:
            break
    history.stop_reason = state.stop_reason
    for cb in callbacks:
        cb.on_train_end(state, logs)
    return history


def _train_epoch(
    network: Network,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    train: TensorData,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
    state: TrainState,
    callbacks: Sequence[Callback],
) -> dict[str, float]:
    network.train()
    n = len(train)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(train.x.device)
    totals = _Totals(objective)
    pending: list[torch.Tensor] = []
    try:
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            x, y = train.x[index], train.y[index]
            logits = network.logits(x)
            outputs = network.head(logits)
            loss = objective.loss(logits if objective.use_logits else outputs, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state.step += 1
            pending.append(loss.detach())
            totals.add(loss.detach(), outputs.detach(), y)
            if len(pending) >= LOSS_REPORT_EVERY:
                _report_losses(pending, state, callbacks)
            for cb in callbacks:
                cb.on_batch_end(state)
            if state.stop_training:
                break
    except TrainingCancelled:
        _report_losses(pending, state, callbacks)  # keep the steps taken before the stop
        raise
    _report_losses(pending, state, callbacks)
    return totals.means()


def _report_losses(
    pending: list[torch.Tensor], state: TrainState, callbacks: Sequence[Callback]
) -> None:
    """Hand the per-step losses to the callbacks (one device sync), then stop on a NaN or inf."""
    if not pending:
        return
    losses = torch.stack(pending).tolist()
    steps = list(range(state.step - len(losses) + 1, state.step + 1))
    pending.clear()
    for cb in callbacks:
        cb.on_step_losses(state, steps, losses)
    for step, value in zip(steps, losses, strict=True):
        if not math.isfinite(value):
            raise DivergenceError(
                f"the loss became {value} at step {step} (epoch {state.epoch + 1}): training "
                "diverged; lower the learning rate, normalise the inputs or clip the gradients"
            )


@torch.no_grad()
def evaluate(
    network: Network, objective: Objective, data: TensorData, batch_size: int
) -> dict[str, float]:
    network.eval()
    totals = _Totals(objective)
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        logits = network.logits(x)
        outputs = network.head(logits)
        totals.add(objective.loss(logits if objective.use_logits else outputs, y), outputs, y)
    return totals.means()


class _Totals:
    """Sample-weighted sums of the loss and metrics over an epoch, kept on the device."""

    def __init__(self, objective: Objective):
        self.objective = objective
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, loss: torch.Tensor, outputs: torch.Tensor, y: torch.Tensor) -> None:
        n = outputs.shape[0]
        self._add("loss", loss * n)
        if self.objective.to_metric_inputs is not None and self.objective.metrics:
            outputs = self.objective.to_metric_inputs(outputs)
        for name, metric in self.objective.metrics.items():
            self._add(name, metric.fn(outputs, y).sum())
        self.count += n

    def _add(self, name: str, value: torch.Tensor) -> None:
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    def means(self) -> dict[str, float]:
        if not self.sums:
            return {}
        names = list(self.sums)
        values = torch.stack([self.sums[k].float() for k in names]).div(self.count).tolist()
        return dict(zip(names, values, strict=True))
