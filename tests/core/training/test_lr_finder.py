"""The learning-rate finder's arithmetic and its range test, on tiny CPU tensors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from core.errors import SpecError
from core.nn.network import build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.spec.lr_finder import LrFinderSpec
from core.spec.optimizers import SGD
from core.training.loop import TensorData
from core.training.losses import LOSSES, LossOptions
from core.training.lr_finder import lr_at, range_test, suggest, valley
from core.training.objective import Objective
from core.training.optimizers import build_optimizer
from core.training.plan import plan_job
from core.training.smoothing import Smoother, diverged


def test_the_rate_grows_exponentially_from_min_to_max() -> None:
    spec = LrFinderSpec(min_lr=1e-4, max_lr=1.0, steps=5)
    rates = [lr_at(spec, i) for i in range(5)]
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1.0)
    assert [b / a for a, b in itertools.pairwise(rates)] == pytest.approx([10.0] * 4)


def test_the_smoothed_loss_is_bias_corrected() -> None:
    smoother = Smoother(0.9)
    assert [smoother.add(2.0) for _ in range(3)] == pytest.approx([2.0, 2.0, 2.0])
    smoother = Smoother(0.5)
    smoother.add(4.0)
    # (0.5·0.5·4 + 0.5·2) / (1 - 0.25) = 2 / 0.75
    assert smoother.add(2.0) == pytest.approx(2 / 0.75)


def test_divergence_is_a_multiple_of_the_best_or_a_non_finite_loss() -> None:
    assert not diverged(3.9, 1.0, 4.0)
    assert diverged(4.1, 1.0, 4.0)
    assert diverged(math.inf, 1.0, 4.0) and diverged(math.nan, 1.0, 4.0)


def test_the_suggestions_on_a_synthetic_curve() -> None:
    lrs = [10 ** (-6 + i * 0.1) for i in range(61)]  # 1e-6 … 1
    # flat, then falling fastest around 1e-3 (a tanh in log10(lr)), lowest near 1e-1, rising
    losses = [
        2 - math.tanh((math.log10(lr) + 3) * 2) + (max(0.0, math.log10(lr) + 1) * 10) ** 2
        for lr in lrs
    ]
    found = suggest(lrs, losses)
    assert found["steepest_lr"] == pytest.approx(1e-3, rel=0.3)
    assert found["min_loss_lr"] == pytest.approx(lrs[losses.index(min(losses))])
    assert found["min_lr_div_10"] == pytest.approx(found["min_loss_lr"] / 10)
    assert lrs[6] < found["valley_lr"] < found["min_loss_lr"]  # down the fall, first tenth skipped
    assert suggest(lrs[:2], losses[:2])["steepest_lr"] is None  # too short a curve


def test_the_valley_is_fastais_point_in_the_longest_fall() -> None:
    # falls over points 0..9 (a length of 10 counted from the point before, as fastai does):
    # -1 + int(10 / 3) + int(10 / 6) = 3
    assert valley(np.array([10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 2, 3])) == 3
    # the longest fall, not the first: a bump, then a longer fall from 6 to 0.5 (indices 2 to
    # 9, a length of 8 from index 1)
    losses = np.array([3.0, 2.0, 6.0, 5.0, 4.0, 3.5, 3.0, 2.5, 1.0, 0.5, 4.0])
    assert valley(losses) == 1 + int(8 / 3) + int(8 / 6)


def _tiny() -> tuple:
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = (x[:, 0] > 0).long()
    network = build_network(
        ModelSpec.model_validate({"layers": [{"type": "dense", "units": 2}]}), (3,)
    )
    network.initialize()
    objective = Objective(
        loss=LOSSES.get("sparse_categorical_crossentropy").make(LossOptions()),
        use_logits=True,
    )
    return network, objective, TensorData(x, y)


def test_the_range_test_stops_on_divergence_and_puts_the_weights_back() -> None:
    network, objective, data = _tiny()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    generator = torch.Generator().manual_seed(1)
    shuffle_state = generator.get_state()
    spec = LrFinderSpec(min_lr=1e-5, max_lr=1e4, steps=60)
    optimization = build_optimizer(
        network, SGD(type="sgd", learning_rate=spec.min_lr), steps_per_epoch=4, epochs=1
    )
    result, curve = range_test(
        network, objective, optimization, data, spec, batch_size=16, generator=generator
    )
    assert result["stopped_early"] and result["diverged_at"] == len(curve.loss) < 60
    assert curve.lr == [lr_at(spec, i) for i in range(len(curve.lr))]
    assert result["min_lr_div_10"] == pytest.approx(result["min_loss_lr"] / 10)
    assert result["suggested_lr"] == result["min_lr_div_10"]
    assert all(torch.equal(v, before[k]) for k, v in network.state_dict().items())
    assert torch.equal(generator.get_state(), shuffle_state)


SPEC = {
    "dataset": {"name": "moons", "n_samples": 100},
    "model": {"layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
    "training": {"loss": "sparse_categorical_crossentropy"},
}


def _spec(**training: object) -> JobSpec:
    return JobSpec.model_validate({**SPEC, "training": {**SPEC["training"], **training}})


def test_the_spec_takes_true_for_the_defaults_and_refuses_a_falling_range() -> None:
    assert _spec(lr_finder=True).training.lr_finder == LrFinderSpec()
    assert _spec(lr_finder={}).training.lr_finder == LrFinderSpec()
    assert _spec().training.lr_finder is None
    with pytest.raises(ValidationError, match="min_lr < max_lr"):
        _spec(lr_finder={"min_lr": 1.0, "max_lr": 0.1})


def test_a_suggested_rate_needs_the_finder() -> None:
    optimizer = {"type": "adam", "learning_rate": "suggested"}
    plan_job(_spec(optimizer=optimizer, lr_finder=True), Settings())
    with pytest.raises(SpecError) as e:
        plan_job(_spec(optimizer=optimizer), Settings())
    [issue] = e.value.issues
    assert issue.loc == ("training", "optimizer", "learning_rate") and "lr_finder" in issue.msg
    with pytest.raises(ValidationError, match="suggested"):
        _spec(optimizer={"type": "adam", "learning_rate": "sugested"})
