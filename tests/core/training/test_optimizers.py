"""Optimizers against Keras 3's update rules, written out here by hand with Keras's defaults.

Parameters are float64 so that a rule that differs from Keras's anywhere (epsilon inside or
outside a square root, momentum in gradient or in weight units) shows far above rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError
from torch import nn

from core.spec.optimizers import OptimizerSpec
from core.training.optimizers import DECAY, ITERATIONS, build_optimizer, merged_groups

SPEC = TypeAdapter(OptimizerSpec)
W0 = [1.0, -0.5, 0.25]
# Mixed scales: the 1e-4 entries are where Keras's and torch's epsilon placements part.
STEPS = {"steps_per_epoch": 1, "epochs": 1}
GRADS = [[0.5, -1e-4, 2.0], [0.3, 2e-4, -1.0], [-0.2, -3e-4, 0.5]]


class Weights(nn.Module):
    """A (1, 3) kernel, which weight decay reaches, and a (1,) bias, which it does not."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.tensor([W0], dtype=torch.float64))
        self.bias = nn.Parameter(torch.tensor([0.5], dtype=torch.float64))


def train(spec: dict):
    """Feed GRADS to the kernel (zeros to the bias); return the kernel after each step, the
    bias at the end, and the learning rate before each step and after the last."""
    model = Weights()
    opt = build_optimizer(model, SPEC.validate_python(spec), steps_per_epoch=10, epochs=1)
    kernels, lrs = [], [opt.optimizer.param_groups[0]["lr"]]
    for g in GRADS:
        model.kernel.grad = torch.tensor([g], dtype=torch.float64)
        model.bias.grad = torch.zeros(1, dtype=torch.float64)
        if opt.before_step is not None:
            opt.before_step()
        opt.optimizer.step()
        if opt.after_step is not None:
            opt.after_step()
        kernels.append(model.kernel.detach()[0].tolist())
        lrs.append(opt.optimizer.param_groups[0]["lr"])
    return kernels, model.bias.item(), lrs


def close(a, b) -> bool:
    return np.allclose(np.array(a), np.array(b), rtol=1e-10, atol=1e-13)


def exactly(value):
    return pytest.approx(value, rel=1e-12, abs=1e-15)


# Keras 3's update rules (keras/src/optimizers/*.py), one array of weights per step.


def keras_sgd(lr=0.01, momentum=0.0, nesterov=False, lrs=None, wd=0.0):
    w, v, out = np.array(W0), np.zeros(3), []
    for t, g in enumerate(np.array(GRADS)):
        lr_t = lrs[t] if lrs else lr
        w = w - w * wd * lr_t
        if momentum == 0:
            w = w - lr_t * g
        else:
            v = momentum * v - lr_t * g
            w = w + (momentum * v - lr_t * g if nesterov else v)
        out.append(w)
    return out


def keras_rmsprop(lr=0.001, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    w, v, m, mg, out = np.array(W0), np.zeros(3), np.zeros(3), np.zeros(3), []
    for g in np.array(GRADS):
        v = rho * v + (1 - rho) * g**2
        mg = rho * mg + (1 - rho) * g
        increment = lr * g / np.sqrt((v - mg**2 if centered else v) + eps)
        m = momentum * m + increment
        w = w - (m if momentum > 0 else increment)
        out.append(w)
    return out


def keras_adagrad(lr=0.001, initial_accumulator_value=0.1, eps=1e-7):
    w, acc, out = np.array(W0), np.full(3, initial_accumulator_value), []
    for g in np.array(GRADS):
        acc = acc + g**2
        w = w - lr * g / np.sqrt(acc + eps)
        out.append(w)
    return out


def keras_adadelta(lr=0.001, rho=0.95, eps=1e-7):
    w, acc_g, acc_d, out = np.array(W0), np.zeros(3), np.zeros(3), []
    for g in np.array(GRADS):
        acc_g = rho * acc_g + (1 - rho) * g**2
        delta = -np.sqrt(acc_d + eps) * g / np.sqrt(acc_g + eps)
        acc_d = rho * acc_d + (1 - rho) * delta**2
        w = w + lr * delta
        out.append(w)
    return out


def keras_adam(lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    w, m, v, v_hat, out = np.array(W0), np.zeros(3), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(np.array(GRADS), start=1):
        w = w - w * wd * lr
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g**2 - v) * (1 - b2)
        v_hat = np.maximum(v_hat, v)
        w = w - alpha * m / (np.sqrt(v_hat if amsgrad else v) + eps)
        out.append(w)
    return out


def keras_nadam(lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    w, m, v, u_product, out = np.array(W0), np.zeros(3), np.zeros(3), 1.0, []
    for t, g in enumerate(np.array(GRADS), start=1):
        u_t = b1 * (1 - 0.5 * 0.96**t)
        u_next = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t
        m = m + (g - m) * (1 - b1)
        v = v + (g**2 - v) * (1 - b2)
        m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
        w = w - lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(w)
    return out


def keras_adamax(lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    w, m, u, out = np.array(W0), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(np.array(GRADS), start=1):
        m = m + (g - m) * (1 - b1)
        u = np.maximum(b2 * u, np.abs(g))
        w = w - lr * m / ((1 - b1**t) * (u + eps))
        out.append(w)
    return out


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "sgd"}, keras_sgd()),
        ({"type": "sgd", "momentum": 0.9}, keras_sgd(momentum=0.9)),
        (
            {"type": "sgd", "momentum": 0.9, "nesterov": True},
            keras_sgd(momentum=0.9, nesterov=True),
        ),
        ({"type": "rmsprop"}, keras_rmsprop()),
        (
            {"type": "rmsprop", "momentum": 0.5, "centered": True},
            keras_rmsprop(momentum=0.5, centered=True),
        ),
        ({"type": "adagrad"}, keras_adagrad()),
        (
            {"type": "adagrad", "initial_accumulator_value": 0.0},
            keras_adagrad(initial_accumulator_value=0.0),
        ),
        ({"type": "adadelta"}, keras_adadelta()),
        ({"type": "adam"}, keras_adam()),
        ({"type": "adam", "amsgrad": True}, keras_adam(amsgrad=True)),
        ({"type": "adamw"}, keras_adam(wd=0.004)),
        ({"type": "nadam"}, keras_nadam()),
        ({"type": "adamax"}, keras_adamax()),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
def test_first_steps_follow_keras_update_rule_with_keras_defaults(spec, expected) -> None:
    kernels, _, _ = train(spec)
    assert close(kernels, expected), (kernels, [list(e) for e in expected])


def stock_torch(optimizer_class, **kwargs) -> list[list[float]]:
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    opt = optimizer_class([w], **kwargs)
    out = []
    for g in GRADS:
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(w.detach().tolist())
    return out


def test_the_reference_rules_tell_keras_from_stock_torch() -> None:
    """The tolerance is tight enough to see where torch's own rule differs from Keras's."""
    assert not close(stock_torch(torch.optim.Adam, lr=0.001, eps=1e-7), keras_adam())
    assert not close(
        stock_torch(torch.optim.RMSprop, lr=0.001, alpha=0.9, eps=1e-7), keras_rmsprop()
    )
    assert not close(
        stock_torch(torch.optim.Adagrad, lr=0.001, eps=1e-7),
        keras_adagrad(initial_accumulator_value=0),
    )
    assert not close(stock_torch(torch.optim.NAdam, lr=0.001, eps=1e-7), keras_nadam())


def test_momentum_under_a_schedule_is_in_weight_units_as_keras_keeps_it() -> None:
    # lr 0.1 for steps 0 and 1, then 0.01: Keras's velocity keeps the 0.1 of the earlier steps
    schedule = {"type": "PiecewiseConstantDecay", "boundaries": [1], "values": [0.1, 0.01]}
    kernels, _, lrs = train({"type": "SGD", "momentum": 0.9, "learning_rate": schedule})
    assert lrs == [0.1, 0.1, 0.01, 0.01]
    assert close(kernels, keras_sgd(momentum=0.9, lrs=[0.1, 0.1, 0.01]))
    # torch's SGD scales its whole buffer by the new lr: the same while lr is constant, not after
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    torch_sgd = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    for step, g in enumerate(GRADS):
        torch_sgd.param_groups[0]["lr"] = lrs[step]
        w.grad = torch.tensor(g, dtype=torch.float64)
        torch_sgd.step()
        assert close(w.tolist(), kernels[step]) == (step < 2)


def test_weight_decay_is_decoupled_and_spares_biases() -> None:
    # Keras: w -= lr * wd * w before the update, outside the momentum; biases are not decayed.
    sgd = {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.5}
    kernels, bias, _ = train(sgd)
    assert close(kernels, keras_sgd(lr=0.1, momentum=0.9, wd=0.5))
    assert bias == 0.5  # zero gradients, and no decay
    # torch's own SGD weight_decay is coupled (an L2 term through the momentum): not Keras's
    coupled = stock_torch(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=0.5)
    assert not close(kernels, coupled)
    kernels, bias, _ = train({"type": "adam", "weight_decay": 0.1})
    assert close(kernels, keras_adam(wd=0.1))
    assert bias == 0.5


def gradients_after_clipping(spec: dict, kernel: list[float], bias: float) -> tuple[list, float]:
    model = Weights()
    opt = build_optimizer(model, SPEC.validate_python(spec), steps_per_epoch=1, epochs=1)
    model.kernel.grad = torch.tensor([kernel], dtype=torch.float64)
    model.bias.grad = torch.tensor([bias], dtype=torch.float64)
    assert opt.before_step is not None
    opt.before_step()
    return model.kernel.grad[0].tolist(), model.bias.grad.item()


def test_clipnorm_clips_each_gradient_by_its_own_norm() -> None:
    # kernel gradient norm 5 -> scaled to norm 2; the bias's 0.3 is under 2 and stays
    kernel, bias = gradients_after_clipping({"type": "sgd", "clipnorm": 2.0}, [3.0, 4.0, 0.0], 0.3)
    assert (kernel, bias) == (exactly([1.2, 1.6, 0.0]), exactly(0.3))
    kernel, bias = gradients_after_clipping({"type": "sgd", "clipnorm": 2.0}, [0.0] * 3, 0.0)
    assert (kernel, bias) == ([0.0] * 3, 0.0)  # a zero gradient stays zero, no NaN


def test_global_clipnorm_clips_all_gradients_by_their_joint_norm() -> None:
    # joint norm sqrt(9 + 16 + 144) = 13 -> every gradient scaled by 1/13
    spec = {"type": "adam", "global_clipnorm": 1.0}
    kernel, bias = gradients_after_clipping(spec, [3.0, 4.0, 0.0], 12.0)
    assert (kernel, bias) == (exactly([3 / 13, 4 / 13, 0.0]), exactly(12 / 13))
    # (torch's clip_grad_norm_ divides by 13 + 1e-6: a relative 8e-8 off, caught above)
    spec["global_clipnorm"] = 20.0  # over the norm: gradients kept
    kernel, bias = gradients_after_clipping(spec, [3.0, 4.0, 0.0], 12.0)
    assert (kernel, bias) == (exactly([3.0, 4.0, 0.0]), exactly(12.0))


def test_clipvalue_clips_each_entry() -> None:
    kernel, bias = gradients_after_clipping({"type": "sgd", "clipvalue": 1.0}, [3.0, -4.0, 0.5], -2)
    assert (kernel, bias) == ([1.0, -1.0, 0.5], -1.0)


def test_clipping_happens_before_the_update() -> None:
    kernels, _, _ = train({"type": "sgd", "learning_rate": 1.0, "clipvalue": 0.25})
    assert close(kernels[0], [1.0 - 0.25, -0.5 + 1e-4, 0.25 - 0.25])


def test_keras_names_and_defaults() -> None:
    defaults = {
        "SGD": ("sgd", 0.01, {"momentum": 0.0, "nesterov": False}),
        "RMSprop": ("rmsprop", 0.001, {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}),
        "Adagrad": ("adagrad", 0.001, {"initial_accumulator_value": 0.1, "epsilon": 1e-7}),
        "Adadelta": ("adadelta", 0.001, {"rho": 0.95, "epsilon": 1e-7}),
        "Adam": ("adam", 0.001, {"beta_1": 0.9, "beta_2": 0.999, "amsgrad": False}),
        "AdamW": ("adamw", 0.001, {"weight_decay": 0.004, "epsilon": 1e-7}),
        "Nadam": ("nadam", 0.001, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
        "Adamax": ("adamax", 0.001, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    }
    for keras_name, (name, lr, extra) in defaults.items():
        spec = SPEC.validate_python(keras_name)
        assert (spec.type, spec.learning_rate) == (name, lr)
        assert {k: getattr(spec, k) for k in extra} == extra
        assert (spec.clipnorm, spec.clipvalue, spec.global_clipnorm) == (None, None, None)
    assert SPEC.validate_python("adam").weight_decay == 0.0


def refused(spec: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as e:
        SPEC.validate_python(spec)
    return [(err["loc"], err["msg"]) for err in e.value.errors()]


def test_at_most_one_clip_option() -> None:
    assert refused({"type": "adam", "clipnorm": 1, "global_clipnorm": 2}) == [
        (
            ("adam",),
            "Value error, expected at most one of clipnorm, clipvalue and global_clipnorm. "
            "Received: clipnorm=1.0, clipvalue=None, global_clipnorm=2.0",
        )
    ]
    assert "at most one" in refused({"type": "sgd", "clipnorm": 1, "clipvalue": 1})[0][1]


def test_bad_arguments_are_refused_where_they_are() -> None:
    assert refused({"type": "sgd", "learning_rate": -0.1}) == [
        (
            ("sgd", "learning_rate"),
            "Value error, expected a learning rate in (0, 1e6]. Received: -0.1",
        )
    ]
    assert refused({"type": "adam", "clipnorm": 0})[0][0] == ("adam", "clipnorm")
    assert refused({"type": "rmsprop", "rho": 1.0})[0][0] == ("rmsprop", "rho")
    assert refused({"type": "adam", "amsgrad": True, "centered": True})[0][0] == (
        "adam",
        "centered",
    )
    assert refused({"type": "Adamx"})[0][1].startswith("Input tag 'Adamx' found using 'type'")


def test_optimizer_state_and_iterations_survive_a_state_dict_round_trip() -> None:
    spec = {
        "type": "adam",
        "learning_rate": {
            "type": "exponential_decay",
            "initial_learning_rate": 0.1,
            "decay_steps": 1,
            "decay_rate": 0.5,
        },
    }
    straight, _, _ = train(spec)
    model = Weights()
    first = build_optimizer(model, SPEC.validate_python(spec), steps_per_epoch=10, epochs=1)
    for g in GRADS[:2]:
        model.kernel.grad = torch.tensor([g], dtype=torch.float64)
        first.optimizer.step()
        first.after_step()
    resumed = build_optimizer(model, SPEC.validate_python(spec), steps_per_epoch=10, epochs=1)
    resumed.optimizer.load_state_dict(first.optimizer.state_dict())
    assert resumed.optimizer.param_groups[0]["lr"] == 0.1 * 0.5**2
    model.kernel.grad = torch.tensor([GRADS[2]], dtype=torch.float64)
    resumed.optimizer.step()
    resumed.after_step()
    assert close(model.kernel.detach()[0].tolist(), straight[2])
    assert resumed.optimizer.param_groups[0]["lr"] == 0.1 * 0.5**3


def test_without_weight_decay_one_group_that_loads_a_two_group_checkpoint() -> None:
    model = Weights()
    assert (
        len(build_optimizer(model, SPEC.validate_python("adam"), **STEPS).optimizer.param_groups)
        == 1
    )
    decayed = SPEC.validate_python({"type": "adam", "weight_decay": 0.1})
    assert len(build_optimizer(model, decayed, **STEPS).optimizer.param_groups) == 2

    # A checkpoint written when every run had two groups (kernels, then the rest).
    old = torch.optim.Adam(
        [
            {"params": [model.kernel], DECAY: 0.0, ITERATIONS: 1},
            {"params": [model.bias], DECAY: 0.0, ITERATIONS: 1},
        ]
    )
    model.kernel.grad = torch.ones_like(model.kernel)
    model.bias.grad = torch.full_like(model.bias, 2.0)
    old.step()
    fresh = build_optimizer(Weights(), SPEC.validate_python("adam"), **STEPS).optimizer
    fresh.load_state_dict(merged_groups(old.state_dict(), fresh))
    kernel, bias = fresh.param_groups[0]["params"]
    assert kernel.shape == (1, 3) and bias.shape == (1,)
    torch.testing.assert_close(fresh.state[kernel]["exp_avg"], old.state[model.kernel]["exp_avg"])
    torch.testing.assert_close(fresh.state[bias]["exp_avg"], old.state[model.bias]["exp_avg"])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weight_decay": 0.01},  # two groups, decoupled decay
        {"amsgrad": True},
        {"learning_rate": {"type": "ExponentialDecay", "initial_learning_rate": 0.1,
                           "decay_steps": 1, "decay_rate": 0.5}},
    ],
)  # fmt: skip
def test_the_fused_step_updates_exactly_as_torchs_step(options: dict) -> None:
    """`Optimization.step` calls Adam's fused kernel directly; torch's `step` must give the same
    weights and state bit for bit, through a state_dict round trip too (new state tensors)."""
    spec = SPEC.validate_python({"type": "adam", **options})

    def run(direct: bool) -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        opt = build_optimizer(model, spec, steps_per_epoch=2, epochs=3)
        x = torch.randn(8, 3)
        for i in range(6):
            model.zero_grad(set_to_none=True)
            model(x).square().mean().backward()
            opt.step() if direct else opt.optimizer.step()
            if opt.after_step is not None:
                opt.after_step()
            if i == 2:  # a checkpoint restored: the state's tensors are new objects
                opt.optimizer.load_state_dict(opt.optimizer.state_dict())
        return model, opt.optimizer

    fused, fused_opt = run(direct=True)
    plain, plain_opt = run(direct=False)
    assert fused_opt.param_groups[0]["fused"]  # the fast path was open
    for a, b in zip(fused.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)
        for key, value in plain_opt.state[b].items():
            assert torch.equal(fused_opt.state[a][key], value), key
