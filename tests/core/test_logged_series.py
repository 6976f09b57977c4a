"""Which series a run logs per epoch: one answer (`core.series.epoch_series`, its scores) for
what a callback may monitor and what a sweep may optimize, and it is what `fit` logs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from core.errors import SpecError
from core.series import VALIDATION_HINT, epoch_series, scores
from core.settings import Settings
from core.spec import JobSpec
from core.sweeps.plan import plan_sweep
from core.sweeps.spec import SweepError, SweepSpec
from core.training.plan import plan_job
from core.training.session import train_spec
from tests.specs import moons_mlp

# Moons to train on, and the default moons (another seed's draw) as a separate validation set.
SEPARATE = {"name": "moons", "n_samples": 200, "seed": 1, "validation": "moons"}


def job(dataset: dict[str, Any], **training: Any) -> dict[str, Any]:
    raw = moons_mlp(epochs=2)
    raw["dataset"] = dataset
    raw["training"].update(training)
    return raw


def early_stopping(monitor: str, mode: str = "auto") -> dict[str, Any]:
    return {"type": "EarlyStopping", "monitor": monitor, "mode": mode, "patience": 1}


def refusals(raw: dict[str, Any]) -> dict[tuple, str]:
    with pytest.raises(SpecError) as caught:
        plan_job(JobSpec.model_validate(raw), Settings())
    return {i.loc: i.msg for i in caught.value.issues}


def sweep(base: dict[str, Any], metric: str, goal: str = "maximize") -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "base": base,
            "method": "grid",
            "metric": {"name": metric, "goal": goal},
            "parameters": {"training.optimizer.learning_rate": {"values": [0.01, 0.1]}},
        }
    )


def test_a_separate_validation_set_logs_val_series_a_callback_may_monitor() -> None:
    raw = job(SEPARATE, epochs=30, callbacks=[early_stopping("val_loss")])
    spec = JobSpec.model_validate(raw)
    plan = plan_job(spec, Settings())  # refused before: "set dataset.validation_split"
    assert "val_loss" in plan.series
    result = train_spec(spec, Settings(), device=torch.device("cpu"))
    assert result.val_samples == 1000 and result.train_samples == 200
    assert all(epoch["val_loss"] >= 0 for epoch in result.history.epochs)
    assert len(result.history.epochs) <= 30


def test_a_sweep_may_optimize_a_val_series_of_a_separate_validation_set() -> None:
    plan = plan_sweep(sweep(job(SEPARATE), "val_accuracy"), Settings())
    assert plan.run_cap == 2


def test_without_validation_data_val_series_are_refused_with_both_ways_to_get_them() -> None:
    alone = {"name": "moons", "n_samples": 200}
    found = refusals(job(alone, callbacks=[early_stopping("val_loss")]))
    message = found[("training", "callbacks", 0, "monitor")]
    assert "does not log" in message and message.endswith(VALIDATION_HINT)
    assert "dataset.validation_split" in message and "dataset.validation " in message
    with pytest.raises(SweepError) as caught:
        plan_sweep(sweep(job(alone), "val_accuracy"), Settings())
    [issue] = caught.value.issues
    assert issue.loc == ("metric", "name") and issue.msg.endswith(VALIDATION_HINT)
    # With validation data, an unknown val_ series is refused without the hint.
    found = refusals(job(SEPARATE, callbacks=[early_stopping("val_auc")]))
    assert VALIDATION_HINT not in found[("training", "callbacks", 0, "monitor")]


REGULARIZED = [
    {"type": "dense", "units": 8, "activation": "relu", "kernel_regularizer": {"l2": 0.01}},
    {"type": "dense", "units": 2, "activation": "softmax"},
]
ACTIVITY = [
    {"type": "dense", "units": 8, "activation": "relu", "activity_regularizer": {"l1": 0.01}},
    {"type": "dense", "units": 2, "activation": "softmax"},
]
CASES = {
    "no-validation": job({"name": "moons", "n_samples": 200}),
    "split": job({"name": "moons", "n_samples": 200, "validation_split": 0.25}),
    "separate": job(SEPARATE, metrics=["accuracy", "auc", "accuracy"]),
    "regularized": {**job(SEPARATE), "model": {"layers": REGULARIZED}},
    "activity-no-validation": {
        **job({"name": "moons", "n_samples": 200}),
        "model": {"layers": ACTIVITY},
    },
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
def test_callbacks_and_sweeps_accept_exactly_the_series_fit_logs(raw: dict[str, Any]) -> None:
    """If the callbacks' check and the sweeps' check ever answer apart again, or either apart
    from what a run really logs, this fails."""
    spec = JobSpec.model_validate(raw)
    plan = plan_job(spec, Settings())
    logged = train_spec(spec, Settings(), device=torch.device("cpu")).history.epochs
    assert all(list(epoch) == list(plan.series) for epoch in logged)
    regularized = raw["model"]["layers"] in (REGULARIZED, ACTIVITY)
    assert list(plan.series) == epoch_series(spec, regularized=regularized)
    candidates = {*plan.series, "val_loss", "val_accuracy", "regularization_loss", "auc", "mse"}
    for name in sorted(candidates):
        monitored = copy.deepcopy(raw)
        monitored["training"]["callbacks"] = [early_stopping(name, mode="min")]
        try:
            plan_job(JobSpec.model_validate(monitored), Settings())
            callback_accepts = True
        except SpecError:
            callback_accepts = False
        try:
            plan_sweep(sweep(raw, name, goal="minimize"), Settings())
            sweep_accepts = True
        except SweepError:
            sweep_accepts = False
        assert callback_accepts == sweep_accepts == (name in scores(plan.series)), name


def test_the_learning_rate_is_logged_but_neither_monitored_nor_optimized() -> None:
    """`lr` has no best value: early stopping or a checkpoint on it, or a sweep ranking trials
    by it, would act on the schedule, not on how well the model learns."""
    raw = job({"name": "moons", "n_samples": 200, "validation_split": 0.25})
    assert "lr" in plan_job(JobSpec.model_validate(raw), Settings()).series
    choose = "choose one of: loss, accuracy, val_loss, val_accuracy"
    for callback in (
        early_stopping("lr", mode="min"),
        {"type": "ModelCheckpoint", "filepath": "best.keras", "monitor": "lr", "mode": "max"},
    ):
        found = refusals({**raw, "training": {**raw["training"], "callbacks": [callback]}})
        message = found[("training", "callbacks", 0, "monitor")]
        assert "cannot monitor 'lr': it is the learning rate" in message, message
        assert message.endswith(choose)
    with pytest.raises(SweepError) as caught:
        plan_sweep(sweep(raw, "lr", goal="minimize"), Settings())
    [issue] = caught.value.issues
    assert issue.loc == ("metric", "name")
    assert issue.msg.startswith("a sweep cannot optimize 'lr'") and issue.msg.endswith(choose)
