"""Learning-rate schedules with the formulas of Keras 3's `keras.optimizers.schedules`.

Each schedule is a pure function of the optimizer's iteration count (Keras's
`optimizer.iterations`: 0 before the first step), so the learning rate of step k (1-based) is
`schedule(k - 1)`. `step_decay` and `one_cycle` also need the run's length, given as `Run`.
Keras computes in float32, these in float64.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.registry import Registry
from core.spec import schedules as S


@dataclass(frozen=True)
class Run:
    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


ScheduleRule = Callable[[Any, int, Run], float]
SCHEDULES: Registry[ScheduleRule] = Registry("learning-rate schedule")


def _cosine(fraction: float) -> float:
    """From 1 at fraction 0 down to 0 at fraction 1, along half a cosine."""
    return 0.5 * (1.0 + math.cos(math.pi * fraction))


@SCHEDULES.register("exponential_decay")
def exponential_decay(s: S.ExponentialDecay, step: int, run: Run) -> float:
    p = step / s.decay_steps
    return s.initial_learning_rate * s.decay_rate ** (math.floor(p) if s.staircase else p)


@SCHEDULES.register("inverse_time_decay")
def inverse_time_decay(s: S.InverseTimeDecay, step: int, run: Run) -> float:
    p = step / s.decay_steps
    return s.initial_learning_rate / (1.0 + s.decay_rate * (math.floor(p) if s.staircase else p))


@SCHEDULES.register("polynomial_decay")
def polynomial_decay(s: S.PolynomialDecay, step: int, run: Run) -> float:
    decay_steps = s.decay_steps
    if s.cycle:  # decay over the first multiple of decay_steps that reaches `step`
        decay_steps *= max(1, math.ceil(step / s.decay_steps))
    else:
        step = min(step, decay_steps)
    remaining = 1.0 - step / decay_steps
    return (s.initial_learning_rate - s.end_learning_rate) * remaining**s.power + (
        s.end_learning_rate
    )


@SCHEDULES.register("piecewise_constant_decay")
def piecewise_constant_decay(s: S.PiecewiseConstantDecay, step: int, run: Run) -> float:
    # values[i] for boundaries[i-1] < step <= boundaries[i]: the index of the first boundary
    # that is >= step.
    return s.values[bisect_left(s.boundaries, step)]


@SCHEDULES.register("cosine_decay")
def cosine_decay(s: S.CosineDecay, step: int, run: Run) -> float:
    if s.warmup_target is None:
        fraction = min(step, s.decay_steps) / s.decay_steps
        return s.initial_learning_rate * ((1 - s.alpha) * _cosine(fraction) + s.alpha)
    step = min(step, s.warmup_steps + s.decay_steps)
    if step < s.warmup_steps:  # linear warmup from the initial rate to the target
        rise = s.warmup_target - s.initial_learning_rate
        return s.initial_learning_rate + rise * step / s.warmup_steps
    fraction = (step - s.warmup_steps) / s.decay_steps
    return s.warmup_target * ((1 - s.alpha) * _cosine(fraction) + s.alpha)


@SCHEDULES.register("cosine_decay_restarts")
def cosine_decay_restarts(s: S.CosineDecayRestarts, step: int, run: Run) -> float:
    fraction = step / s.first_decay_steps  # in units of the first period
    if s.t_mul == 1.0:
        restart = math.floor(fraction)
        fraction -= restart
    else:
        # Period i lasts t_mul^i first periods, so restart i begins at (1 - t_mul^i) / (1 - t_mul).
        def begins(i: int) -> float:
            return (1.0 - s.t_mul**i) / (1.0 - s.t_mul)

        restart = math.floor(math.log(1.0 - fraction * (1.0 - s.t_mul)) / math.log(s.t_mul))
        if begins(restart + 1) <= fraction:  # the logarithm fell just short of an integer
            restart += 1
        fraction = (fraction - begins(restart)) / s.t_mul**restart
    peak = s.m_mul**restart
    return s.initial_learning_rate * ((1 - s.alpha) * peak * _cosine(fraction) + s.alpha)


@SCHEDULES.register("step_decay")
def step_decay(s: S.StepDecay, step: int, run: Run) -> float:
    drops = step // (s.step_size * run.steps_per_epoch)
    return s.initial_learning_rate * s.factor**drops


@SCHEDULES.register("one_cycle")
def one_cycle(s: S.OneCycle, step: int, run: Run) -> float:
    # torch's OneCycleLR (anneal_strategy="cos", three_phase=False): the rise ends at step
    # pct_start * total - 1 and the fall at step total - 1. Past the end the rate stays at its
    # floor (torch raises instead).
    start = s.max_learning_rate / s.div_factor
    floor = start / s.final_div_factor
    peak_step = s.pct_start * run.total_steps - 1
    last_step = run.total_steps - 1
    if step <= peak_step:
        return _anneal(start, s.max_learning_rate, step / peak_step if peak_step > 0 else 1.0)
    fraction = min((step - peak_step) / (last_step - peak_step), 1.0)  # pct_start < 1: no 0/0
    return _anneal(s.max_learning_rate, floor, fraction)


def _anneal(high: float, low: float, fraction: float) -> float:
    """From `high` at fraction 0 to `low` at fraction 1 along half a cosine (torch's
    `_annealing_cos`)."""
    return low + (high - low) * _cosine(fraction)


def learning_rate_schedule(
    learning_rate: float | S.ScheduleSpec, *, steps_per_epoch: int, epochs: int
) -> Callable[[int], float] | None:
    """The function iteration → learning rate for a schedule spec; None for a constant rate."""
    if isinstance(learning_rate, int | float):
        return None
    rule = SCHEDULES.get(learning_rate.type)
    run = Run(steps_per_epoch=steps_per_epoch, epochs=epochs)
    return lambda step: float(rule(learning_rate, step, run))
