"""A sweep may start with the learning-rate finder: each trial finds its own rate."""

from __future__ import annotations

import pytest

from core.settings import Settings
from core.spec import JobSpec
from core.sweeps.plan import build_trial, plan_sweep
from core.sweeps.spec import SweepError, SweepSpec
from tests.core.sweeps.helpers import sweep_spec


def _finder_sweep(**training: object) -> dict:
    spec = sweep_spec(parameters={"model.layers[0].units": {"values": [4, 8]}})
    spec["base"]["training"]["optimizer"] = {"type": "adam", "learning_rate": "suggested"}
    spec["base"]["training"].update(training)
    return spec


def test_a_sweep_whose_base_takes_the_suggested_rate_plans_its_trials() -> None:
    plan = plan_sweep(SweepSpec.model_validate(_finder_sweep(lr_finder=True)), Settings())
    trial = JobSpec.model_validate(
        build_trial(plan.spec, plan.base, {"model.layers[0].units": 8}, number=1)
    )
    assert trial.training.optimizer.learning_rate == "suggested"
    assert trial.training.lr_finder is not None


def test_a_sweep_with_a_suggested_rate_and_no_finder_is_refused() -> None:
    with pytest.raises(SweepError, match="lr_finder"):
        plan_sweep(SweepSpec.model_validate(_finder_sweep()), Settings())


def test_a_sweep_whose_trials_would_only_test_the_rate_is_refused_at_the_parameter() -> None:
    spec = _finder_sweep(lr_finder=True)
    spec["parameters"]["training.optimizer.learning_rate"] = {"values": [0.01, 0.1]}
    with pytest.raises(SweepError) as e:
        plan_sweep(SweepSpec.model_validate(spec), Settings())
    [issue] = e.value.issues
    assert issue.loc == ("parameters", "training.optimizer.learning_rate")
    assert "range test alone" in issue.msg
