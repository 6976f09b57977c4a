"""Losses against hand computations with plain formulas, and the options each loss accepts."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from core.errors import SpecError
from core.settings import Settings
from core.spec import JobSpec
from core.spec.losses import LossSpec
from core.training.losses import LOSSES, LossOptions
from core.training.plan import plan_job
from core.training.session import train_spec

CPU = torch.device("cpu")


def loss(name: str, pred: list, y: list, **options: float) -> float:
    fn = LOSSES.get(name).make(LossOptions(**options))
    target = torch.tensor(y) if isinstance(y[0], list) else torch.tensor(y, dtype=torch.long)
    return fn(torch.tensor(pred), target).item()


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def softmax(row: list[float]) -> list[float]:
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


LOGITS = [[1.5, -0.3, 0.2], [-1.0, 2.0, 0.5]]
ONE_HOT = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_binary_crossentropy_smooths_labels_toward_one_half(smoothing: float) -> None:
    z, y = [[2.0], [-1.0], [0.5]], [[1.0], [0.0], [1.0]]
    terms = []
    for (zi,), (yi,) in zip(z, y, strict=True):
        t, p = yi * (1 - smoothing) + 0.5 * smoothing, sigmoid(zi)
        terms.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
    got = loss("binary_crossentropy", z, y, label_smoothing=smoothing)
    assert got == pytest.approx(mean(terms), rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_categorical_crossentropy_mixes_labels_with_the_uniform(smoothing: float) -> None:
    terms = []
    for row, labels in zip(LOGITS, ONE_HOT, strict=True):
        p = softmax(row)
        t = [v * (1 - smoothing) + smoothing / 3 for v in labels]
        terms.append(-sum(ti * math.log(pi) for ti, pi in zip(t, p, strict=True)))  # sum, not mean
    got = loss("categorical_crossentropy", LOGITS, ONE_HOT, label_smoothing=smoothing)
    assert got == pytest.approx(mean(terms), rel=1e-6)


def test_sparse_categorical_crossentropy_reads_class_indices() -> None:
    expected = mean([-math.log(softmax(LOGITS[0])[2]), -math.log(softmax(LOGITS[1])[1])])
    assert loss("sparse_categorical_crossentropy", LOGITS, [2, 1]) == pytest.approx(expected)


def test_cross_entropy_from_logits_is_exact_where_keras_clips() -> None:
    # Keras clips the probability to 1e-7 and caps this sample at -log(1e-7) ≈ 16.1.
    assert loss("binary_crossentropy", [[-40.0]], [[1.0]]) == pytest.approx(40.0, rel=1e-6)
    assert loss("categorical_crossentropy", [[0.0, 50.0]], [[1.0, 0.0]]) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("name", "layers", "target"),
    [
        ("binary_crossentropy", [{"type": "dense", "units": 1}], "sigmoid"),
        ("categorical_crossentropy", [{"type": "dense", "units": 2}], "softmax"),
        ("sparse_categorical_crossentropy", [{"type": "dense", "units": 2}], "softmax"),
    ],
)
def test_a_probability_output_and_from_logits_both_feed_logits(name, layers, target) -> None:
    """from_logits off (softmax/sigmoid output) and on (linear output): the loss reads logits."""
    for from_logits, activation in ((False, target), (True, "linear")):
        head = {**layers[0], "activation": activation}
        spec = JobSpec.model_validate(
            {
                "dataset": {"name": "moons"},
                "model": {"layers": [head]},
                "training": {"loss": {"type": name, "from_logits": from_logits}},
            }
        )
        assert plan_job(spec, Settings()).use_logits


def test_kl_divergence_clips_both_sides_to_epsilon() -> None:
    y = [[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]]
    expected = []
    for row, labels in zip(LOGITS, y, strict=True):
        p = [min(max(v, 1e-7), 1.0) for v in softmax(row)]
        q = [min(max(v, 1e-7), 1.0) for v in labels]
        expected.append(sum(qi * math.log(qi / pi) for qi, pi in zip(q, p, strict=True)))
    assert loss("kl_divergence", LOGITS, y) == pytest.approx(mean(expected), rel=1e-5)
    # p(class 1) = e^-30 / (1 + e^-30) ≈ 9e-14 is clipped to 1e-7, as in Keras
    clipped = math.log(1 / 1e-7) + 1e-7 * math.log(1e-7 / 1.0)
    assert loss("kl_divergence", [[0.0, -30.0]], [[0.0, 1.0]]) == pytest.approx(clipped, rel=1e-5)


PRED = [[1.0, -2.0], [0.5, 4.0], [-0.2, 3.0]]
TRUE = [[1.5, -1.0], [0.5, 1.0], [-1.0, 2.0]]
ERRORS = [p - t for pr, tr in zip(PRED, TRUE, strict=True) for p, t in zip(pr, tr, strict=True)]


@pytest.mark.parametrize(
    ("name", "options", "per_element"),
    [
        ("mean_squared_error", {}, lambda e, p, t: e * e),
        ("mean_absolute_error", {}, lambda e, p, t: abs(e)),
        ("mean_absolute_percentage_error", {}, lambda e, p, t: 100 * abs(e) / abs(t)),
        ("huber", {}, lambda e, p, t: 0.5 * e * e if abs(e) <= 1 else abs(e) - 0.5),
        (
            "huber",
            {"delta": 0.5},
            lambda e, p, t: 0.5 * e * e if abs(e) <= 0.5 else 0.5 * abs(e) - 0.125,
        ),
        ("log_cosh", {}, lambda e, p, t: math.log(math.cosh(e))),
        (
            "mean_squared_logarithmic_error",
            {},
            lambda e, p, t: (math.log1p(max(p, 1e-7)) - math.log1p(max(t, 1e-7))) ** 2,
        ),
    ],
)
def test_regression_losses_are_element_means(name, options, per_element) -> None:
    pairs = [(p, t) for pr, tr in zip(PRED, TRUE, strict=True) for p, t in zip(pr, tr, strict=True)]
    expected = mean([per_element(p - t, p, t) for p, t in pairs])
    assert loss(name, PRED, TRUE, **options) == pytest.approx(expected, rel=1e-6)


def test_log_cosh_stays_finite_for_large_errors() -> None:
    assert loss("log_cosh", [[200.0]], [[0.0]]) == pytest.approx(200.0 - math.log(2.0))


def test_hinge_losses_turn_zero_one_labels_into_minus_one_one() -> None:
    scores, labels = [[0.3], [-2.0], [0.8]], [[1.0], [0.0], [0.0]]
    margins = [max(0.0, 1 - s * (2 * y - 1)) for (s,), (y,) in zip(scores, labels, strict=True)]
    assert margins == pytest.approx([0.7, 0.0, 1.8])
    assert loss("hinge", scores, labels) == pytest.approx(mean(margins))
    assert loss("squared_hinge", scores, labels) == pytest.approx(mean([m * m for m in margins]))


def test_categorical_hinge_follows_keras_formula() -> None:
    # neg = max((1 - y) * scores): the true class's slot counts as 0, as in Keras
    scores, labels = [[-1.0, -2.0, 0.5], [2.0, 1.0, 0.5]], [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    expected = mean([max(0.0, 0.0 - 0.5 + 1), max(0.0, 2.0 - 1.0 + 1)])
    assert loss("categorical_hinge", scores, labels) == pytest.approx(expected)


def test_options_fill_in_keras_defaults_only_where_they_apply() -> None:
    huber = LossSpec.model_validate("Huber")
    assert (huber.type, huber.delta, huber.label_smoothing) == ("huber", 1.0, None)
    bce = LossSpec.model_validate("binary_crossentropy")
    assert (bce.label_smoothing, bce.delta) == (0.0, None)
    assert LossSpec.model_validate(bce.model_dump()) == bce  # the normalized spec round-trips
    assert LossSpec.model_validate({"type": "huber", "delta": 2.5}).options().delta == 2.5
    names = {n: LossSpec.model_validate(n).type for n in ("KLDivergence", "LogCosh")}
    assert names == {"KLDivergence": "kl_divergence", "LogCosh": "log_cosh"}


@pytest.mark.parametrize(
    ("loss_spec", "message"),
    [
        (
            {"type": "mean_squared_error", "label_smoothing": 0.0},
            "label_smoothing applies to binary_crossentropy and categorical_crossentropy, "
            "not mean_squared_error",
        ),
        (
            {"type": "sparse_categorical_crossentropy", "label_smoothing": 0.1},
            "not sparse_categorical_crossentropy",
        ),
        ({"type": "categorical_crossentropy", "delta": 2.0}, "delta applies to huber, not"),
        (
            {"type": "kl_divergence", "from_logits": True},
            "from_logits applies to binary_crossentropy, categorical_crossentropy and "
            "sparse_categorical_crossentropy, not kl_divergence",
        ),
        ({"type": "hinge", "from_logits": True}, "not hinge"),
        ({"type": "binary_crossentropy", "label_smoothing": 1.0}, "less than 1"),
        ({"type": "huber", "delta": 0.0}, "greater than 0"),
    ],
)
def test_options_that_do_not_apply_are_refused(loss_spec: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LossSpec.model_validate(loss_spec)


def plan(layers: list[dict], loss_spec: object, dataset: str):
    spec = JobSpec.model_validate(
        {"dataset": {"name": dataset}, "model": {"layers": layers}, "training": {"loss": loss_spec}}
    )
    return plan_job(spec, Settings())


def test_hinge_trains_on_class_labels_shaped_as_the_output() -> None:
    one = plan([{"type": "dense", "units": 1, "activation": "tanh"}], "hinge", "moons")
    assert (one.encoding, one.use_logits) == ("binary", False)
    many = plan([{"type": "dense", "units": 10}], "squared_hinge", "digits")
    assert (many.encoding, many.use_logits) == ("one_hot", False)
    with pytest.raises(SpecError, match="needs class labels but 'regression' is a regression"):
        plan([{"type": "dense", "units": 1}], "hinge", "regression")


def test_kl_divergence_needs_a_softmax_output_and_has_no_from_logits() -> None:
    softmax_out = plan(
        [{"type": "dense", "units": 10, "activation": "softmax"}], "KLDivergence", "digits"
    )
    assert (softmax_out.encoding, softmax_out.use_logits) == ("one_hot", True)
    with pytest.raises(SpecError, match=r"add activation 'softmax'$"):
        plan([{"type": "dense", "units": 10}], "kl_divergence", "digits")


def test_the_training_loss_is_built_with_the_spec_options() -> None:
    """With the weights frozen in place, smoothed BCE is linear in the smoothing s:
    L(s) = (1 - s) BCE(y, p) + s BCE(1/2, p). So L(0.2) - L(0) = 2 (L(0.1) - L(0))."""

    def val_loss(smoothing: float) -> float:
        spec = JobSpec.model_validate(
            {
                "dataset": {"name": "xor", "n_samples": 200, "validation_split": 0.25},
                "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
                "training": {
                    "loss": {"type": "binary_crossentropy", "label_smoothing": smoothing},
                    "optimizer": {"type": "sgd", "learning_rate": 1e-12},
                    "seed": 3,
                },
            }
        )
        return train_spec(spec, Settings(), device=CPU).history.epochs[-1]["val_loss"]

    l0, l1, l2 = val_loss(0.0), val_loss(0.1), val_loss(0.2)
    assert l1 != pytest.approx(l0, abs=1e-3)  # the option reached the loss
    assert l2 - l0 == pytest.approx(2 * (l1 - l0), rel=1e-4)


def test_ignore_class_reaches_the_training_step() -> None:
    """The hand-written step of a softmax dense network knows the plain loss only: with
    ignore_class the step goes through autograd, so "auto" and "autograd" train alike."""

    def val_loss(step: str, ignore_class: int | None) -> float:
        spec = JobSpec.model_validate(
            {
                "dataset": {"name": "spiral", "n_samples": 300, "validation_split": 0.25},
                "model": {"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
                "training": {
                    "loss": {
                        "type": "sparse_categorical_crossentropy",
                        "ignore_class": ignore_class,
                    },
                    "optimizer": {"type": "sgd", "learning_rate": 0.5},
                    "epochs": 2,
                    "step": step,
                    "seed": 3,
                },
            }
        )
        return train_spec(spec, Settings(), device=CPU).history.epochs[-1]["val_loss"]

    ignoring = val_loss("auto", 0)
    assert ignoring == pytest.approx(val_loss("autograd", 0), rel=1e-5)
    assert ignoring != pytest.approx(val_loss("auto", None), rel=1e-3)
