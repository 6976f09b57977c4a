"""Metrics against scikit-learn and numpy, fed in batches of unequal sizes: each must be the
epoch's value, not an average of per-batch values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
import torch.nn.functional as F
from pydantic import TypeAdapter

from core.data import DATASETS
from core.data.base import split
from core.errors import SpecError
from core.nn.network import build_network
from core.series import best_of
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.spec.optimizers import OptimizerSpec
from core.training.loop import Objective, TensorData, evaluate, fit
from core.training.metrics import METRICS
from core.training.optimizers import build_optimizer
from core.training.plan import plan_job
from core.training.session import train_spec

SIZES = [7, 61, 1, 90, 44]  # 203 samples in batches of unequal size
N, K = sum(SIZES), 7


def epoch(name: str, outputs: torch.Tensor, y: torch.Tensor) -> float:
    state = METRICS.get(name).make()
    start = 0
    for size in SIZES:
        state.update(outputs[start : start + size], y[start : start + size])
        start += size
    value = state.compute()
    assert value.dim() == 0
    return value.item()


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def binary() -> tuple[torch.Tensor, torch.Tensor]:
    """A sigmoid unit's probabilities, mildly informative, and 0/1 targets in a column."""
    g = generator()
    y = (torch.rand(N, 1, generator=g) > 0.4).float()
    p = torch.sigmoid(torch.randn(N, 1, generator=g) + 1.2 * (y - 0.5))
    return p, y


@pytest.fixture
def multi() -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities over K classes, mildly informative, and class indices."""
    g = generator()
    y = torch.randint(0, K, (N,), generator=g)
    logits = 2.0 * torch.randn(N, K, generator=g) + 1.5 * F.one_hot(y, K)
    return logits.softmax(-1), y


def one_hot(y: torch.Tensor) -> torch.Tensor:
    return F.one_hot(y, K).float()


def test_accuracies_on_a_single_sigmoid_unit_threshold_at_one_half(binary) -> None:
    p, y = binary
    expected = skm.accuracy_score(y.numpy().ravel(), p.numpy().ravel() > 0.5)
    for name in ("accuracy", "binary_accuracy", "categorical_accuracy"):
        assert epoch(name, p, y) == pytest.approx(expected, abs=1e-6), name


def test_accuracies_on_several_classes_compare_argmaxes(multi) -> None:
    p, y = multi
    expected = skm.accuracy_score(y.numpy(), p.numpy().argmax(-1))
    assert 0.2 < expected < 0.9  # informative data, not a degenerate case
    for name in ("accuracy", "categorical_accuracy", "sparse_categorical_accuracy"):
        assert epoch(name, p, y) == pytest.approx(expected, abs=1e-6), name
        assert epoch(name, p, one_hot(y)) == pytest.approx(expected, abs=1e-6), name


def test_binary_accuracy_on_several_classes_is_element_wise_as_in_keras(multi) -> None:
    p, y = multi
    expected = ((p.numpy() > 0.5) == one_hot(y).numpy().astype(bool)).mean()
    assert epoch("binary_accuracy", p, y) == pytest.approx(expected, abs=1e-6)


def test_top_k_accuracies_match_sklearn(multi) -> None:
    p, y = multi
    expected = skm.top_k_accuracy_score(y.numpy(), p.numpy(), k=5, labels=range(K))
    assert expected < 1.0
    assert epoch("sparse_top_k_categorical_accuracy", p, y) == pytest.approx(expected, abs=1e-6)
    assert epoch("top_k_categorical_accuracy", p, one_hot(y)) == pytest.approx(expected, abs=1e-6)


def test_top_k_counts_a_tie_at_the_kth_place_in() -> None:
    p = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.0]])
    state = METRICS.get("sparse_top_k_categorical_accuracy").make()
    state.update(p, torch.tensor([5]))  # tied with the 5th highest score
    assert state.compute().item() == 1.0


def test_precision_and_recall_on_a_sigmoid_unit(binary) -> None:
    p, y = binary
    truth, predicted = y.numpy().ravel(), p.numpy().ravel() > 0.5
    assert epoch("precision", p, y) == pytest.approx(skm.precision_score(truth, predicted))
    assert epoch("recall", p, y) == pytest.approx(skm.recall_score(truth, predicted))


def test_precision_and_recall_on_one_hot_targets_count_every_entry(multi) -> None:
    """Keras's Precision()/Recall() threshold each probability at 0.5 over the flattened entries."""
    p, y = multi
    truth, predicted = one_hot(y).numpy().ravel(), p.numpy().ravel() > 0.5
    for targets in (y, one_hot(y)):
        assert epoch("precision", p, targets) == pytest.approx(
            skm.precision_score(truth, predicted)
        )
        assert epoch("recall", p, targets) == pytest.approx(skm.recall_score(truth, predicted))


def test_f1_score_is_the_macro_average_over_classes(multi) -> None:
    p, y = multi
    expected = skm.f1_score(y.numpy(), p.numpy().argmax(-1), average="macro")
    assert expected != pytest.approx(skm.f1_score(y.numpy(), p.numpy().argmax(-1), average="micro"))
    assert epoch("f1_score", p, y) == pytest.approx(expected, abs=1e-6)
    assert epoch("f1_score", p, one_hot(y)) == pytest.approx(expected, abs=1e-6)


def test_f1_score_on_a_sigmoid_unit_is_the_positive_class_f1(binary) -> None:
    p, y = binary
    expected = skm.f1_score(y.numpy().ravel(), p.numpy().ravel() > 0.5)
    assert epoch("f1_score", p, y) == pytest.approx(expected, abs=1e-6)


def keras_buckets(scores: np.ndarray) -> np.ndarray:
    """How many of Keras's 200 AUC thresholds lie below each score."""
    thresholds = (np.arange(200, dtype=np.float64) / 199).astype(np.float32)
    thresholds[0], thresholds[-1] = -1e-7, 1 + 1e-7
    return np.searchsorted(thresholds, scores.astype(np.float32), side="left")


def test_auc_is_the_roc_auc_of_scores_bucketed_at_keras_thresholds(binary) -> None:
    p, y = binary
    truth, scores = y.numpy().ravel(), p.numpy().ravel()
    got = epoch("auc", p, y)
    assert got == pytest.approx(skm.roc_auc_score(truth, keras_buckets(scores)), abs=1e-6)
    assert got == pytest.approx(skm.roc_auc_score(truth, scores), abs=5e-3)  # the exact AUC


def test_auc_on_one_hot_targets_is_the_micro_average(multi) -> None:
    p, y = multi
    truth, scores = one_hot(y).numpy().ravel(), p.numpy().ravel()
    got = epoch("auc", p, y)
    assert got == pytest.approx(skm.roc_auc_score(truth, keras_buckets(scores)), abs=1e-6)
    assert got == pytest.approx(skm.roc_auc_score(truth, scores), abs=5e-3)


@pytest.fixture
def regression() -> tuple[torch.Tensor, torch.Tensor]:
    """Two outputs far from zero (float32 sums of squares would lose the variance)."""
    g = generator()
    y = 1000.0 + torch.randn(N, 2, generator=g) * torch.tensor([3.0, 0.5])
    return y + torch.randn(N, 2, generator=g), y


def test_regression_metrics_match_sklearn(regression) -> None:
    o, y = regression
    t, pred = y.numpy().astype(np.float64), o.numpy().astype(np.float64)
    expected = {
        "mae": skm.mean_absolute_error(t, pred),
        "mse": skm.mean_squared_error(t, pred),
        "root_mean_squared_error": math.sqrt(skm.mean_squared_error(t, pred)),
        "mape": 100 * skm.mean_absolute_percentage_error(t, pred),
        "r2_score": skm.r2_score(t, pred),  # the uniform average over the two outputs
    }
    assert expected["r2_score"] < 0.5  # the outputs differ: the average of two R2s matters
    for name, value in expected.items():
        assert epoch(name, o, y) == pytest.approx(value, rel=1e-4), name


def test_a_state_without_updates_is_nan() -> None:
    for name in ("accuracy", "auc", "f1_score", "r2_score", "root_mean_squared_error"):
        assert math.isnan(METRICS.get(name).make().compute().item()), name


def test_best_of_knows_which_metrics_rise() -> None:
    history = [
        {"auc": 0.6, "val_r2_score": 0.1, "mape": 30.0, "val_root_mean_squared_error": 2.0},
        {"auc": 0.8, "val_r2_score": 0.5, "mape": 20.0, "val_root_mean_squared_error": 1.0},
        {"auc": 0.7, "val_r2_score": 0.3, "mape": 25.0, "val_root_mean_squared_error": 1.5},
    ]
    assert best_of(history) == {
        "auc": 0.8,
        "val_r2_score": 0.5,
        "mape": 20.0,
        "val_root_mean_squared_error": 1.0,
    }


def test_keras_class_names_are_accepted() -> None:
    names = ["AUC", "F1Score", "R2Score", "RootMeanSquaredError", "TopKCategoricalAccuracy"]
    assert [METRICS.canonical(n) for n in names] == [
        "auc",
        "f1_score",
        "r2_score",
        "root_mean_squared_error",
        "top_k_categorical_accuracy",
    ]


def test_metrics_that_do_not_suit_the_data_set_are_refused() -> None:
    def issues(dataset: str, units: int, loss: str, metrics: list[str]) -> dict:
        spec = JobSpec.model_validate(
            {
                "dataset": {"name": dataset},
                "model": {"layers": [{"type": "dense", "units": units}]},
                "training": {"loss": loss, "metrics": metrics},
            }
        )
        with pytest.raises(SpecError) as e:
            plan_job(spec, Settings())
        return {i.loc: i.msg for i in e.value.issues}

    found = issues("moons", 1, "mean_squared_error", ["auc", "top_k_categorical_accuracy"])
    assert found == {
        ("training", "metrics", 1): "top_k_categorical_accuracy needs at least 6 classes "
        "to say anything; 'moons' has 2"
    }
    found = issues("regression", 1, "mean_squared_error", ["r2_score", "precision"])
    assert list(found) == [("training", "metrics", 1)]
    assert "precision needs a classification data set" in found[("training", "metrics", 1)]


def test_the_loop_logs_epoch_metrics_that_match_sklearn_on_the_validation_set() -> None:
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "xor", "n_samples": 300, "validation_split": 0.3},
            "model": {
                "layers": [
                    {"type": "dense", "units": 8, "activation": "tanh"},
                    {"type": "dense", "units": 1},
                ]
            },
            "training": {
                "loss": {"type": "binary_crossentropy", "from_logits": True},
                "optimizer": {"type": "adam", "learning_rate": 0.05},
                "batch_size": 32,  # 90 validation samples: batches of 32, 32 and 26
                "epochs": 3,
                "metrics": ["precision", "recall", "f1_score", "auc"],
                "seed": 0,
            },
        }
    )
    result = train_spec(spec, Settings(), device=torch.device("cpu"))
    last = result.history.epochs[-1]
    _, val = split(DATASETS.get("xor").load(spec.dataset), 0.3, spec.dataset.seed)
    with torch.no_grad():
        p = torch.sigmoid(result.network.logits(torch.from_numpy(val.x).float())).numpy().ravel()
    truth = val.y.ravel()
    assert last["val_precision"] == pytest.approx(skm.precision_score(truth, p > 0.5), abs=1e-6)
    assert last["val_recall"] == pytest.approx(skm.recall_score(truth, p > 0.5), abs=1e-6)
    assert last["val_f1_score"] == pytest.approx(skm.f1_score(truth, p > 0.5), abs=1e-6)
    auc = skm.roc_auc_score(truth, keras_buckets(p))
    assert last["val_auc"] == pytest.approx(auc, abs=1e-6)


CLASSIFIER_METRICS = [
    "accuracy",
    "binary_accuracy",
    "top_k_categorical_accuracy",
    "precision",
    "recall",
    "f1_score",
    "auc",
]


def one_layer(units: int, activation: str | None):
    layer = {"type": "dense", "units": units, "activation": activation or "linear"}
    network = build_network(ModelSpec.model_validate({"layers": [layer]}), (5,))
    network.initialize()
    return network


@pytest.mark.parametrize(
    ("units", "activation", "metrics_activation"),
    [(1, "sigmoid", None), (1, None, "sigmoid"), (3, "sigmoid", None), (7, "softmax", None)],
)
def test_the_loop_reads_metrics_from_logits_as_from_probabilities(
    units, activation, metrics_activation
) -> None:
    """Where a metric reads the logits (argmax, top-k, a sigmoid's 0.5 threshold), its epoch
    value is the one the probabilities give."""
    torch.manual_seed(0)
    network = one_layer(units, activation)
    x = torch.randn(N, 5)
    y = (torch.rand(N, units) > 0.5).float() if units > 1 else (torch.rand(N, 1) > 0.5).float()
    if activation == "softmax":
        y = F.one_hot(torch.randint(0, units, (N,)), units).float()
    names = [m for m in CLASSIFIER_METRICS if units > 5 or "top_k" not in m]
    objective = Objective(
        loss=lambda out, target: (out - target).square().mean(),
        use_logits=True,
        metrics={name: METRICS.get(name) for name in names},
        metrics_activation=metrics_activation,
    )
    logged = evaluate(network, objective, TensorData(x, y), batch_size=50)
    with torch.no_grad():
        p = network(x)
        p = torch.sigmoid(p) if metrics_activation else p
    for name in names:
        assert logged[name] == pytest.approx(epoch(name, p, y), abs=1e-6), name


def test_training_runs_no_softmax_with_autograd_for_the_metrics() -> None:
    """A cross-entropy from logits: the head (softmax) runs for the metrics without gradients,
    and only for those that need probabilities."""
    torch.manual_seed(0)
    network = one_layer(7, "softmax")
    calls: list[bool] = []
    network.head.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    objective = Objective(
        loss=lambda logits, target: F.cross_entropy(logits, target),
        use_logits=True,
        metrics={"accuracy": METRICS.get("accuracy")},
    )
    adam = TypeAdapter(OptimizerSpec).validate_python("adam")
    optimization = build_optimizer(network, adam, steps_per_epoch=4, epochs=1)
    data = TensorData(torch.randn(40, 5), torch.randint(0, 7, (40,)))
    fit(network, objective, optimization, data, epochs=1, batch_size=10)
    assert calls == []  # accuracy reads the logits
    objective = Objective(objective.loss, True, {"auc": METRICS.get("auc")})
    fit(network, objective, optimization, data, epochs=1, batch_size=10)
    assert calls == [False] * 4
