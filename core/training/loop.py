"""`fit`: the training loop. A plain function of its arguments; it reports only through callbacks."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from core.devices import to_device
from core.errors import DivergenceError, TrainingCancelled
from core.nn.network import Network
from core.series import LR
from core.training.callbacks import Callback, TrainState
from core.training.checkpoint import Snapshot, capture, restore, restore_callbacks
from core.training.checkpointing import CheckpointWriter
from core.training.direct_step import StepMode, make_step
from core.training.objective import Objective
from core.training.optimizers import Optimization
from core.training.precision import Precision
from core.training.steps import Step, forward
from core.training.totals import EpochTotals

LOSS_REPORT_EVERY = 32  # steps between conversions of the per-step losses to Python floats
EVAL_BATCH_MIN = 1024
# Up to this size the training data is gathered in its shuffled order once per epoch and cut
# into contiguous batches (cheaper than a gather per step); above it, a gather per batch spares
# the memory of a second copy.
EPOCH_GATHER_MAX_BYTES = 256 << 20


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
    step: StepMode = "auto",
    precision: Precision | None = None,
) -> History:
    """Train for `epochs` epochs (fewer if a callback stops it). With `checkpoints`, the run's
    state is captured after each epoch's callbacks and written in the background; the last one
    may still be in flight on return (the caller waits: `checkpoints.wait()`, so that its write
    overlaps what follows training). `resume` continues a run from such a checkpoint, exactly
    as if it had not stopped. `step` "auto" takes the direct step (`direct_step`) where it
    covers the network, "autograd" never. `precision`: fp32 when absent
    (core/training/precision.py)."""
    optimizer = optimization.optimizer
    precision = precision or Precision()
    state = TrainState(
        epochs=epochs,
        steps_per_epoch=math.ceil(len(train) / batch_size),
        network=network,
        optimizer=optimizer,
        precision=precision,
    )
    history = History()
    if resume is not None:
        restore(resume, state, generator=generator, history=history.epochs)
    for cb in callbacks:
        cb.on_train_begin(state)
    if resume is not None:
        restore_callbacks(resume, callbacks)
    logs: dict[str, float] = dict(history.epochs[-1]) if history.epochs else {}
    hooks = _Hooks.of(callbacks)
    # Evaluation needs no gradients: larger batches give the same results (an activity penalty
    # too: a per-sample mean, and evaluate weighs each batch by its size).
    eval_batch = max(batch_size, EVAL_BATCH_MIN)
    train_step = make_step(network, objective, optimizer, step, precision)
    while state.epoch < epochs and not state.stop_training:
        logs = _train_epoch(
            network,
            objective,
            train_step,
            optimization,
            train,
            batch_size,
            shuffle,
            generator,
            state,
            hooks,
        )
        if val is not None:
            logs.update(
                {
                    f"val_{k}": v
                    for k, v in evaluate(network, objective, val, eval_batch, precision).items()
                }
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


@dataclass(frozen=True)
class _Hooks:
    """The callbacks that override each per-step hook, found once per run: a step calls only
    those (a call to an inherited no-op costs as much as a small tensor operation)."""

    before_step: tuple[Callback, ...]
    batch_end: tuple[Callback, ...]
    step_losses: tuple[Callback, ...]

    @staticmethod
    def of(callbacks: Sequence[Callback]) -> _Hooks:
        def overriding(name: str) -> tuple[Callback, ...]:
            return tuple(cb for cb in callbacks if _overrides(cb, name))

        return _Hooks(
            overriding("on_before_optimizer_step"),
            overriding("on_batch_end"),
            overriding("on_step_losses"),
        )


def _overrides(callback: Callback, name: str) -> bool:
    return getattr(type(callback), name, None) is not getattr(Callback, name)


def batches(
    data: TensorData, batch_size: int, shuffle: bool, generator: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The epoch's batches: in a fresh random order (one draw from `generator` per epoch, so
    a resumed run draws the same orders), else in the data's order."""
    n = len(data)
    x, y = data.x, data.y
    if shuffle:
        # drawn on the CPU: the same order on any device
        order = to_device(torch.randperm(n, generator=generator), x.device)
        if x.nbytes + y.nbytes > EPOCH_GATHER_MAX_BYTES:
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                yield x[index], y[index]
            return
        x, y = x[order], y[order]
    for start in range(0, n, batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def _train_epoch(
    network: Network,
    objective: Objective,
    step: Step,
    optimization: Optimization,
    train: TensorData,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
    state: TrainState,
    hooks: _Hooks,
) -> dict[str, float]:
    precision: Precision = state.precision
    network.train()
    totals = EpochTotals(objective, network)
    pending: list[torch.Tensor] = []
    constrained = bool(network.constraints)
    try:
        for x, y in batches(train, batch_size, shuffle, generator):
            reported, logits, outputs, penalties = step(x, y)  # detached; .grad filled
            if precision.unscale(optimization.optimizer):  # False: fp16 overflowed, skip
                for cb in hooks.before_step:
                    cb.on_before_optimizer_step(state)
                if optimization.before_step is not None:
                    optimization.before_step()
                optimization.step()
                if optimization.after_step is not None:
                    optimization.after_step()
                if constrained:
                    network.apply_constraints()
            precision.update()
            state.step += 1
            pending.append(reported)
            totals.add(reported, logits, y, penalties, outputs)
            if len(pending) >= LOSS_REPORT_EVERY:
                _report_losses(pending, state, hooks.step_losses)
            for cb in hooks.batch_end:
                cb.on_batch_end(state)
            if state.stop_training:
                break
    except TrainingCancelled:
        _report_losses(pending, state, hooks.step_losses)  # keep the steps taken before the stop
        raise
    _report_losses(pending, state, hooks.step_losses)
    return totals.means()


def _report_losses(
    pending: list[torch.Tensor], state: TrainState, callbacks: Sequence[Callback]
) -> None:
    """Hand the per-step losses to the callbacks (one device sync), then stop on a NaN or inf
    (raise DivergenceError), whatever the callbacks did: the weights are lost, and nothing
    trained on must come out as a usable model (`stop_on: divergence` names it, the run still
    fails)."""
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
    network: Network,
    objective: Objective,
    data: TensorData,
    batch_size: int,
    precision: Precision | None = None,
) -> dict[str, float]:
    """The loss and metrics on `data`, at the run's `precision` (fp32 when absent)."""
    precision = precision or Precision()
    network.eval()
    totals = EpochTotals(objective, network)
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        total, logits, outputs, penalties = forward(
            network, objective, precision, totals.needs_outputs, x, y
        )
        totals.add(total, logits, y, penalties, outputs)
    return totals.means()
