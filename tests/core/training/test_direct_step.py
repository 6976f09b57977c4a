"""The direct step: the gradients autograd would write, the same training, and autograd where it
does not apply."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from core.nn.network import build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.training.direct_step import DirectStep, direct_step, make_step
from core.training.loop import Objective
from core.training.losses import LOSSES, LossOptions
from core.training.session import train_spec
from core.training.steps import AutogradStep
from core.training.threads import dense_step_flops, step_threads, threads_for

CPU = torch.device("cpu")
B, FEATURES = 7, 5


def network_and_objective(
    layers: list[dict[str, Any]], loss: str, *, use_logits: bool = True, smoothing: float = 0.0
) -> tuple[Any, Objective]:
    torch.manual_seed(0)
    network = build_network(ModelSpec.model_validate({"layers": layers}), (FEATURES,))
    network.initialize()
    objective = Objective(LOSSES.get(loss).make(LossOptions(label_smoothing=smoothing)), use_logits)
    return network, objective


def targets(loss: str, units: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    if loss == "sparse_categorical_crossentropy":
        return torch.randint(0, units, (B,), generator=g)
    if loss == "categorical_crossentropy":
        return torch.nn.functional.one_hot(
            torch.randint(0, units, (B,), generator=g), units
        ).float()
    if loss == "binary_crossentropy":
        return torch.randint(0, 2, (B, units), generator=g).float()
    return torch.randn(B, units, generator=g)


OUTPUTS = [  # (loss, output activation, units, whether the loss reads logits, label smoothing)
    ("sparse_categorical_crossentropy", "softmax", 4, True, 0.0),
    ("categorical_crossentropy", "softmax", 4, True, 0.1),
    ("categorical_crossentropy", "linear", 4, True, 0.0),  # from_logits on a linear output
    ("binary_crossentropy", "sigmoid", 1, True, 0.2),
    ("mean_squared_error", "linear", 3, False, 0.0),
]


@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid", "linear", "leaky_relu", "elu"])
@pytest.mark.parametrize(("loss", "output", "units", "use_logits", "smoothing"), OUTPUTS)
def test_the_direct_step_writes_autograds_loss_and_gradients(
    hidden: str, loss: str, output: str, units: int, use_logits: bool, smoothing: float
) -> None:
    layers = [
        {"type": "dense", "units": 6, "activation": hidden},
        {"type": "dense", "units": 5, "activation": hidden, "use_bias": False},
        {"type": "dense", "units": units, "activation": output},
    ]
    network, objective = network_and_objective(
        layers, loss, use_logits=use_logits, smoothing=smoothing
    )
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    direct, why = direct_step(network, objective, optimizer)
    assert direct is not None, why
    x, y = (
        torch.randn(B, FEATURES, generator=torch.Generator().manual_seed(2)),
        targets(loss, units),
    )
    expected = AutogradStep(network, objective, optimizer)(x, y)
    expected_grads = [p.grad.clone() for p in network.parameters()]
    for p in network.parameters():
        p.grad = torch.full_like(p, 7.0)  # stale values the step must overwrite, not add to
    got = direct(x, y)
    torch.testing.assert_close(got.loss, expected.loss)
    torch.testing.assert_close(got.logits, expected.logits)
    for p, grad in zip(network.parameters(), expected_grads, strict=True):
        torch.testing.assert_close(p.grad, grad)


def test_dropout_draws_the_same_mask_as_autograd_and_scales_by_one_over_keep() -> None:
    layers = [
        {"type": "dense", "units": 32, "activation": "relu"},
        {"type": "dropout", "rate": 0.3},
        {"type": "dense", "units": 4, "activation": "softmax"},
    ]
    network, objective = network_and_objective(layers, "sparse_categorical_crossentropy")
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    direct, _ = direct_step(network, objective, optimizer)
    assert isinstance(direct, DirectStep)
    x, y = torch.randn(B, FEATURES), targets("sparse_categorical_crossentropy", 4)
    network.train()
    torch.manual_seed(5)
    expected = AutogradStep(network, objective, optimizer)(x, y)
    expected_grads = [p.grad.clone() for p in network.parameters()]
    torch.manual_seed(5)
    got = direct(x, y)
    torch.testing.assert_close(got.loss, expected.loss)
    for p, grad in zip(network.parameters(), expected_grads, strict=True):
        torch.testing.assert_close(p.grad, grad)
    network.eval()  # no dropout: the logits are those of the plain forward pass
    torch.testing.assert_close(direct(x, y).logits, network.logits(x))


@pytest.mark.parametrize(
    ("layers", "loss", "use_logits", "why"),
    [
        (
            [
                {
                    "type": "dense",
                    "units": 4,
                    "activation": "relu",
                    "kernel_regularizer": {"l2": 0.01},
                }
            ],
            "mean_squared_error",
            False,
            "regularizers",
        ),
        (
            [{"type": "dense", "units": 4}, {"type": "batch_normalization"}],
            "mean_squared_error",
            False,
            "BatchNormalization",
        ),
        (
            [{"type": "dense", "units": 4, "activation": "gelu"}],
            "mean_squared_error",
            False,
            "GELU",
        ),
        ([{"type": "dense", "units": 4}], "mean_absolute_error", False, "loss"),
        (
            [{"type": "dense", "units": 4, "activation": "softmax"}],
            "mean_squared_error",
            False,
            "loss",
        ),
        (
            [{"type": "gaussian_noise", "stddev": 0.1}, {"type": "dense", "units": 4}],
            "mean_squared_error",
            False,
            "GaussianNoise",
        ),
    ],
)
def test_what_the_direct_step_does_not_cover_trains_with_autograd(
    layers: list[dict[str, Any]], loss: str, use_logits: bool, why: str, caplog: Any
) -> None:
    network, objective = network_and_objective(layers, loss, use_logits=use_logits)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    step, reason = direct_step(network, objective, optimizer)
    assert step is None and why in reason
    with caplog.at_level(logging.DEBUG, logger="core.training.direct_step"):
        assert isinstance(make_step(network, objective, optimizer, "auto"), AutogradStep)
    assert why in caplog.text


def test_step_autograd_never_takes_the_direct_step() -> None:
    network, objective = network_and_objective(
        [{"type": "dense", "units": 4}], "mean_squared_error", use_logits=False
    )
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    assert isinstance(make_step(network, objective, optimizer, "auto"), DirectStep)
    assert isinstance(make_step(network, objective, optimizer, "autograd"), AutogradStep)


def digits_spec(step: str, dropout: float, **training: Any) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "digits", "validation_split": 0.2},
            "model": {
                "layers": [
                    {"type": "dense", "units": 32, "activation": "relu"},
                    {"type": "dropout", "rate": dropout},
                    {"type": "dense", "units": 10, "activation": "softmax"},
                ]
            },
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "optimizer": {"type": "adam", "clipnorm": 1.0},
                "batch_size": 64,
                "epochs": 3,
                "metrics": ["accuracy"],
                "seed": 3,
                "step": step,
                **training,
            },
        }
    )


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_training_with_either_step_gives_the_same_history(dropout: float) -> None:
    """Dropout too: the direct step draws its masks from torch's generator as the Dropout layer
    does (core.nn.dropout.keep_mask)."""
    direct = train_spec(digits_spec("auto", dropout), Settings(), device=CPU)
    autograd = train_spec(digits_spec("autograd", dropout), Settings(), device=CPU)
    assert len(direct.history.epochs) == len(autograd.history.epochs) == 3
    for a, b in zip(direct.history.epochs, autograd.history.epochs, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    assert direct.history.epochs[-1]["val_accuracy"] > 0.5  # it learns
    for name, p in direct.network.state_dict().items():
        torch.testing.assert_close(p, autograd.network.state_dict()[name], rtol=1e-4, atol=1e-5)


def test_the_step_field_is_auto_by_default_and_refuses_other_names() -> None:
    assert digits_spec("auto", 0.0).training.step == "auto"
    spec = digits_spec("auto", 0.0).model_dump()
    del spec["training"]["step"]
    assert JobSpec.model_validate(spec).training.step == "auto"
    with pytest.raises(ValidationError, match="autograd"):
        digits_spec("compiled", 0.0)


def test_small_dense_networks_take_one_thread_and_the_process_setting_comes_back() -> None:
    network, _ = network_and_objective([{"type": "dense", "units": 4}], "mean_squared_error")
    assert dense_step_flops(network, 10) == 6 * 10 * FEATURES * 4
    assert threads_for(1e3, 8) == 1 and threads_for(1e12, 8) == 8 and threads_for(None, 3) == 3
    before = torch.get_num_threads()
    with step_threads(network, 10, CPU) as threads:
        assert threads == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_convolutions_are_not_counted() -> None:
    layers = [
        {"type": "reshape", "target_shape": [5, 1]},
        {"type": "conv1d", "filters": 2, "kernel_size": 3},
    ]
    network, _ = network_and_objective(layers, "mean_squared_error")
    assert dense_step_flops(network, 10) is None


def test_a_step_watched_by_a_forward_hook_runs_the_modules() -> None:
    """Diagnostics read activations through forward hooks on the steps they measure."""
    layers = [{"type": "dense", "units": 6, "activation": "relu"}, {"type": "dense", "units": 3}]
    network, objective = network_and_objective(layers, "mean_squared_error", use_logits=False)
    step = make_step(network, objective, torch.optim.SGD(network.parameters(), lr=0.1), "auto")
    seen: list[torch.Tensor] = []
    handle = network.body[1].register_forward_hook(lambda m, i, out: seen.append(out))
    x, y = torch.randn(B, FEATURES), targets("mean_squared_error", 3)
    step(x, y)
    handle.remove()
    step(x, y)
    assert len(seen) == 1 and seen[0].shape == (B, 6)


def test_a_step_under_autocast_goes_through_autograd() -> None:
    layers = [{"type": "dense", "units": 6, "activation": "relu"}, {"type": "dense", "units": 3}]
    network, objective = network_and_objective(layers, "mean_squared_error", use_logits=False)
    step = make_step(network, objective, torch.optim.SGD(network.parameters(), lr=0.1), "auto")
    x, y = torch.randn(B, FEATURES), targets("mean_squared_error", 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = step(x, y)
    assert result.logits.dtype == torch.bfloat16  # the modules ran, in autocast
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in network.parameters())
