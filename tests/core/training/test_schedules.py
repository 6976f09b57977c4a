"""Learning-rate schedules: values at chosen steps against their formulas, worked out by hand;
Keras's class spellings; refused arguments; and a schedule driving a real optimizer."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import TypeAdapter, ValidationError
from torch import nn

from core.settings import Settings
from core.spec import JobSpec
from core.spec.optimizers import OptimizerSpec
from core.spec.schedules import SCHEDULE_TYPES, LearningRate
from core.training.optimizers import build_optimizer
from core.training.schedules import SCHEDULES, learning_rate_schedule
from core.training.session import train_spec

LR = TypeAdapter(LearningRate)
OPT = TypeAdapter(OptimizerSpec)


def values(spec: dict, steps: list[int], *, steps_per_epoch: int = 1, epochs: int = 1) -> list:
    schedule = learning_rate_schedule(
        LR.validate_python(spec), steps_per_epoch=steps_per_epoch, epochs=epochs
    )
    assert schedule is not None
    return [schedule(s) for s in steps]


def test_each_schedule_spec_has_a_rule_and_each_rule_a_spec() -> None:
    assert sorted(SCHEDULE_TYPES) == SCHEDULES.names()


def test_keras_class_spellings_normalize() -> None:
    required = {
        "ExponentialDecay": {"initial_learning_rate": 1, "decay_steps": 1, "decay_rate": 0.5},
        "InverseTimeDecay": {"initial_learning_rate": 1, "decay_steps": 1, "decay_rate": 0.5},
        "PolynomialDecay": {"initial_learning_rate": 1, "decay_steps": 1},
        "PiecewiseConstantDecay": {"boundaries": [1], "values": [1, 0.1]},
        "CosineDecay": {"initial_learning_rate": 1, "decay_steps": 1},
        "CosineDecayRestarts": {"initial_learning_rate": 1, "first_decay_steps": 1},
        "StepDecay": {"initial_learning_rate": 1, "step_size": 1},
        "OneCycle": {"max_learning_rate": 1},
    }
    names = [LR.validate_python({"type": k, **v}).type for k, v in required.items()]
    assert names == SCHEDULE_TYPES
    assert refused({"type": "Piecewise_Constant_Decay", "boundaries": [1], "values": [1, 0]})


def test_a_number_is_a_constant_rate_left_to_the_optimizer() -> None:
    assert learning_rate_schedule(0.01, steps_per_epoch=3, epochs=2) is None
    assert LR.validate_python("1e-3") == 0.001  # YAML reads 1e-3 as a string


def test_exponential_decay() -> None:
    spec = {"type": "ExponentialDecay", "initial_learning_rate": 0.1, "decay_steps": 10}
    spec["decay_rate"] = 0.5
    assert values(spec, [0, 5, 10, 15, 20]) == pytest.approx(
        [0.1, 0.1 / math.sqrt(2), 0.05, 0.05 / math.sqrt(2), 0.025], rel=1e-12
    )
    staircase = values({**spec, "staircase": True}, [0, 9, 10, 19, 20])
    assert staircase == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-12)


def test_inverse_time_decay() -> None:
    spec = {"type": "InverseTimeDecay", "initial_learning_rate": 0.1, "decay_steps": 10}
    spec["decay_rate"] = 0.5
    # 0.1 / (1 + 0.5 * step / 10)
    assert values(spec, [0, 10, 15]) == pytest.approx([0.1, 0.1 / 1.5, 0.1 / 1.75], rel=1e-12)
    staircase = values({**spec, "staircase": True}, [9, 15, 20])
    assert staircase == pytest.approx([0.1, 0.1 / 1.5, 0.1 / 2], rel=1e-12)


def test_polynomial_decay() -> None:
    # (0.1 - 0.0001) * (1 - step / 10) ** power + 0.0001; Keras's end_learning_rate is 1e-4
    spec = {"type": "PolynomialDecay", "initial_learning_rate": 0.1, "decay_steps": 10}
    assert values(spec, [0, 5, 10, 25]) == pytest.approx([0.1, 0.05005, 0.0001, 0.0001], rel=1e-12)
    squared = values({**spec, "power": 2.0}, [5])
    assert squared == pytest.approx([0.0999 * 0.25 + 0.0001], rel=1e-12)
    # cycle: step 15 decays over 20 steps (the first multiple of 10 reaching 15)
    cycled = values({**spec, "cycle": True}, [0, 10, 15, 20, 21])
    expected = [0.1, 0.0001, 0.0999 * 0.25 + 0.0001, 0.0001, 0.0999 * (9 / 30) + 0.0001]
    assert cycled == pytest.approx(expected, rel=1e-12)


def test_piecewise_constant_decay_boundaries_belong_to_the_earlier_piece() -> None:
    spec = {"type": "PiecewiseConstantDecay", "boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}
    assert values(spec, [0, 10, 11, 20, 21, 1000]) == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def test_cosine_decay() -> None:
    # 1.0 * ((1 - 0.1) * 0.5 * (1 + cos(pi * step / 10)) + 0.1), held after decay_steps
    spec = {"type": "CosineDecay", "initial_learning_rate": 1.0, "decay_steps": 10, "alpha": 0.1}
    assert values(spec, [0, 2, 5, 10, 99]) == pytest.approx(
        [1.0, 0.9 * 0.5 * (1 + math.cos(math.pi * 0.2)) + 0.1, 0.55, 0.1, 0.1], rel=1e-12
    )


def test_cosine_decay_with_warmup() -> None:
    # linear 0 -> 2.0 over 4 steps, then 2.0 * 0.5 * (1 + cos(pi * (step - 4) / 10))
    spec = {"type": "cosine_decay", "initial_learning_rate": 0.0, "decay_steps": 10}
    spec |= {"warmup_target": 2.0, "warmup_steps": 4}
    assert values(spec, [0, 1, 2, 4, 9, 14, 50]) == pytest.approx(
        [0.0, 0.5, 1.0, 2.0, 1.0, 0.0, 0.0], rel=1e-12, abs=1e-15
    )


def test_cosine_decay_restarts() -> None:
    # periods of 10, 20, 40 steps (t_mul 2), peaks 1, 0.5, 0.25 (m_mul 0.5)
    spec = {"type": "CosineDecayRestarts", "initial_learning_rate": 1.0, "first_decay_steps": 10}
    spec["m_mul"] = 0.5
    assert values(spec, [0, 5, 10, 20, 29, 30, 50]) == pytest.approx(
        [1.0, 0.5, 0.5, 0.25, 0.5 * 0.5 * (1 + math.cos(math.pi * 19 / 20)), 0.25, 0.125],
        rel=1e-12,
    )
    # t_mul 1: every period 10 steps; alpha: the floor is 0.1, a fraction of the initial rate
    equal = values({**spec, "t_mul": 1.0, "alpha": 0.1}, [10, 15, 20])
    assert equal == pytest.approx([0.9 * 0.5 + 0.1, 0.9 * 0.25 + 0.1, 0.9 * 0.25 + 0.1], rel=1e-12)


def test_cosine_decay_restarts_restart_exactly_on_their_first_step() -> None:
    # t_mul 3, 16 steps first: restarts at 16, 64, 208, 640, 1936 (where log() rounds badly)
    spec = {"type": "cosine_decay_restarts", "initial_learning_rate": 1.0, "first_decay_steps": 16}
    lrs = values({**spec, "t_mul": 3.0}, list(range(2000)))
    assert [s for s in range(1, 2000) if lrs[s] > lrs[s - 1]] == [16, 64, 208, 640, 1936]
    assert all(lrs[s] == pytest.approx(1.0) for s in [16, 64, 208, 640, 1936])


def test_step_decay_drops_every_step_size_epochs() -> None:
    spec = {"type": "StepDecay", "initial_learning_rate": 0.1, "step_size": 2, "factor": 0.5}
    lrs = values(spec, [0, 9, 10, 19, 20], steps_per_epoch=5, epochs=6)
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-12)
    del spec["factor"]
    assert LR.validate_python(spec).factor == 0.1  # the default drop


def test_one_cycle_matches_torch_one_cycle_lr() -> None:
    spec = {"type": "OneCycle", "max_learning_rate": 1.0}  # pct_start 0.3, div 25, final 1e4
    total = 4 * 5
    ours = values(spec, list(range(total + 3)), steps_per_epoch=5, epochs=4)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1.0, total_steps=total, cycle_momentum=False
    )
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert ours[:total] == pytest.approx(theirs, rel=1e-12)
    # by hand: starts at 1/25, peaks at step 0.3 * 20 - 1 = 5, ends at 1/25/1e4, and stays there
    assert (ours[0], ours[5], ours[total - 1]) == pytest.approx((0.04, 1.0, 4e-6), rel=1e-12)
    assert ours[total:] == pytest.approx([4e-6] * 3, rel=1e-12)


class Kernel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1, 2))
        self.b = nn.Parameter(torch.zeros(1))  # a second param group under weight decay


def test_a_schedule_drives_every_param_group_step_by_step() -> None:
    model = Kernel()
    spec = {"type": "ExponentialDecay", "initial_learning_rate": 0.5, "decay_steps": 1}
    spec["decay_rate"] = 0.5
    # weight decay puts the kernel and the bias in two groups
    sgd = OPT.validate_python({"type": "sgd", "learning_rate": spec, "weight_decay": 0.1})
    opt = build_optimizer(model, sgd, steps_per_epoch=3, epochs=1)
    seen = []
    for _ in range(3):
        seen.append([g["lr"] for g in opt.optimizer.param_groups])
        model.w.grad = torch.ones(1, 2)
        opt.before_step()
        opt.optimizer.step()
        opt.after_step()
    assert seen == [[0.5, 0.5], [0.25, 0.25], [0.125, 0.125]]
    # each step used its own rate, in the decay and the update: w · (1 - 0.1 lr) - lr
    w = 1.0
    for lr in (0.5, 0.25, 0.125):
        w = w * (1 - 0.1 * lr) - lr
    assert model.w.detach().tolist() == [[pytest.approx(w), pytest.approx(w)]]


def test_the_logged_lr_follows_the_schedule_through_fit() -> None:
    # 40 samples in batches of 10: 4 steps an epoch; the lr logged after epoch e is schedule(4e)
    spec = {"type": "piecewise_constant_decay", "boundaries": [3, 7], "values": [0.1, 0.01, 0.001]}
    job = JobSpec.model_validate(
        {
            "dataset": {"name": "xor", "n_samples": 40},
            "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {
                "loss": "binary_crossentropy",
                "optimizer": {"type": "sgd", "learning_rate": spec},
                "batch_size": 10,
                "epochs": 3,
                "seed": 0,
            },
        }
    )
    history = train_spec(job, Settings(), device=torch.device("cpu")).history
    assert [e["lr"] for e in history.epochs] == pytest.approx([0.01, 0.001, 0.001])


def refused(spec: object) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as e:
        LR.validate_python(spec)
    return [(err["loc"], err["msg"].removeprefix("Value error, ")) for err in e.value.errors()]


def test_bad_schedules_are_refused_with_what_was_expected() -> None:
    pieces = {"type": "piecewise_constant_decay", "boundaries": [10, 20], "values": [1.0, 0.5]}
    assert refused(pieces) == [
        (
            ("piecewise_constant_decay",),
            "expected one more value than boundaries (a value before the first boundary and "
            "after each). Received: 2 boundaries [10, 20] and 2 values [1.0, 0.5]",
        )
    ]
    assert refused({**pieces, "boundaries": [20, 10], "values": [1, 2, 3]}) == [
        (
            ("piecewise_constant_decay",),
            "expected strictly increasing boundaries. Received: [20, 10]",
        )
    ]
    warmup = {"type": "CosineDecay", "initial_learning_rate": 0.1, "decay_steps": 100}
    assert refused({**warmup, "warmup_steps": 10})[0][1].startswith(
        "warmup_steps needs a warmup_target"
    )
    assert refused({**warmup, "initial_learning_rate": 0})[0][1].startswith(
        "expected a positive initial_learning_rate, or a warmup_target"
    )
    exponential = {"type": "exponential_decay", "initial_learning_rate": 0.1, "decay_rate": 0.9}
    assert refused({**exponential, "decay_steps": 0}) == [
        (("exponential_decay", "decay_steps"), "Input should be greater than 0")
    ]
    assert refused(exponential) == [(("exponential_decay", "decay_steps"), "Field required")]
    restarts = {"type": "cosine_decay_restarts", "initial_learning_rate": 0.1}
    assert refused({**restarts, "first_decay_steps": 10, "t_mul": 0.5})[0][0] == (
        "cosine_decay_restarts",
        "t_mul",
    )
    assert refused({"type": "Cosine", "initial_learning_rate": 0.1}) == [
        (
            (),
            'expected a positive number, "suggested" (with training.lr_finder) or a schedule, '
            "an object whose type is one of: " + ", ".join(SCHEDULE_TYPES),
        )
    ]
    assert refused(0) == [((), "expected a learning rate in (0, 1e6]. Received: 0")]
