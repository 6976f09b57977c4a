"""Losses by Keras name, with Keras's defaults and its "sum_over_batch_size" reduction: the mean
over samples of each sample's loss, which is the mean over the last axis (so the element-wise
mean overall), or the sum over classes for categorical_crossentropy,
sparse_categorical_crossentropy, kl_divergence and categorical_hinge.

Each loss says which targets it trains on and which output activation's logits it reads. The
plan feeds a cross-entropy the logits of the softmax or sigmoid output, so it is computed with
log-softmax / log-sigmoid and is exact where Keras clips probabilities to [1e-7, 1 - 1e-7]: a
confidently wrong sample costs Keras at most -log(1e-7) ≈ 16.1, here its true loss.
kl_divergence also reads logits but keeps Keras's clipping of both sides to [1e-7, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F

from core.registry import Registry

# What `y` a loss compares to. "labels": 0/1 class labels shaped as the output asks, a single
# column for one unit (two classes) or one-hot for one unit per class.
Targets = Literal["class_index", "one_hot", "binary", "labels", "values"]
Option = Literal["from_logits", "label_smoothing", "delta", "axis", "ignore_class"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

EPSILON = 1e-7  # keras.backend.epsilon()


@dataclass(frozen=True)
class LossOptions:
    """Keras's loss arguments that change the arithmetic, at Keras's defaults."""

    label_smoothing: float = 0.0
    delta: float = 1.0
    ignore_class: int | None = None


@dataclass(frozen=True)
class LossDef:
    targets: Targets  # what `y` the loss compares to
    logits_of: str | None  # output activation whose logits it takes; None: plain outputs
    build: Callable[[LossOptions], LossFn]  # options -> (logits or outputs, y) -> scalar
    options: frozenset[Option] = field(default_factory=frozenset)  # Keras arguments it takes

    def make(self, options: LossOptions) -> LossFn:
        return self.build(options)

    @property
    def fn(self) -> LossFn:
        """The loss at Keras's default options."""
        return self.build(LossOptions())


# Cross-entropies, from logits.


def binary_crossentropy(
    logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Smoothing squeezes the 0/1 labels toward 0.5: 1 - s/2 and s/2."""
    target = y * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return F.binary_cross_entropy_with_logits(logits, target)


def categorical_crossentropy(
    logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Smoothing mixes the one-hot labels with the uniform: 1 - s + s/k and s/k."""
    target = y * (1.0 - label_smoothing) + label_smoothing / logits.shape[-1]
    return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def sparse_categorical_crossentropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Class-index labels; Keras 3 gives this loss no label_smoothing."""
    return F.cross_entropy(logits, y)


def sparse_categorical_crossentropy_ignoring(
    logits: torch.Tensor, y: torch.Tensor, ignore_class: int
) -> torch.Tensor:
    """Keras's `ignore_class`: the mean over the samples of the other classes only (0 when a
    batch has none). A function of its own, so that no hand-written step takes it for the plain
    loss."""
    per_sample = F.cross_entropy(logits, y, ignore_index=ignore_class, reduction="none")
    counted = (y != ignore_class).sum().clamp(min=1)
    return per_sample.sum() / counted


def _sparse_categorical(options: LossOptions) -> LossFn:
    if options.ignore_class is None:
        return sparse_categorical_crossentropy
    return partial(sparse_categorical_crossentropy_ignoring, ignore_class=options.ignore_class)


def kl_divergence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum(y log(y / p)) with y and p clipped to [1e-7, 1] as Keras does (log p from logits)."""
    log_p = F.log_softmax(logits, dim=-1).clamp(min=math.log(EPSILON))
    q = y.clamp(EPSILON, 1.0)
    return (q * (q.log() - log_p)).sum(dim=-1).mean()


# Regression.


def mean_squared_error(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(outputs, y)


def mean_absolute_error(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(outputs, y)


def mean_absolute_percentage_error(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """100 |y - p| / max(|y|, 1e-7)."""
    return 100.0 * ((y - outputs) / y.abs().clamp(min=EPSILON)).abs().mean()


def mean_squared_logarithmic_error(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(log(1 + p) - log(1 + y))², both raised to at least 1e-7 first."""
    log_p, log_y = torch.log1p(outputs.clamp(min=EPSILON)), torch.log1p(y.clamp(min=EPSILON))
    return (log_p - log_y).square().mean()


def huber(outputs: torch.Tensor, y: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """x²/2 for |x| ≤ delta, then delta |x| - delta²/2, with x = p - y."""
    return F.huber_loss(outputs, y, delta=delta)


def log_cosh(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log(cosh(x)) as x + softplus(-2x) - log 2, finite for any x."""
    x = outputs - y
    return (x + F.softplus(-2.0 * x) - math.log(2.0)).mean()


# Margins. Keras turns 0/1 labels into -1/1; ours are always 0/1.


def hinge(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - (2.0 * y - 1.0) * outputs).mean()


def squared_hinge(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - (2.0 * y - 1.0) * outputs).square().mean()


def categorical_hinge(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max(0, 1 + (highest score of a wrong class) - (score of the true class))."""
    positive = (y * outputs).sum(dim=-1)
    negative = ((1.0 - y) * outputs).amax(dim=-1)
    return F.relu(negative - positive + 1.0).mean()


LOSSES: Registry[LossDef] = Registry("loss")


def _plain(fn: LossFn) -> Callable[[LossOptions], LossFn]:
    return lambda _: fn


def _register(name: str, targets: Targets, logits_of: str | None, fn: LossFn) -> None:
    LOSSES.register(name)(LossDef(targets, logits_of, _plain(fn)))


LOSSES.register("binary_crossentropy")(
    LossDef(
        "binary",
        "sigmoid",
        lambda o: partial(binary_crossentropy, label_smoothing=o.label_smoothing),
        frozenset({"from_logits", "label_smoothing", "axis"}),
    )
)
LOSSES.register("categorical_crossentropy")(
    LossDef(
        "one_hot",
        "softmax",
        lambda o: partial(categorical_crossentropy, label_smoothing=o.label_smoothing),
        frozenset({"from_logits", "label_smoothing", "axis"}),
    )
)
LOSSES.register("sparse_categorical_crossentropy")(
    LossDef(
        "class_index",
        "softmax",
        _sparse_categorical,
        frozenset({"from_logits", "ignore_class"}),
    )
)
_register("kl_divergence", "one_hot", "softmax", kl_divergence)
_register("mean_squared_error", "values", None, mean_squared_error)
_register("mean_absolute_error", "values", None, mean_absolute_error)
_register("mean_absolute_percentage_error", "values", None, mean_absolute_percentage_error)
_register("mean_squared_logarithmic_error", "values", None, mean_squared_logarithmic_error)
LOSSES.register("huber")(
    LossDef("values", None, lambda o: partial(huber, delta=o.delta), frozenset({"delta"}))
)
_register("log_cosh", "values", None, log_cosh)
_register("hinge", "labels", None, hinge)
_register("squared_hinge", "labels", None, squared_hinge)
_register("categorical_hinge", "one_hot", None, categorical_hinge)

# The other names `keras.losses.get` resolves (Keras 3's aliases), each to its loss.
LOSSES.alias("mean_squared_error", "mse", "MSE")
LOSSES.alias("mean_absolute_error", "mae", "MAE")
LOSSES.alias("mean_absolute_percentage_error", "mape", "MAPE")
LOSSES.alias("mean_squared_logarithmic_error", "msle", "MSLE")
LOSSES.alias("binary_crossentropy", "bce", "BCE")
LOSSES.alias("kl_divergence", "kld", "KLD")
# Names that Keras 3 does not resolve either, but that articles write: refused with the name to use.
NOT_KERAS: dict[str, str] = {
    "cce": "categorical_crossentropy",
    "scce": "sparse_categorical_crossentropy",
    "logcosh": "log_cosh",
    "huber_loss": "huber",
}


def loss_name(name: str) -> str:
    """The registered name for a loss written as Keras accepts it: its name, its class
    (`MeanSquaredError`) or one of Keras 3's aliases (`"mse"`, `"bce"`, `"kld"`...)."""
    if name in NOT_KERAS:
        raise ValueError(
            f"{name!r} is not a Keras 3 loss name (keras.losses.get refuses it too); "
            f"write {NOT_KERAS[name]!r}"
        )
    return LOSSES.canonical(name)
