"""`fit`: the training loop. A plain function of its arguments; it reports only through callbacks."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from core.errors import DivergenceError, TrainingCancelled
from core.nn.layers import activation_module
from core.nn.network import Network
from core.nn.regularization import ActivityPenalty
from core.series import LR, REGULARIZATION_LOSS
from core.training.callbacks import Callback, TrainState
from core.training.checkpoint import Snapshot, capture, restore, restore_callbacks
from core.training.checkpointing import CheckpointWriter
from core.training.losses import LossFn
from core.training.metrics import MetricDef
from core.training.optimizers import Optimization

LOSS_REPORT_EVERY = 32  # steps between conversions of the per-step losses to Python floats
EVAL_BATCH_MIN = 1024


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
    # The activation that makes the metrics' probabilities of the network's outputs, where the
    # network ends in logits (a loss from_logits on a linear output layer).
    metrics_activation: str | None = None


def fit(
    network: Network,
    objective: Objective,
    optimization: Optimization,
    train: TensorData,
    *,
    epochs: int,
    batch_size: int,
    val: TensorData | None = None,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoints: CheckpointWriter | None = None,
    resume: Snapshot | None = None,
) -> History:
    """Train for `epochs` epochs (fewer if a callback stops it). With `checkpoints`, the run's
    state is captured after each epoch's callbacks and written in the background; the last one
    may still be in flight on return (the caller waits: `checkpoints.wait()`, so that its write
    overlaps what follows training). `resume` continues a run from such a checkpoint, exactly
    as if it had not stopped."""
    optimizer = optimization.optimizer
    state = TrainState(
        epochs=epochs,
        steps_per_epoch=math.ceil(len(train) / batch_size),
        network=network,
        optimizer=optimizer,
    )
    history = History()
    if resume is not None:
        restore(resume, state, generator=generator, history=history.epochs)
    for cb in callbacks:
        cb.on_train_begin(state)
    if resume is not None:
        restore_callbacks(resume, callbacks)
    logs: dict[str, float] = dict(history.epochs[-1]) if history.epochs else {}
    # Evaluation needs no gradients: larger batches give the same results, except with an
    # activity penalty, which sums over the batch and so is computed on training-size batches.
    eval_batch = batch_size if network.activity_penalties else max(batch_size, EVAL_BATCH_MIN)
    while state.epoch < epochs and not state.stop_training:
        logs = _train_epoch(
            network,
            objective,
            optimization,
            train,
            batch_size,
            shuffle,
            generator,
            state,
            callbacks,
        )
        if val is not None:
            logs.update(
                {f"val_{k}": v for k, v in evaluate(network, objective, val, eval_batch).items()}
            )
        logs[LR] = float(optimizer.param_groups[0]["lr"])
        state.epoch += 1
        history.epochs.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(state, logs)
        if checkpoints is not None:
            _checkpoint(state, checkpoints, generator, callbacks, history)
    network.eval()  # what comes out is a model for predictions: dropout and noise off
    history.stop_reason = state.stop_reason
    for cb in callbacks:
        cb.on_train_end(state, logs)
    return history


def _checkpoint(
    state: TrainState,
    checkpoints: CheckpointWriter,
    generator: torch.Generator | None,
    callbacks: Sequence[Callback],
    history: History,
) -> None:
    best, state.save_best = state.save_best, False
    last = checkpoints.due(state.epoch, state.epoch == state.epochs or state.stop_training)
    if not (last or best):
        return
    started = time.perf_counter()
    snapshot = capture(state, generator=generator, callbacks=callbacks, history=history.epochs)
    checkpoints.times.capture.append(time.perf_counter() - started)
    checkpoints.save(snapshot, last=last, best=best)


def _train_epoch(
    network: Network,
    objective: Objective,
    optimization: Optimization,
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
    totals = _Totals(objective, network)
    pending: list[torch.Tensor] = []
    try:
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            x, y = train.x[index], train.y[index]
            logits = network.logits(x)
            outputs = network.head(logits) if totals.needs_outputs else None
            loss = objective.loss(logits if outputs is None else outputs, y)
            penalties = network.regularization_loss()
            total = loss if penalties is None else loss + penalties  # what Keras reports as loss
            optimization.optimizer.zero_grad(set_to_none=True)
            total.backward()
            for cb in callbacks:
                cb.on_before_optimizer_step(state)
            if optimization.before_step is not None:
                optimization.before_step()
            optimization.optimizer.step()
            if optimization.after_step is not None:
                optimization.after_step()
            network.apply_constraints()
            state.step += 1
            pending.append(total.detach())
            with torch.no_grad():
                totals.add(total, logits, y, penalties, outputs)
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
    totals = _Totals(objective, network)
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        logits = network.logits(x)
        outputs = network.head(logits) if totals.needs_outputs else None
        loss = objective.loss(logits if outputs is None else outputs, y)
        penalties = network.regularization_loss()
        total = loss if penalties is None else loss + penalties
        totals.add(total, logits, y, penalties, outputs)
    return totals.means()


class _Totals:
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
        self.needs_outputs = not objective.use_logits or any(
            isinstance(m, ActivityPenalty) for m in network.head.modules()
        )

    def add(
        self,
        loss: torch.Tensor,
        logits: torch.Tensor,
        y: torch.Tensor,
        regularization: torch.Tensor | None = None,
        outputs: torch.Tensor | None = None,
    ) -> None:
        """One batch: its loss, the network's logits and, where the forward made them, its
        outputs (after the head)."""
        n = logits.shape[0]
        if self.loss_sum is None:
            self.loss_sum = loss.detach() * n
        else:
            self.loss_sum.add_(loss.detach(), alpha=n)
        self.samples += n
        if regularization is not None:
            r = regularization.detach()
            self.regularization = r if self.regularization is None else self.regularization + r
            self.batches += 1
        shifted = probabilities = None
        for name, state in self.states.items():
            if self._reads_logits(name, logits):
                if shifted is None:
                    shifted = logits.detach() + 0.5
                state.update(shifted, y)
            else:
                if probabilities is None:
                    probabilities = self._probabilities(logits.detach(), outputs)
                state.update(probabilities, y)

    def _reads_logits(self, name: str, logits: torch.Tensor) -> bool:
        if self.activation not in self.objective.metrics[name].reads_logits_of:
            return False
        return self.activation != "softmax" or logits.shape[-1] > 1  # one softmax unit: 1.0

    def _probabilities(self, logits: torch.Tensor, outputs: torch.Tensor | None) -> torch.Tensor:
        if (
            outputs is None
        ):  # the head holds no activity penalty: running it again is free of effects
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
