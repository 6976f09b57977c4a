"""The training loop on tiny data sets, on the CPU: learning, reporting, stopping, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import DivergenceError, TrainingCancelled
from core.settings import Settings
from core.spec import JobSpec
from core.training import loop
from core.training.callbacks import Callback, CancelCheck, TrainState
from core.training.losses import LOSSES
from core.training.session import train_spec
from tests.specs import DIVERGING

CPU = torch.device("cpu")


def xor_spec(**training: object) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "xor", "n_samples": 400, "validation_split": 0.25},
            "model": {
                "layers": [
                    {"type": "dense", "units": 16, "activation": "tanh"},
                    {"type": "dense", "units": 1, "activation": "sigmoid"},
                ]
            },
            "training": {
                "loss": "binary_crossentropy",
                "optimizer": {"type": "adam", "learning_rate": 0.05},
                "batch_size": 32,
                "epochs": 30,
                "metrics": ["accuracy"],
                "seed": 1,
                **training,
            },
        }
    )


class Recorder(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[tuple[int, int, dict]] = []

    def on_step_losses(self, state: TrainState, steps: list[int], losses: list[float]) -> None:
        self.steps += steps
        self.losses += losses

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.epochs.append((state.epoch, state.step, dict(logs)))


def test_a_hidden_layer_learns_xor_and_every_step_is_reported() -> None:
    rec = Recorder()
    result = train_spec(xor_spec(), Settings(), device=CPU, callbacks=[rec])
    last = result.history.epochs[-1]
    assert last["val_accuracy"] >= 0.9  # a linear model cannot pass 0.75 on XOR
    assert set(last) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    steps_per_epoch = math.ceil(300 / 32)
    assert rec.steps == list(range(1, 30 * steps_per_epoch + 1))  # no gap, no duplicate
    assert [e[:2] for e in rec.epochs] == [(i, i * steps_per_epoch) for i in range(1, 31)]
    # the epoch's loss is the sample-weighted mean of its steps' losses
    first = rec.losses[:steps_per_epoch]
    weights = [32] * (steps_per_epoch - 1) + [300 - 32 * (steps_per_epoch - 1)]
    assert rec.epochs[0][2]["loss"] == pytest.approx(
        sum(w * v for w, v in zip(weights, first, strict=True)) / 300, rel=1e-5
    )


def test_same_seed_same_run_other_seed_other_run() -> None:
    a = train_spec(xor_spec(epochs=3), Settings(), device=CPU).history.epochs
    b = train_spec(xor_spec(epochs=3), Settings(), device=CPU).history.epochs
    c = train_spec(xor_spec(epochs=3, seed=2), Settings(), device=CPU).history.epochs
    assert a == b
    assert a != c


def test_the_epoch_gather_gives_the_batches_of_a_gather_per_batch(monkeypatch) -> None:
    """Small data is shuffled once per epoch and sliced; large data is gathered batch by
    batch: the same order from the same draws, so the same run."""
    rec_small, rec_large = Recorder(), Recorder()
    small = train_spec(xor_spec(epochs=3), Settings(), device=CPU, callbacks=[rec_small])
    monkeypatch.setattr(loop, "EPOCH_GATHER_MAX_BYTES", 0)
    large = train_spec(xor_spec(epochs=3), Settings(), device=CPU, callbacks=[rec_large])
    assert rec_small.losses == rec_large.losses
    assert small.history.epochs == large.history.epochs


def test_a_nan_loss_fails_as_divergence_after_reporting_it() -> None:
    spec = JobSpec.model_validate(DIVERGING)
    rec = Recorder()
    with pytest.raises(DivergenceError, match="training diverged") as e:
        train_spec(spec, Settings(), device=CPU, callbacks=[rec])
    first_bad = next(i for i, v in enumerate(rec.losses) if not math.isfinite(v))
    # the bad values are reported (kept in the series), and the error names the first one's step
    assert f"at step {rec.steps[first_bad]} " in str(e.value)
    assert len(rec.steps) < 20 * 5  # stopped long before the 20 epochs


def test_cancel_check_stops_within_a_step() -> None:
    calls = {"n": 0}

    def cancelled() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    rec = Recorder()
    with pytest.raises(TrainingCancelled):
        train_spec(xor_spec(), Settings(), device=CPU, callbacks=[rec, CancelCheck(cancelled)])
    assert calls["n"] == 3  # asked after each of the first three steps, stopped at the third


def test_cross_entropy_after_softmax_is_computed_from_logits() -> None:
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [0.5, 0.2, 0.1]])
    y = torch.tensor([2, 0])
    loss = LOSSES.get("sparse_categorical_crossentropy").fn(logits, y)
    naive = -torch.log(torch.softmax(logits, -1)[torch.arange(2), y]).mean()
    assert math.isinf(naive.item())  # what computing from probabilities gives
    expected = (2000.0 + (-torch.log_softmax(logits[1], -1)[0])) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_binary_cross_entropy_from_logits_matches_the_formula() -> None:
    z, y = torch.tensor([[2.0], [-1.0]]), torch.tensor([[1.0], [0.0]])
    p = torch.sigmoid(z)
    expected = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    assert LOSSES.get("binary_crossentropy").fn(z, y).item() == pytest.approx(
        expected.item(), rel=1e-6
    )


def test_binary_accuracy_reads_probabilities_when_the_output_is_logits() -> None:
    """A linear unit trained with from_logits: accuracy must threshold sigmoid(z) at 0.5, i.e. z at 0."""
    probabilities = xor_spec(epochs=5)
    logits = JobSpec.model_validate(
        {
            **probabilities.model_dump(),
            "model": {
                "layers": [
                    {"type": "dense", "units": 16, "activation": "tanh"},
                    {"type": "dense", "units": 1},
                ]
            },
            "training": {
                **probabilities.training.model_dump(),
                "loss": {"type": "binary_crossentropy", "from_logits": True},
            },
        }
    )
    a = train_spec(probabilities, Settings(), device=CPU).history.epochs
    b = train_spec(logits, Settings(), device=CPU).history.epochs
    # Same seed, same initial weights, same arithmetic: identical runs, identical accuracy.
    assert [e["loss"] for e in a] == pytest.approx([e["loss"] for e in b], rel=1e-5)
    assert [e["val_accuracy"] for e in a] == pytest.approx([e["val_accuracy"] for e in b])


def test_the_trained_network_comes_back_in_evaluation_mode() -> None:
    result = train_spec(xor_spec(epochs=1), Settings(), device=CPU)
    assert not result.network.training  # dropout and noise off for whoever predicts with it
