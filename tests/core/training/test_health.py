"""`training.stop_on`: a sick network stops with a reason naming the condition, the layer and
the figure; the examples in examples/ never stop on any condition; the patience and the state
survive a checkpoint; divergence is judged on the smoothed loss."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError

from core.errors import DivergenceError
from core.settings import Settings
from core.spec import JobSpec
from core.spec.diagnostics import StopOnSpec
from core.training.callbacks import TrainState
from core.training.diagnostics import Diagnostics
from core.training.health import (
    DIVERGENCE_FACTOR,
    INITIAL_FACTOR,
    WARMUP_STEPS,
    HealthStop,
    LossWatch,
    health_callbacks,
)
from core.training.session import TrainResult, train_spec
from tests.specs import DIVERGING

CPU = torch.device("cpu")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ALL = ["exploding_gradients", "vanishing_gradients", "dead_relu", "divergence"]


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


def run(raw: dict[str, Any]) -> tuple[TrainResult, HealthStop]:
    spec = JobSpec.model_validate(raw)
    diagnostics, health = health_callbacks(spec.training, lambda *point: None)
    assert health is not None
    callbacks = [c for c in (diagnostics, health) if c is not None]
    return train_spec(spec, Settings(), device=CPU, callbacks=callbacks), health


def test_deep_sigmoid_stops_on_vanishing_gradients_with_the_reason() -> None:
    raw = example("diagnostics_deep_sigmoid.yaml")
    raw["training"]["stop_on"] = ["vanishing_gradients"]
    result, health = run(raw)
    epochs = len(result.history.epochs)
    assert epochs < raw["training"]["epochs"]
    assert health.stopped_on is not None
    assert health.stopped_on["type"] == "vanishing_gradients"
    assert health.stopped_on["layer"] == "dense_0"  # the farthest from the output
    assert health.stopped_on["epoch"] == epochs
    assert health.stopped_on["value"] < 1e-4
    reason = result.history.stop_reason
    assert reason is not None
    assert reason.startswith(f"stopped on vanishing_gradients at epoch {epochs}: dense_0's")
    assert "times the last layer's" in reason and "he_uniform" in reason


def test_patience_counts_epochs() -> None:
    raw = example("diagnostics_deep_sigmoid.yaml")
    raw["training"]["stop_on"] = {"conditions": ["vanishing_gradients"], "patience": 2}
    result, health = run(raw)
    # One measurement per epoch (25 steps, every 25): found from epoch 2 on, stops at 4.
    assert health.stopped_on is not None and health.stopped_on["epoch"] == 4
    assert len(result.history.epochs) == 4
    assert "found in 3 successive epochs" in (result.history.stop_reason or "")


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in EXAMPLES.glob("*.*")
        if p.suffix in (".yaml", ".json") and p.name != "diagnostics_deep_sigmoid.yaml"
    ),
)
def test_no_false_stop_on_the_examples(name: str) -> None:
    """Every example but the deep sigmoid one (sick on purpose) runs to its end under every
    condition, for all its epochs on all its samples: late dead ReLUs or a late divergence
    count too. None is shortened: measured on a 2-core machine at load 5-7, with a
    measurement every 5 steps, the slowest are digits_cnn (30 epochs) 9.3 s, moving_dot_lrcn
    (25) 5.7 s, sine_lstm (30) 5.4 s, cosine_warmup_sgd (40) 4.8 s, regularized_dense (40)
    4.1 s; the others under 1 s."""
    raw = example(name)
    raw["training"].update(
        stop_on=ALL,
        diagnostics={"enabled": True, "every_n_steps": 5},  # many measurements to judge
    )
    result, health = run(raw)
    assert health.stopped_on is None, result.history.stop_reason
    if len(result.history.epochs) < raw["training"]["epochs"]:  # its own early stopping only
        callbacks = [c["type"] for c in raw["training"].get("callbacks", [])]
        assert "early_stopping" in callbacks, result.history.stop_reason
        assert "did not improve" in result.history.stop_reason


def test_stop_on_turns_the_diagnostics_on_at_their_every_n_steps() -> None:
    raw = example("digits_mlp.yaml")
    raw["training"]["stop_on"] = ["dead_relu"]
    training = JobSpec.model_validate(raw).training
    diagnostics, health = health_callbacks(training, lambda *point: None)
    assert diagnostics is not None and diagnostics.every_n_steps == 50
    assert health is not None
    raw["training"]["stop_on"] = ["divergence"]  # judged on the loss: no diagnostics needed
    diagnostics, health = health_callbacks(
        JobSpec.model_validate(raw).training, lambda *point: None
    )
    assert diagnostics is None and health is not None


def test_the_forms_of_stop_on() -> None:
    raw = example("digits_mlp.yaml")
    raw["training"]["stop_on"] = ["divergence", "dead_relu"]
    spec = JobSpec.model_validate(raw).training.stop_on
    assert spec == StopOnSpec(conditions=["divergence", "dead_relu"], patience=0)
    raw["training"]["stop_on"] = ["overfitting"]
    with pytest.raises(ValidationError) as e:
        JobSpec.model_validate(raw)
    assert e.value.errors()[0]["loc"][:3] == ("training", "stop_on", "conditions")
    raw["training"]["stop_on"] = {"conditions": ["divergence"], "patience": -1}
    with pytest.raises(ValidationError):
        JobSpec.model_validate(raw)


def test_a_non_finite_loss_under_stop_on_still_fails_the_run() -> None:
    """A NaN loss leaves NaN weights: listing divergence names it (`stopped_on`, `reason`) but
    the run fails as it would without stop_on, so no NaN model is ever saved as a result."""
    raw = copy.deepcopy(DIVERGING)
    raw["training"]["stop_on"] = ["divergence"]
    spec = JobSpec.model_validate(raw)
    _, health = health_callbacks(spec.training, lambda *point: None)
    assert health is not None
    with pytest.raises(DivergenceError):
        train_spec(spec, Settings(), device=CPU, callbacks=[health])
    assert health.stopped_on is not None and health.stopped_on["type"] == "divergence"
    assert health.stopped_on["layer"] is None and not math.isfinite(health.stopped_on["value"])
    assert (health.reason or "").startswith("stopped on divergence at epoch 1: the loss became")


def test_a_finite_blow_up_stops_the_run_with_its_reason() -> None:
    """Listing divergence stops a smoothed-loss blow-up early; its weights are finite and the
    run ends as early stopping ends it."""
    raw = example("digits_mlp.yaml")
    raw["training"].update(
        stop_on=["divergence"], epochs=8, optimizer={"type": "sgd", "learning_rate": 1e6}
    )
    result, health = run(raw)  # 23 steps an epoch; the loss 1e5 times step 1's from step 2
    assert health.stopped_on is not None and health.stopped_on["type"] == "divergence"
    assert math.isfinite(health.stopped_on["value"])
    assert len(result.history.epochs) == 5  # judged from step 100, the warm-up's end
    assert "times the untrained network's" in (result.history.stop_reason or "")
    assert (result.history.stop_reason or "").startswith("stopped on divergence at epoch")
    assert all(torch.isfinite(p).all() for p in result.network.parameters())


def test_loss_watch_divergence_rule() -> None:
    watch = LossWatch()
    for _ in range(200):
        watch.add(1.0)
    for _ in range(200):
        watch.add(0.001)  # neared zero
    for _ in range(200):
        watch.add(0.01)  # ten times its lowest but far below its start: not diverged
    assert not watch.diverged()
    for _ in range(300):
        watch.add(DIVERGENCE_FACTOR * 2)
    assert watch.diverged()


def test_the_state_survives_a_checkpoint() -> None:
    spec = StopOnSpec(conditions=["divergence"], patience=3)
    health = HealthStop(spec, None)
    state = TrainState(epochs=10, steps_per_epoch=4)
    health.on_train_begin(state)
    steps = list(range(1, WARMUP_STEPS + 61))
    health.on_step_losses(state, steps, [1.0] * WARMUP_STEPS + [50.0] * 60)
    state.step, state.epoch = steps[-1], 1
    health.on_epoch_end(state, {})
    assert health.streaks == {"divergence": 1}
    again = HealthStop(spec, None)
    again.load_state_dict(copy.deepcopy(health.state_dict()))
    assert again.streaks == health.streaks
    assert again.loss.state_dict() == health.loss.state_dict()
    assert math.isclose(again.loss.smoothed, health.loss.smoothed)
    older = HealthStop(spec, None)  # a checkpoint of the exponential average: afresh
    older.load_state_dict(
        {"loss": {"average": 1.0, "count": 9, "first": 1.0, "best": 1.0}, "streaks": {}}
        | {"stopped_on": None}
    )
    assert older.loss.count == 0 and not older.loss.diverged()


def test_a_non_finite_loss_stops_at_once_whatever_the_patience() -> None:
    health = HealthStop(StopOnSpec(conditions=["divergence"], patience=5), None)
    state = TrainState(epochs=10, steps_per_epoch=4)
    health.on_train_begin(state)
    health.on_step_losses(state, [1, 2], [1.0, 0.9])
    state.step, state.epoch = 2, 1
    health.on_epoch_end(state, {})
    health.on_step_losses(state, [3, 4], [0.8, math.inf])
    assert health.stopped_on is not None
    assert health.stopped_on["step"] == 4 and health.stopped_on["epoch"] == 2
    assert health.reason is not None
    assert health.reason.startswith("stopped on divergence at epoch 2: the loss became inf")
    assert "successive" not in health.reason
    # Not a stop: the loop raises DivergenceError on the non-finite loss, the job fails.
    assert not state.stop_training and state.stop_reason is None


def test_one_early_outlier_is_not_a_divergence() -> None:
    """The warm-up: before WARMUP_STEPS losses the bias-corrected average rests on a few
    batches, and one heavy-tailed batch would count as a divergence in epoch 1."""
    health = HealthStop(StopOnSpec(conditions=["divergence"]), None)
    state = TrainState(epochs=10, steps_per_epoch=100)
    health.on_train_begin(state)
    losses = [0.1, 5.0] + [0.1] * 98  # step 2's smoothed loss: 26 times step 1's
    health.on_step_losses(state, list(range(1, 101)), losses)
    state.step, state.epoch = 100, 1
    health.on_epoch_end(state, {})
    assert health.stopped_on is None and not state.stop_training
    watch = LossWatch()
    for loss in [1.0] * WARMUP_STEPS:
        watch.add(loss)  # the warm-up's end fixes the first and lowest
    for _ in range(200):
        watch.add(DIVERGENCE_FACTOR * 2)  # a real blow-up after the warm-up still counts
    assert watch.diverged()


def blow_up(health: HealthStop) -> TrainState:
    """Epochs of 50 steps: a flat loss, then a finite blow-up from epoch 2 on (5000 times the
    initial loss), until it stops; judged from the warm-up's end, step 100 (epoch 2)."""
    state = TrainState(epochs=10, steps_per_epoch=50)
    health.on_train_begin(state)
    for epoch in range(10):
        steps = list(range(epoch * 50 + 1, epoch * 50 + 51))
        health.on_step_losses(state, steps, [1.0 if epoch == 0 else 5000.0] * 50)
        state.step, state.epoch = steps[-1], epoch + 1
        health.on_epoch_end(state, {})
        if state.stop_training:
            break
    return state


def test_a_sweeps_health_rule_is_merged_with_the_trials_stop_on() -> None:
    """The union of the conditions, each with the smaller patience of the rules listing it;
    `pruned` only when the sweep's rule (with its patience) is what is met."""
    raw = example("digits_mlp.yaml")
    raw["training"]["stop_on"] = {"conditions": ["divergence", "dead_relu"], "patience": 2}
    training = JobSpec.model_validate(raw).training
    sweep = StopOnSpec(conditions=["vanishing_gradients", "dead_relu"], patience=1)
    diagnostics, health = health_callbacks(training, lambda *point: None, sweep)
    assert diagnostics is not None and health is not None
    assert set(health.conditions) == {"divergence", "dead_relu", "vanishing_gradients"}
    assert health.patience == {"divergence": 2, "dead_relu": 1, "vanishing_gradients": 1}
    state = blow_up(health)  # found in epochs 2, 3, 4
    assert health.stopped_on is not None and health.stopped_on["type"] == "divergence"
    assert state.epoch == 4  # the trial's own patience of 2
    assert not health.pruned  # the trial's own rule: it ends as it would outside the sweep

    sweep = StopOnSpec(conditions=["divergence"], patience=0)
    _, health = health_callbacks(training, lambda *point: None, sweep)
    assert health is not None and health.patience["divergence"] == 0
    state = blow_up(health)
    assert state.epoch == 2 and health.pruned


@pytest.mark.parametrize(
    "noise",
    [
        lambda rng: rng.lognormal(0.0, 0.8, 600),
        lambda rng: rng.lognormal(0.0, 1.5, 600),
        lambda rng: (rng.standard_t(2, (600, 8)) ** 2).mean(axis=1),  # heavy-tailed MSE
        lambda rng: np.exp(-np.arange(600) / 300) * rng.lognormal(0.0, 1.0, 600),  # learning
    ],
    ids=["lognormal 0.8", "lognormal 1.5", "student-t mse", "decreasing"],
)
def test_a_healthy_noisy_loss_never_counts_as_diverged(noise: Any) -> None:
    """300 seeds of 600 steps of a steady (or falling) noisy loss: none is flagged. With the
    first and lowest values taken from step 1 on an exponential average, 47, 221, 275 and 63
    of 300 (700 steps) were."""
    flagged = []
    for seed in range(300):
        watch = LossWatch()
        for loss in noise(np.random.default_rng(seed)).tolist():
            watch.add(loss)
            if watch.diverged():
                flagged.append(seed)
                break
    assert flagged == []


def test_a_loss_that_rises_tenfold_and_stays_is_a_divergence() -> None:
    rng = np.random.default_rng(0)
    watch = LossWatch()
    for loss in rng.lognormal(0.0, 0.8, 300).tolist():
        watch.add(loss)
    assert not watch.diverged()
    risen = (10 * rng.lognormal(0.0, 0.8, 200)).tolist()
    found = next(i for i, loss in enumerate(risen, 1) if watch.add(loss) or watch.diverged())
    assert found <= WARMUP_STEPS // 2 + 10  # once the risen losses fill half the window


def test_a_loss_that_reached_zero_does_not_diverge_on_a_small_rise() -> None:
    """A hinge loss on separable data reaches exactly 0: a later 0.01 is not 4 times it."""
    watch = LossWatch()
    for loss in [1.0] * 10 + [0.0] * 200:
        watch.add(loss)
    for _ in range(WARMUP_STEPS):
        watch.add(0.01)
    assert watch.best == 0 and not watch.diverged()


def test_a_blow_up_during_the_warm_up_is_judged_against_the_untrained_loss() -> None:
    watch = LossWatch()
    watch.add(2.3)
    for _ in range(WARMUP_STEPS - 2):
        watch.add(2.3 * INITIAL_FACTOR * 2)
    assert not watch.diverged()  # not judged before the window is full
    watch.add(2.3 * INITIAL_FACTOR * 2)
    assert watch.diverged()


def test_a_trial_meeting_the_sweeps_rule_is_pruned_whatever_the_order() -> None:
    """The job's own condition (listed first) and the sweep's both due in one epoch: the
    sweep's is the one stopped on, and the trial is pruned."""
    health = HealthStop(
        StopOnSpec(conditions=["dead_relu"]),
        Diagnostics(1, lambda *point: None),
        StopOnSpec(conditions=["vanishing_gradients"]),
    )
    assert health.conditions == ["dead_relu", "vanishing_gradients"]
    state = TrainState(epochs=10, steps_per_epoch=1)
    health.on_train_begin(state)
    state.step, state.epoch = 1, 0
    health.found = {
        kind: {"type": kind, "layer": "dense_0", "step": 1, "epoch": 1, "value": 0.0}
        | {"message": "found"}
        for kind in health.conditions
    }
    health.on_epoch_end(state, {})
    assert health.stopped_on is not None
    assert health.stopped_on["type"] == "vanishing_gradients"
    assert health.pruned and state.stop_training
