"""EarlyStopping and ReduceLROnPlateau against scripted metric sequences, with Keras's semantics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.errors import SpecError
from core.settings import Settings
from core.spec import JobSpec
from core.spec.callbacks import EarlyStopping as ES
from core.spec.callbacks import ReduceLROnPlateau as RLROP
from core.training.callbacks import TrainState
from core.training.early_stopping import EarlyStopping
from core.training.plan import plan_job
from core.training.plateau import ReduceLROnPlateau
from core.training.session import train_spec


class Weights(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))


def run(callback, values: list[float], monitor: str = "val_loss", set_weight: bool = False):
    """Feed one monitored value per epoch; return the epoch (1-based) at which it stopped."""
    net = Weights()
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    state = TrainState(epochs=len(values), steps_per_epoch=1, network=net, optimizer=opt)
    callback.on_train_begin(state)
    lrs = []
    for value in values:
        state.epoch += 1
        if set_weight:
            net.w.data.fill_(state.epoch)  # the weights "of epoch n" are n
        callback.on_epoch_end(state, {monitor: value})
        lrs.append(opt.param_groups[0]["lr"])
        if state.stop_training:
            return state.epoch, net, state, lrs
    return None, net, state, lrs


def es(**kw) -> EarlyStopping:
    return EarlyStopping(ES(type="early_stopping", **kw))


def test_patience_counts_epochs_without_improvement() -> None:
    assert run(es(patience=2), [1.0, 0.9, 0.95, 0.92])[0] == 4  # best at 2, two bad epochs
    assert run(es(patience=2), [1.0, 0.9, 0.95, 0.85, 0.9])[0] is None  # improvement resets
    assert run(es(patience=0), [1.0, 1.1])[0] == 2  # Keras stops at the first bad epoch
    assert run(es(patience=0), [1.0])[0] is None  # ... never at epoch 0


def test_min_delta_requires_a_big_enough_improvement() -> None:
    # 0.95 is better than 1.0 but not by more than 0.1: no improvement counted
    assert run(es(patience=1, min_delta=0.1), [1.0, 0.95])[0] == 2
    assert run(es(patience=1, min_delta=0.01), [1.0, 0.95, 0.9])[0] is None


def test_mode_auto_maximises_accuracy() -> None:
    assert run(es(monitor="val_accuracy", patience=1), [0.5, 0.6, 0.7], "val_accuracy")[0] is None
    assert run(es(monitor="val_accuracy", patience=1), [0.7, 0.6], "val_accuracy")[0] == 2
    assert run(es(monitor="val_loss", mode="max", patience=1), [1.0, 2.0, 3.0])[0] is None


def test_baseline_must_be_beaten_before_patience_restarts() -> None:
    # improvements that stay above the baseline do not reset the wait (Keras 3), so the first
    # bad epoch after them stops the run; without a baseline the wait restarts at each one
    assert run(es(patience=3, baseline=0.5), [1.0, 0.9, 0.8, 0.85])[0] == 4
    assert run(es(patience=3), [1.0, 0.9, 0.8, 0.85])[0] is None
    assert run(es(patience=3, baseline=0.5), [1.0, 0.9, 0.4, 0.45, 0.46])[0] is None


def test_start_from_epoch_ignores_the_first_epochs() -> None:
    assert run(es(patience=1, start_from_epoch=3), [1.0, 2.0, 3.0, 4.0, 5.0])[0] == 5


def test_restore_best_weights_and_the_stop_reason() -> None:
    stopped, net, state, _ = run(
        es(patience=2, restore_best_weights=True), [1.0, 0.5, 0.7, 0.8], set_weight=True
    )
    assert stopped == 4
    assert net.w.item() == 2.0  # the weights of the best epoch
    assert (
        "val_loss did not improve" in state.stop_reason
        and "restored the weights of epoch 2" in state.stop_reason
    )


def test_early_stopping_stops_a_real_run_and_says_why() -> None:
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "moons", "n_samples": 200, "validation_split": 0.3},
            "model": {"layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "epochs": 500,
                "seed": 0,
                "optimizer": {"type": "sgd", "learning_rate": 1e-6},  # no real progress
                "callbacks": [
                    {
                        "type": "EarlyStopping",
                        "monitor": "val_loss",
                        "patience": 3,
                        "min_delta": 0.01,
                    }
                ],
            },
        }
    )
    result = train_spec(spec, Settings(), device=torch.device("cpu"))
    assert len(result.history.epochs) == 4
    assert result.history.stop_reason.startswith("early_stopping: val_loss did not improve")


def test_a_monitor_the_job_does_not_log_is_refused_at_submission() -> None:
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "moons"},
            "model": {"layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "callbacks": [{"type": "early_stopping"}],
            },
        }
    )
    with pytest.raises(SpecError) as e:
        plan_job(spec, Settings())
    [issue] = e.value.issues
    assert issue.loc == ("training", "callbacks", 0, "monitor")
    assert "set dataset.validation_split" in issue.msg


def plateau(**kw) -> ReduceLROnPlateau:
    return ReduceLROnPlateau(RLROP(type="reduce_lr_on_plateau", **kw))


def test_plateau_reduces_the_learning_rate_after_patience() -> None:
    *_, lrs = run(plateau(patience=2, factor=0.5), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_plateau_cooldown_min_lr_and_min_delta() -> None:
    # Keras counts the cooldown down before it looks at the epoch, so cooldown=2 skips one epoch
    *_, lrs = run(plateau(patience=1, factor=0.5, cooldown=2), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    *_, lrs = run(plateau(patience=1, factor=0.1, min_lr=0.05), [1.0, 1.0, 1.0, 1.0])
    assert lrs == pytest.approx([1.0, 0.1, 0.05, 0.05])
    # improvements smaller than min_delta (1e-4 by default) count as a plateau
    *_, lrs = run(plateau(patience=1, factor=0.5), [1.0, 0.99995])
    assert lrs == [1.0, 0.5]


def test_restore_best_weights_also_when_the_epochs_run_out_first() -> None:
    callback = es(patience=5, restore_best_weights=True)
    stopped, net, state, _ = run(callback, [1.0, 0.5, 0.7, 0.9], set_weight=True)
    assert stopped is None and net.w.item() == 4.0
    callback.on_train_end(state, {})
    assert net.w.item() == 2.0  # Keras 3 restores the best epoch's weights at the end


def test_plateau_auto_mode_follows_the_metrics_direction() -> None:
    *_, lrs = run(plateau(monitor="val_auc", patience=1), [0.6, 0.7, 0.8, 0.9], "val_auc")
    assert lrs == [1.0, 1.0, 1.0, 1.0]  # a rising AUC is progress, not a plateau
