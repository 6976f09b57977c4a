"""Training diagnostics on real tiny runs: what is measured, when, and which warnings each kind
of sick network raises (and a healthy one does not)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from core.data import DATASETS
from core.data.base import split
from core.errors import DivergenceError
from core.nn.network import build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.training.callbacks import Callback, TrainState
from core.training.diagnostics import (
    Diagnostics,
    activation_stats,
    exploding_layers,
    vanishing_layers,
)
from core.training.session import train_spec

CPU = torch.device("cpu")
Point = tuple[str, int, int, float]


def job(
    dataset: dict[str, Any], layers: list[dict[str, Any]], loss: str, **training: Any
) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": dataset,
            "model": {"layers": layers},
            "training": {"loss": loss, "seed": 0, **training},
        }
    )


def diagnose(
    spec: JobSpec, every_n_steps: int, *extra: Callback
) -> tuple[Diagnostics, list[Point]]:
    points: list[Point] = []
    diag = Diagnostics(every_n_steps, lambda *point: points.append(point))
    train_spec(spec, Settings(), device=CPU, callbacks=[diag, *extra])
    return diag, points


def series(points: list[Point], name: str) -> dict[int, float]:
    return {step: value for n, step, _, value in points if n == name}


def kinds(diag: Diagnostics, kind: str) -> list[str]:
    return [w["layer"] for w in diag.warnings if w["type"] == kind]


class Initial(Callback):
    """Keeps a copy of the weights the run starts from."""

    def on_train_begin(self, state: TrainState) -> None:
        self.params = [p.detach().clone() for p in state.network.parameters()]


def test_values_match_a_hand_computed_step() -> None:
    spec = job(
        {"name": "regression", "n_samples": 64, "features": 3},
        [
            {"type": "dense", "units": 8, "activation": "relu", "name": "hidden"},
            {"type": "dense", "units": 1, "name": "out"},
        ],
        "mean_squared_error",
        optimizer={"type": "sgd", "learning_rate": 0.05},
        batch_size=64,  # one step per epoch, on every sample in order
        shuffle=False,
        epochs=2,
    )
    initial = Initial()
    _, points = diagnose(spec, 1, initial)
    train, _ = split(DATASETS.get("regression").load(spec.dataset), 0.0, spec.dataset.seed)
    x, t = torch.from_numpy(train.x).double(), torch.from_numpy(train.y).double()
    w1, b1, w2, b2 = (p.double() for p in initial.params)
    # Forward and backward by hand: loss = mean((y - t)^2) over the 64 samples.
    z = x @ w1.T + b1
    h = z.clamp(min=0)
    dy = 2 * (h @ w2.T + b2 - t) / 64
    dz = (dy @ w2) * (z > 0)
    grads = {"hidden": [dz.T @ x, dz.sum(0)], "out": [dy.T @ h, dy.sum(0)]}
    weights = {"hidden": [w1, b1], "out": [w2, b2]}
    for layer in ("hidden", "out"):
        g = math.sqrt(sum(float((a**2).sum()) for a in grads[layer]))
        w = math.sqrt(sum(float((a**2).sum()) for a in weights[layer]))
        assert series(points, f"diag/grad_norm/{layer}")[1] == pytest.approx(g, rel=1e-5)
        # plain SGD moves the weights by lr · gradient
        assert series(points, f"diag/update_ratio/{layer}")[1] == pytest.approx(
            0.05 * g / w, rel=1e-4
        )
    n = h.numel()
    mean = float(h.sum()) / n
    assert series(points, "diag/activation_mean/hidden")[1] == pytest.approx(mean, rel=1e-5)
    std = math.sqrt(float((h**2).sum()) / n - mean**2)
    assert series(points, "diag/activation_std/hidden")[1] == pytest.approx(std, rel=1e-4)
    dead = sum(all(float(v) == 0.0 for v in h[:, j]) for j in range(8)) / 8
    assert series(points, "diag/dead_fraction/hidden")[1] == dead
    # the output layer is linear: no activation series for it
    assert {n for n, *_ in points if n.endswith("/out")} == {
        "diag/grad_norm/out",
        "diag/update_ratio/out",
    }
    assert {(step, epoch) for _, step, epoch, _ in points} == {(1, 1), (2, 2)}


class HookWatch(Callback):
    """After Diagnostics' own hooks ran: the steps after which forward hooks are attached."""

    def __init__(self) -> None:
        self.armed_after: list[int] = []
        self.hooks_at_end = -1

    def on_batch_end(self, state: TrainState) -> None:
        if any(m._forward_hooks for m in state.network.modules()):
            self.armed_after.append(state.step)

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.hooks_at_end = sum(len(m._forward_hooks) for m in state.network.modules())


def test_only_every_nth_step_is_measured_and_hooks_are_attached_only_for_it() -> None:
    spec = job(
        {"name": "xor", "n_samples": 400, "validation_split": 0.25},  # 300 samples: 10 steps/epoch
        [
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ],
        "binary_crossentropy",
        batch_size=32,
        epochs=3,
    )
    watch = HookWatch()
    _, points = diagnose(spec, 7, watch)
    measured = [1, 8, 15, 22, 29]  # the first step, then every 7th, of 30
    names = {
        "diag/grad_norm/dense_0",
        "diag/grad_norm/dense_1",
        "diag/update_ratio/dense_0",
        "diag/update_ratio/dense_1",
        "diag/activation_mean/dense_0",
        "diag/activation_std/dense_0",
        "diag/saturated_fraction/dense_0",
    }  # the output sigmoid is the head's: its saturation is a confident prediction, not a fault
    assert {n for n, *_ in points} == names
    for name in names:
        assert sorted(series(points, name)) == measured
    assert sorted({(s, e) for _, s, e, _ in points}) == [(1, 1), (8, 1), (15, 2), (22, 3), (29, 3)]
    assert watch.armed_after == [7, 14, 21, 28]
    assert watch.hooks_at_end == 0


def sigmoid_stack(depth: int) -> list[dict[str, Any]]:
    hidden = {"type": "dense", "units": 16, "activation": "sigmoid"}
    return [{**hidden, "kernel_initializer": "random_normal"} for _ in range(depth)] + [
        {"type": "dense", "units": 1, "activation": "sigmoid"}
    ]


def vanishing_job() -> JobSpec:
    # Each sigmoid layer scales the gradient by at most 0.25 · ‖W‖, with ‖W‖ small (stddev 0.05)
    return job(
        {"name": "moons", "n_samples": 320},
        sigmoid_stack(10),
        "binary_crossentropy",
        optimizer={"type": "sgd", "learning_rate": 0.1},
        epochs=1,
    )


def test_findings_are_kept_only_for_a_consumer() -> None:
    """Every finding of every measurement is kept for `take_findings` once a consumer asked
    (HealthStop, which drains them each epoch); without one, nothing accumulates."""
    diag, _ = diagnose(vanishing_job(), 4)
    assert diag.warnings and diag.take_findings() == []
    kept = Diagnostics(4, lambda *point: None)
    kept.keep_findings()
    train_spec(vanishing_job(), Settings(), device=CPU, callbacks=[kept])
    found = kept.take_findings()
    assert len(found) > len(kept.warnings) and kept.take_findings() == []


def test_a_deep_sigmoid_stack_with_small_weights_has_vanishing_gradients() -> None:
    diag, points = diagnose(vanishing_job(), 4)
    vanishing = kinds(diag, "vanishing_gradients")
    assert "dense_0" in vanishing
    assert "dense_10" not in vanishing  # the last layer is the reference
    assert "dense_9" not in vanishing  # next to the output, gradients are still healthy
    first = next(w for w in diag.warnings if w["layer"] == "dense_0")
    assert first["step"] == 5  # the second measurement: one reading is not enough
    assert "dense_0" in first["message"]
    assert (
        series(points, "diag/grad_norm/dense_0")[5]
        < 1e-4 * (series(points, "diag/grad_norm/dense_10")[5])
    )
    assert kinds(diag, "exploding_gradients") == []


def test_huge_weights_and_a_high_learning_rate_explode_before_the_loss_does() -> None:
    # Every weight 1: each layer multiplies the signal by its fan-in, and SGD overshoots.
    ones = {"type": "dense", "units": 32, "kernel_initializer": "ones"}
    spec = job(
        {"name": "regression", "n_samples": 200, "features": 4},
        [ones, ones, ones, {"type": "dense", "units": 1, "kernel_initializer": "ones"}],
        "mean_squared_error",
        optimizer={"type": "sgd", "learning_rate": 0.01},
        epochs=3,
    )
    points: list[Point] = []
    diag = Diagnostics(1, lambda *point: points.append(point))
    with pytest.raises(DivergenceError):
        train_spec(spec, Settings(), device=CPU, callbacks=[diag])
    exploding = kinds(diag, "exploding_gradients")
    assert exploding == ["dense_0", "dense_1", "dense_2", "dense_3"]
    assert {w["step"] for w in diag.warnings if w["type"] == "exploding_gradients"} == {2}
    assert math.isfinite(series(points, "diag/grad_norm/dense_0")[1])
    assert not math.isfinite(series(points, "diag/grad_norm/dense_0")[2])


def test_a_learning_rate_too_high_for_relu_layers_is_flagged_as_gradients_grow() -> None:
    relu = {"type": "dense", "units": 32, "activation": "relu", "kernel_initializer": "he_uniform"}
    spec = job(
        {"name": "regression", "n_samples": 200, "features": 4},
        [relu, relu, relu, {"type": "dense", "units": 1}],
        "mean_squared_error",
        optimizer={"type": "sgd", "learning_rate": 0.3},
        epochs=2,
    )
    losses: list[float] = []

    class Losses(Callback):
        def on_step_losses(self, state: TrainState, steps: list[int], values: list[float]) -> None:
            losses.extend(values)

    points: list[Point] = []
    diag = Diagnostics(1, lambda *point: points.append(point))
    with pytest.raises(DivergenceError):
        train_spec(spec, Settings(), device=CPU, callbacks=[diag, Losses()])
    warned = [w for w in diag.warnings if w["type"] == "exploding_gradients"]
    assert warned
    first_bad_loss = next(i + 1 for i, v in enumerate(losses) if not math.isfinite(v))
    early = min(warned, key=lambda w: w["step"])
    assert early["step"] < first_bad_loss  # a warning before the loss is lost
    # raised by a finite norm's growth or size, not by a NaN
    assert math.isfinite(series(points, f"diag/grad_norm/{early['layer']}")[early["step"]])


def test_relus_killed_by_the_first_step_are_reported_dead() -> None:
    # breast_cancer's features are all positive and large (unscaled). The output's kernel is all
    # ones, so the prediction is confidently "1" and every sample of class 0 pushes every live
    # unit's weights down by lr · x, hundreds at a time: within a few steps no unit is positive
    # on any sample, and a unit that is never positive gets no gradient to come back.
    spec = job(
        {"name": "breast_cancer"},
        [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "sigmoid", "kernel_initializer": "ones"},
        ],
        "binary_crossentropy",
        optimizer={"type": "sgd", "learning_rate": 0.01},
        epochs=2,  # 18 steps per epoch
    )
    diag, points = diagnose(spec, 5)
    dead = series(points, "diag/dead_fraction/dense_0")
    assert all(dead[s] == 1.0 for s in (21, 26, 31, 36))
    assert max(dead[s] for s in (6, 11, 16)) > 0.5  # already in the first epoch, but not judged
    warning = next(w for w in diag.warnings if w["type"] == "dead_relu")
    assert warning["layer"] == "dense_0"
    assert warning["step"] == 21  # the first measurement after the first epoch
    assert "100%" in warning["message"]
    assert kinds(diag, "dead_relu") == ["dense_0"]  # once per layer, though seen at every step


def healthy(output_kernel: str = "glorot_uniform", epochs: int = 6) -> JobSpec:
    return job(
        {"name": "moons", "n_samples": 400, "validation_split": 0.2},  # 10 steps per epoch
        [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "dense", "units": 16, "activation": "tanh"},
            {
                "type": "dense",
                "units": 1,
                "activation": "sigmoid",
                "kernel_initializer": output_kernel,
            },
        ],
        "binary_crossentropy",
        optimizer={"type": "adam", "learning_rate": 0.01},
        epochs=epochs,
    )


def test_a_healthy_mlp_raises_no_warning() -> None:
    diag, points = diagnose(healthy(), 5)
    assert diag.warnings == []
    assert len(series(points, "diag/grad_norm/dense_0")) == math.ceil(6 * 10 / 5)
    assert all(0 < v < 0.5 for v in series(points, "diag/update_ratio/dense_1").values())
    assert max(series(points, "diag/dead_fraction/dense_0").values()) < 0.5


def test_a_zero_initialized_output_layer_is_not_a_vanishing_gradient() -> None:
    diag, points = diagnose(healthy(output_kernel="zeros", epochs=1), 1)
    first = series(points, "diag/grad_norm/dense_0")
    assert first[1] == 0.0  # nothing flows back through a zero kernel at the first step...
    assert first[2] > 0.0  # ...and after one update it does
    assert diag.warnings == []


def test_warnings_survive_a_resume() -> None:
    diag, _ = diagnose(
        job(
            {"name": "moons", "n_samples": 160},
            sigmoid_stack(8),
            "binary_crossentropy",
            optimizer="sgd",
        ),
        1,
    )
    resumed = Diagnostics(1, lambda *point: None)
    resumed.load_state_dict(diag.state_dict())
    assert resumed.warnings == diag.warnings != []


def test_layers_are_named_after_the_layer_that_applies_them() -> None:
    spec = job(
        {"name": "moons"},
        [
            {"type": "dense", "units": 4},
            {"type": "activation", "activation": "relu"},
            {"type": "dense", "units": 4, "activation": "tanh", "name": "h"},
            {"type": "dropout", "rate": 0.1},
            {"type": "dense", "units": 4, "activation": "relu", "activity_regularizer": {"l1": 1}},
            {"type": "activation", "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "sparse_categorical_crossentropy",
    )
    network = build_network(spec.model, (2,))
    assert network.module_layers == [
        "dense_0",
        "activation_1",  # dense_0 is linear: the relu is the activation layer's
        "h",
        "h",
        "dropout_3",
        "dense_4",
        "dense_4",  # dense_4's own relu, then its activity penalty
        "dense_4",
        "activation_5",
        "dense_6",
    ]
    leading = job(
        {"name": "moons"},
        [{"type": "activation", "activation": "tanh"}, {"type": "dense", "units": 1}],
        "mean_squared_error",
    )
    assert build_network(leading.model, (2,)).module_layers == ["activation_0", "dense_1"]


def test_layer_names_must_be_unique_so_each_series_names_one_layer() -> None:
    with pytest.raises(ValidationError, match="layer names must be unique; repeated: h"):
        ModelSpec.model_validate(
            {
                "layers": [
                    {"type": "dense", "units": 4, "name": "h"},
                    {"type": "dense", "units": 4, "name": "h"},
                ]
            }
        )


def test_dead_and_saturated_units_as_defined() -> None:
    relu = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert activation_stats(nn.ReLU(), relu).tolist() == pytest.approx(
        [0.5, math.sqrt(5 / 6 - 0.5**2), 1 / 3]  # only the first unit is zero for every sample
    )
    # a unit is saturated when more than half of the samples are: 3/4 yes, 2/4 no
    tanh = torch.tensor(
        [[0.995, 0.1, -0.999], [0.999, 0.2, 0.5], [0.5, 0.3, -0.995], [-0.9999, 0.0, 0.0]]
    )
    assert activation_stats(nn.Tanh(), tanh)[2].item() == pytest.approx(1 / 3)
    sigmoid = torch.tensor([[0.005, 0.5], [0.995, 0.5], [0.2, 0.999]])  # both ends count
    assert activation_stats(nn.Sigmoid(), sigmoid)[2].item() == pytest.approx(1 / 2)
    assert len(activation_stats(nn.GELU(), sigmoid)) == 2  # mean and std only


def test_gradient_judgements_are_relative_to_the_last_layer_and_the_first_reading() -> None:
    assert vanishing_layers({"a": 1e-6, "b": 1e-3, "out": 1.0}) == {"a": 1e-6}
    assert vanishing_layers({"a": 1e-6, "out": 0.0}) == {}  # no reference, no judgement
    assert list(exploding_layers({"a": 2e4, "b": 1.0, "out": 1.0}, {})) == ["a"]
    assert list(exploding_layers({"a": math.nan, "out": 1.0}, {})) == ["a"]
    first = {"a": (1, 1e-3), "out": (1, 1.0)}
    # a layer recovering from a vanishing gradient grows 5000-fold but stays below the output's
    assert exploding_layers({"a": 5.0, "out": 10.0}, first) == {}
    assert list(exploding_layers({"a": 50.0, "out": 10.0}, first)) == ["a"]
    assert list(exploding_layers({"a": 1.0, "out": 2e3}, first)) == ["out"]
