"""The learning-rate finder: the range test of Smith (2017), as fastai's `lr_find` and
Lightning's `Tuner.lr_find` run it (spec: core/spec/lr_finder.py).

`range_test` trains a copy of the run's start for up to `steps` steps, one batch each (the
training data cycled), the learning rate grown exponentially from `min_lr` to `max_lr`; the
loss is smoothed by a bias-corrected exponential moving average, and the test stops once the
smoothed loss exceeds `diverge` times its best or a loss is not finite. The network's
weights, the shuffling generator and torch's random state are put back afterwards, so the
run that follows starts exactly where it would have without the test. The pure parts
(`lr_at`, `suggest`, and core/training/smoothing.py) hold the arithmetic.

The suggestions, as fastai's: `steepest_lr`, where the smoothed loss falls fastest against
log(lr); `valley_lr`, fastai's newer `valley` (half-way down the curve's longest fall); and
`min_lr_div_10`, the rate of the lowest smoothed loss divided by 10. `"suggested"` takes
`min_lr_div_10`: at the spec's 200 steps its 20-epoch Adam run on digits is within 1 pp of a
6-point grid's best on all of 20 seeds (median gap 0.00 pp, worst 0.56 pp). What made it
robust is the steps, not the rule: at 100 steps the smoothed loss's 9-step lag is a factor 5 in
rate, and the minimum lands past the true one (16 seeds of 20, worst 3.06 pp). On the same
curves at 200 steps the steepest descent and the geometric mean of the two are as good (20 of
20; worst 0.84 and 0.28 pp, within a validation sample or two) and `valley` a little worse (14
of 20), so the rule stays (bench/lr_finder_digits.py prints every rule's gap per seed).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.errors import NoSuggestionError, SpecIssue
from core.nn.network import Network
from core.series import LR_FINDER_LOSS, LR_FINDER_LR, LR_FINDER_RAW_LOSS
from core.spec.job import JobSpec
from core.spec.lr_finder import SUGGESTED, LrFinderSpec
from core.training.callbacks import Callback, TrainState
from core.training.checkpoint import Snapshot, unpack
from core.training.direct_step import StepMode, make_step
from core.training.loop import TensorData, batches
from core.training.objective import Objective
from core.training.optimizers import Optimization
from core.training.precision import Precision
from core.training.smoothing import Smoother, diverged

SUGGESTION = "min_lr_div_10"  # the suggestion that `learning_rate: "suggested"` trains with
Record = Callable[[str, int, int, float], None]  # (series, step, epoch, value), e.g. sink.add


def lr_at(spec: LrFinderSpec, i: int) -> float:
    """Step i's (from 0) learning rate: min_lr at the first step, max_lr at the last."""
    return spec.min_lr * (spec.max_lr / spec.min_lr) ** (i / (spec.steps - 1))


def suggest(lrs: Sequence[float], losses: Sequence[float]) -> dict[str, float | None]:
    """The suggestions from a curve (the smoothed losses up to, not including, a divergence).
    The steepest descent and the valley skip the first tenth of the curve, whose slope is noise
    (Lightning skips its first 10 points, fastai its first tenth), and the last point."""
    lr, loss = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if len(lr) < 3:
        return dict.fromkeys(("steepest_lr", "valley_lr", "min_loss_lr", "min_lr_div_10"))
    best = int(np.argmin(loss))
    slopes = np.gradient(loss, np.log(lr))
    begin, end = len(lr) // 10, len(lr) - 1
    steepest = begin + int(np.argmin(slopes[begin:end]))
    return {
        "steepest_lr": float(lr[steepest]),
        "valley_lr": float(lr[begin + valley(loss[begin:end])]),
        "min_loss_lr": float(lr[best]),
        "min_lr_div_10": float(lr[best] / 10),
    }


def valley(losses: np.ndarray) -> int:
    """fastai's `valley`: the longest valley of the curve (its longest strictly falling
    subsequence, from the point before it starts to its end), and the index half-way down it
    (fastai's `start + int(length / 3) + int(length / 6)`)."""
    falls = np.ones(len(losses), dtype=int)  # the longest falling run ending at each point
    end = 0
    for i in range(1, len(losses)):
        higher = losses[:i] > losses[i]
        if higher.any():
            falls[i] = 1 + int(falls[:i][higher].max())
        if falls[i] > falls[end]:
            end = i
    start = end - int(falls[end])
    third = (end - start) / 3
    return max(0, start + int(third) + int(third / 2))


@dataclass
class Curve:
    """The test's record: a rate, a raw loss and a smoothed loss per step taken."""

    lr: list[float] = field(default_factory=list)
    raw_loss: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)

    def points(self) -> list[tuple[str, int, float]]:
        named = ((LR_FINDER_LR, self.lr), (LR_FINDER_LOSS, self.loss))
        named += ((LR_FINDER_RAW_LOSS, self.raw_loss),)
        return [(n, i + 1, v) for n, values in named for i, v in enumerate(values)]


def result_of(spec: LrFinderSpec, curve: Curve, diverged_at: int | None) -> dict[str, Any]:
    """The job summary's `lr_finder`: the suggestions and how the test ended."""
    kept = len(curve.loss) - (1 if diverged_at is not None else 0)  # not the diverged point
    found = suggest(curve.lr[:kept], curve.loss[:kept])
    return {
        "suggested_lr": found[SUGGESTION],
        "suggestion": SUGGESTION,
        **found,
        "steps": len(curve.loss),
        "stopped_early": diverged_at is not None,
        "diverged_at": diverged_at,
        "min_lr": spec.min_lr,
        "max_lr": spec.max_lr,
    }


def range_test(
    network: Network,
    objective: Objective,
    optimization: Optimization,
    train: TensorData,
    spec: LrFinderSpec,
    *,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    step: StepMode = "auto",
    precision: Precision | None = None,
    checks: Sequence[Callback] = (),
) -> tuple[dict[str, Any], Curve]:
    """Run the test with `optimization` (built for this test: its rate is set every step) and
    put back the network's weights and the random states. `checks` are asked after every
    step (a CancelCheck): they may raise."""
    precision = precision or Precision()
    optimizer = optimization.optimizer
    weights = copy.deepcopy(network.state_dict())
    torch_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    shuffle_rng = generator.get_state() if generator is not None else None
    scaler = copy.deepcopy(precision.state_dict())
    state = TrainState(epochs=0, steps_per_epoch=spec.steps, network=network, optimizer=optimizer)
    train_step = make_step(network, objective, optimizer, step, precision)
    smoother, curve = Smoother(spec.smoothing), Curve()
    best, diverged_at = math.inf, None
    network.train()
    try:
        data = _cycled(train, batch_size, shuffle, generator)
        for i in range(spec.steps):
            lr = lr_at(spec, i)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = next(data)
            reported = train_step(x, y).loss
            if precision.unscale(optimizer):
                if optimization.before_step is not None:
                    optimization.before_step()
                optimization.step()
                if optimization.after_step is not None:
                    optimization.after_step()
                if network.constraints:
                    network.apply_constraints()
            precision.update()
            state.step += 1
            raw = float(reported)  # one sync per step: the test is short
            smoothed = smoother.add(raw) if math.isfinite(raw) else math.inf
            curve.lr.append(lr)
            curve.raw_loss.append(raw)
            curve.loss.append(smoothed)
            if i > 0 and diverged(smoothed, best, spec.diverge):
                diverged_at = i + 1
                break
            best = min(best, smoothed)
            for check in checks:
                check.on_batch_end(state)
    finally:
        network.load_state_dict(weights)
        torch.set_rng_state(torch_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        if shuffle_rng is not None and generator is not None:
            generator.set_state(shuffle_rng)
        precision.load_state_dict(scaler)
    return result_of(spec, curve, diverged_at), curve


def _cycled(train: TensorData, batch_size: int, shuffle: bool, generator: torch.Generator | None):
    while True:
        yield from batches(train, batch_size, shuffle, generator)


class FinderResult(Callback):
    """Carries the test's result and curve into the run's checkpoints, so that a resumed run
    trains at the rate found before instead of testing again (`found_in`)."""

    def __init__(self, result: dict[str, Any], curve: Curve):
        self.result, self.curve = result, curve

    def state_dict(self) -> dict[str, Any]:
        curve = {"lr": self.curve.lr, "raw_loss": self.curve.raw_loss, "loss": self.curve.loss}
        return {"result": self.result, "curve": curve}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.result, self.curve = state["result"], Curve(**state["curve"])


def found_in(snapshot: Snapshot | None) -> FinderResult | None:
    """The test's result kept in a checkpoint, if the run had one."""
    if snapshot is None:
        return None
    for saved in snapshot.meta["callbacks"]:
        if saved["type"] == FinderResult.__name__:
            holder = FinderResult({}, Curve())
            holder.load_state_dict(unpack(saved["state"], snapshot.tensors))
            return holder
    return None


def record_curve(curve: Curve, record: Record) -> None:
    for name, step, value in curve.points():
        record(name, step, 0, value)


def no_suggestion(result: dict[str, Any]) -> str:
    """Why a range test that ended (its summary's `lr_finder`) suggested no rate, and what helps:
    its curve is too short, so it diverged within its first 3 steps, at rates about `min_lr`;
    a lower `min_lr` gives it room (a lower `max_lr` barely slows the first steps)."""
    diverged = result.get("diverged_at")
    return (
        f"found no rate to suggest: the range test ended after {result.get('steps')} steps"
        + (f", diverging at step {diverged}" if diverged else "")
        + ", at rates about its min_lr; lower training.lr_finder.min_lr"
    )


def resolved_rate(spec: JobSpec, result: dict[str, Any]) -> JobSpec:
    """`spec` with its `"suggested"` learning rate replaced by the test's suggestion."""
    rate = result.get("suggested_lr")
    if rate is None:
        raise NoSuggestionError(f"the learning-rate finder {no_suggestion(result)}", result)
    optimizer = spec.training.optimizer.model_copy(update={"learning_rate": rate})
    return spec.model_copy(
        update={"training": spec.training.model_copy(update={"optimizer": optimizer})}
    )


def finder_only(spec: JobSpec) -> bool:
    """A job that runs the range test alone: `lr_finder` with a learning rate other than
    `"suggested"`; it trains nothing."""
    return (
        spec.training.lr_finder is not None and spec.training.optimizer.learning_rate != SUGGESTED
    )


def suggested_rate_issues(spec: JobSpec) -> list[SpecIssue]:
    """A `"suggested"` learning rate needs the test that suggests it."""
    if spec.training.optimizer.learning_rate == SUGGESTED and spec.training.lr_finder is None:
        return [
            SpecIssue(
                ("training", "optimizer", "learning_rate"),
                'learning_rate "suggested" is the learning-rate finder\'s suggestion: add '
                "training.lr_finder (true for its defaults), or give a number or a schedule",
            )
        ]
    return []
