"""Metrics by Keras name. Each makes a fresh state per epoch that accumulates sufficient statistics
on the device and is read once at the epoch's end (one sync), so batches of any size weigh right
and ratios (precision, recall, f1_score, auc, r2_score, root_mean_squared_error) are the epoch's.

Classifiers' metrics read probabilities and whichever target encoding the loss uses (class
indices, one-hot rows or a 0/1 column). Where Keras differs from this:
- accuracy, categorical_accuracy and sparse_categorical_accuracy compare argmaxes; Keras picks
  among them by the targets' encoding, which the plan already fixes. A single sigmoid unit p
  reads as the two classes (1 - p, p), so they all threshold p at 0.5 there (Keras's argmax of
  one column would be always right); binary_accuracy is element-wise, as in Keras.
- precision and recall threshold each probability at 0.5 and count every (sample, class) entry
  of one-hot targets, as Keras's Precision() and Recall() do: micro averages over the classes.
- f1_score is Keras's F1Score(average="macro") (Keras's default, None, is one value per class,
  not a scalar): the argmax class is predicted, F1 is computed per class (0 for a class with no
  true or predicted sample) and averaged. For a single sigmoid unit it thresholds at 0.5 and is
  the positive class's F1 (Keras's argmax default would predict every sample positive).
- auc is Keras's AUC(): ROC, 200 thresholds, trapezoids, one-hot entries flattened (micro). It is
  the exact ROC AUC of the scores bucketed at the thresholds (ties within 1/199 count half).
- r2_score is Keras's R2Score() (uniform average over outputs), summed in float64.

The training loop spares the probabilities where a metric reads only the order of the scores or
thresholds a sigmoid at 0.5 (`reads_logits_of`): it then gets the logits, shifted by 0.5 after a
sigmoid, which rank as the probabilities do and are above 0.5 exactly where sigmoid(logit) is
(after a softmax only the order is read, which the logits have as they are).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from core.registry import Registry

EPSILON = 1e-7  # keras.backend.epsilon()
TOP_K = 5  # Keras's default k for the top-k accuracies
AUC_THRESHOLDS = 200  # Keras's AUC(num_thresholds=200)


class MetricState(Protocol):
    def update(self, outputs: torch.Tensor, y: torch.Tensor) -> None: ...

    def compute(self) -> torch.Tensor:
        """A 0-d tensor (kept on the device until the epoch's results are read together)."""
        ...


@dataclass(frozen=True)
class MetricDef:
    classifiers_only: bool  # True: needs class targets; False: needs regression targets
    make: Callable[[], MetricState]
    higher_is_better: bool = False
    min_classes: int = 0  # fewer classes than this and the metric says nothing
    # Output activations through which the metric may read the logits (+ 0.5 after a sigmoid)
    # instead of the probabilities (see the module's docstring); a single softmax unit never.
    reads_logits_of: frozenset[str] = frozenset()


ORDER = frozenset({"softmax", "sigmoid"})  # argmax and top-k: any order-preserving activation
SIGMOID = frozenset({"sigmoid"})  # thresholds at 0.5: element-wise, so the sigmoid only


METRICS: Registry[MetricDef] = Registry("metric")


class SampleMean:
    """The mean over samples of a per-sample value, summed in float64 into one tensor."""

    def __init__(self, per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.per_sample = per_sample
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, outputs: torch.Tensor, y: torch.Tensor) -> None:
        value = self.per_sample(outputs, y).sum(dtype=torch.float64)
        if self.total is None:
            self.total = value
        else:
            self.total.add_(value)
        self.count += outputs.shape[0]

    def compute(self) -> torch.Tensor:
        if self.total is None:
            return torch.tensor(math.nan)
        return (self.total / self.count).float()


class RootMean(SampleMean):
    def compute(self) -> torch.Tensor:
        return super().compute().sqrt()


class Sums:
    """Tensors summed over the epoch's batches, then combined once by `result`."""

    def __init__(
        self,
        sums: Callable[[torch.Tensor, torch.Tensor], list[torch.Tensor]],
        result: Callable[..., torch.Tensor],
    ):
        self.sums, self.result = sums, result
        self.totals: list[torch.Tensor] | None = None

    def update(self, outputs: torch.Tensor, y: torch.Tensor) -> None:
        batch = self.sums(outputs, y)
        if self.totals is None:
            self.totals = batch  # fresh tensors: the first batch's become the totals
            return
        for total, value in zip(self.totals, batch, strict=True):
            total.add_(value)

    def compute(self) -> torch.Tensor:
        return torch.tensor(math.nan) if self.totals is None else self.result(*self.totals)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, 0 where den is 0 (Keras's divide_no_nan)."""
    return torch.where(den > 0, num / den.clamp(min=1e-30), torch.zeros_like(num))


# Reading classifier outputs and targets.


def _scores(outputs: torch.Tensor) -> torch.Tensor:
    """One score per class: a single sigmoid unit p reads as (1 - p, p)."""
    return torch.cat([1.0 - outputs, outputs], dim=-1) if outputs.shape[-1] == 1 else outputs


def _class_index(y: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    if y.dim() < scores.dim():
        return y.long()  # class indices
    if y.shape[-1] == 1:
        return (y.squeeze(-1) > 0.5).long()  # a 0/1 column
    return y.argmax(dim=-1)  # one-hot rows


def _labels_like(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """0/1 targets shaped like the outputs (class indices become one-hot rows)."""
    if y.dim() < outputs.dim():
        return F.one_hot(y.long(), outputs.shape[-1]).to(outputs.dtype)
    return y.to(outputs.dtype)


# Accuracies.


def _accuracy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    scores = _scores(outputs)
    return scores.argmax(dim=-1) == _class_index(y, scores)  # booleans: summed in float64


def _binary_accuracy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    hits = ((outputs > 0.5) == (_labels_like(outputs, y) > 0.5)).float()
    return hits.mean(dim=-1)


def _top_k_accuracy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The true class's score is at least the k-th highest (ties count in, as in Keras)."""
    scores = _scores(outputs)
    k = min(TOP_K, scores.shape[-1])
    kth = scores.topk(k, dim=-1).values[..., -1]
    true = scores.gather(-1, _class_index(y, scores).unsqueeze(-1)).squeeze(-1)
    return true >= kth


# Counts of true and false positives.


def _thresholded_counts(outputs: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    predicted, actual = (outputs > 0.5).float(), _labels_like(outputs, y)
    tp = (predicted * actual).sum()
    return [tp, predicted.sum() - tp, actual.sum() - tp]


def _precision(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return _ratio(tp, tp + fp)


def _recall(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return _ratio(tp, tp + fn)


def _per_class_counts(outputs: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    if outputs.shape[-1] == 1:
        predicted = outputs > 0.5
    else:  # Keras marks every maximal score, but not an all-zero row
        top = outputs.amax(dim=-1, keepdim=True)
        predicted = (outputs >= top) & (outputs.abs() > 1e-9)
    predicted, actual = predicted.float(), _labels_like(outputs, y)
    tp = (predicted * actual).sum(dim=0)
    return [tp, predicted.sum(dim=0) - tp, actual.sum(dim=0) - tp]


def _macro_f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return _ratio(2 * tp, 2 * tp + fp + fn).mean()


# ROC AUC from counts per threshold bucket.


def _auc_thresholds(device: torch.device) -> torch.Tensor:
    """Keras's: -1e-7, then i/199 for i = 1..198, then 1 + 1e-7 (built on the device)."""
    steps = torch.arange(AUC_THRESHOLDS, dtype=torch.float64, device=device)
    thresholds = (steps / (AUC_THRESHOLDS - 1)).float()
    thresholds[0], thresholds[-1] = -EPSILON, 1.0 + EPSILON
    return thresholds


def _auc_histogram(outputs: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Counts of (negative, positive) entries by how many thresholds lie below their score."""
    scores = outputs.reshape(-1).float()
    positive = (_labels_like(outputs, y).reshape(-1) > 0.5).long()
    above = torch.bucketize(scores, _auc_thresholds(scores.device))  # thresholds < score
    slots = above + positive * (AUC_THRESHOLDS + 1)
    counts = torch.zeros(2 * (AUC_THRESHOLDS + 1), dtype=torch.long, device=scores.device)
    return [counts.index_add_(0, slots, torch.ones_like(slots))]


def _roc_auc(counts: torch.Tensor) -> torch.Tensor:
    negative, positive = counts.double().reshape(2, AUC_THRESHOLDS + 1)
    # entries whose score is above threshold j: those with more than j thresholds below them
    tp = positive.flip(0).cumsum(0).flip(0)[1:]
    fp = negative.flip(0).cumsum(0).flip(0)[1:]
    tpr, fpr = _ratio(tp, positive.sum()), _ratio(fp, negative.sum())
    return ((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2).sum().float()


# Regression.


def _per_sample(err: torch.Tensor) -> torch.Tensor:
    return err.reshape(err.shape[0], -1).mean(dim=1)


def _percentage_error(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return _per_sample(100.0 * ((y - outputs) / y.abs().clamp(min=EPSILON)).abs())


def _squared_log_error(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras's MSLE: (log(1 + p) - log(1 + y))², both raised to at least 1e-7 first."""
    log_p, log_y = torch.log1p(outputs.clamp(min=EPSILON)), torch.log1p(y.clamp(min=EPSILON))
    return _per_sample((log_p - log_y).square())


def _r2_sums(outputs: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Per output: count, sum and sum of squares of y, sum of squared residuals (float64)."""
    y2 = y.reshape(y.shape[0], -1).double()
    residual = (y2 - outputs.reshape(outputs.shape[0], -1).double()).square().sum(dim=0)
    count = torch.full_like(residual, y2.shape[0])
    return [count, y2.sum(dim=0), y2.square().sum(dim=0), residual]


def _r2(
    count: torch.Tensor, total: torch.Tensor, squares: torch.Tensor, residual: torch.Tensor
) -> torch.Tensor:
    variation = squares - total * total / count
    scores = 1.0 - residual / variation
    scores = torch.where(scores.isinf(), torch.zeros_like(scores), scores)  # constant y: 0
    return scores.mean().float()


def _mean_of(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[], SampleMean]:
    return lambda: SampleMean(fn)


def _sums_of(
    sums: Callable[[torch.Tensor, torch.Tensor], list[torch.Tensor]],
    result: Callable[..., torch.Tensor],
) -> Callable[[], Sums]:
    return lambda: Sums(sums, result)


for _name in ("accuracy", "categorical_accuracy", "sparse_categorical_accuracy"):
    METRICS.register(_name)(
        MetricDef(True, _mean_of(_accuracy), higher_is_better=True, reads_logits_of=ORDER)
    )
METRICS.register("binary_accuracy")(
    MetricDef(True, _mean_of(_binary_accuracy), higher_is_better=True, reads_logits_of=SIGMOID)
)
for _name in ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"):
    METRICS.register(_name)(
        MetricDef(
            True,
            _mean_of(_top_k_accuracy),
            higher_is_better=True,
            min_classes=TOP_K + 1,
            reads_logits_of=ORDER,
        )
    )
METRICS.register("precision")(
    MetricDef(
        True,
        _sums_of(_thresholded_counts, _precision),
        higher_is_better=True,
        reads_logits_of=SIGMOID,
    )
)
METRICS.register("recall")(
    MetricDef(
        True,
        _sums_of(_thresholded_counts, _recall),
        higher_is_better=True,
        reads_logits_of=SIGMOID,
    )
)
METRICS.register("f1_score")(
    MetricDef(True, _sums_of(_per_class_counts, _macro_f1), higher_is_better=True)
)
METRICS.register("auc")(MetricDef(True, _sums_of(_auc_histogram, _roc_auc), higher_is_better=True))
METRICS.register("mae")(MetricDef(False, _mean_of(lambda o, y: _per_sample((o - y).abs()))))
METRICS.register("mse")(MetricDef(False, _mean_of(lambda o, y: _per_sample((o - y) ** 2))))
METRICS.register("mape")(MetricDef(False, _mean_of(_percentage_error)))
METRICS.register("msle")(MetricDef(False, _mean_of(_squared_log_error)))
METRICS.register("root_mean_squared_error")(
    MetricDef(False, lambda: RootMean(lambda o, y: _per_sample((o - y) ** 2)))
)
METRICS.register("r2_score")(MetricDef(False, _sums_of(_r2_sums, _r2), higher_is_better=True))

# Other names Keras accepts for a metric: `compile(metrics=["acc"])`, and what
# `keras.metrics.get` resolves (`"mse"`, `MeanSquaredError`, `mean_squared_error`).
METRICS.alias("accuracy", "acc")
METRICS.alias("mae", "mean_absolute_error", "MeanAbsoluteError", "MAE")
METRICS.alias("mse", "mean_squared_error", "MeanSquaredError", "MSE")
METRICS.alias("mape", "mean_absolute_percentage_error", "MeanAbsolutePercentageError", "MAPE")
METRICS.alias("msle", "mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", "MSLE")
