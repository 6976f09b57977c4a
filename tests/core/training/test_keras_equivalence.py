"""What Keras 3 writes (names, aliases, `serialize(...)`) is accepted and means what it means in
Keras: numbers compared with real Keras (torch backend, CPU) on tiny tensors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter
from torch import nn

from core.nn.regularization import apply_constraint, penalty
from core.registry import squash
from core.spec.initializers import INITIALIZER_TYPES, InitializerSpec
from core.spec.losses import LossSpec
from core.spec.metrics import MetricName
from core.spec.optimizers import OptimizerSpec
from core.spec.regularizers import L1L2, ConstraintSpec
from core.spec.schedules import LearningRate
from core.training.losses import LOSSES
from core.training.metrics import METRICS
from core.training.optimizers import build_optimizer
from core.training.schedules import learning_rate_schedule

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported: it reads it once
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")
RNG = np.random.default_rng(0)


def numpy(value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)


def ours(loss: object, outputs: np.ndarray, y: np.ndarray) -> float:
    spec = LossSpec.model_validate(loss)
    fn = LOSSES.get(spec.type).make(spec.options())
    return float(fn(torch.tensor(outputs), torch.tensor(y)))


# Inputs per kind of loss: what Epochal's loss reads (logits for a cross-entropy) and what
# Keras's reads (probabilities, or logits with from_logits), with targets for both.
LOGITS = RNG.normal(size=(6, 4))
ONE_HOT = np.eye(4)[RNG.integers(0, 4, size=6)]
BINARY_LOGITS = RNG.normal(size=(6, 1))
BINARY = RNG.integers(0, 2, size=(6, 1)).astype(np.float64)
VALUES = RNG.uniform(0.5, 2.0, size=(6, 3))
TARGETS = RNG.uniform(0.5, 2.0, size=(6, 3))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def inputs(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(what Epochal's loss reads, what Keras's reads, targets)."""
    logits_of = LOSSES.get(name).logits_of
    if logits_of == "sigmoid":
        return BINARY_LOGITS, 1 / (1 + np.exp(-BINARY_LOGITS)), BINARY
    if logits_of == "softmax":
        return LOGITS, softmax(LOGITS), ONE_HOT
    if LOSSES.get(name).targets == "labels":
        return VALUES - 1.25, VALUES - 1.25, BINARY.repeat(3, axis=1)
    return VALUES, VALUES, TARGETS


def keras_loss_names() -> list[str]:
    """Every name `keras.losses.get` resolves to a loss that Epochal offers (sparse categorical
    cross-entropy aside: its class-index targets are compared in test_losses)."""
    from keras.src.losses import ALL_OBJECTS_DICT

    names = []
    for name in sorted(ALL_OBJECTS_DICT):
        try:
            resolved = keras.losses.get(name)
        except (TypeError, ValueError):
            continue
        target = squash(getattr(resolved, "__name__", type(resolved).__name__))
        offered = [n for n in LOSSES if squash(n) == target]
        if offered and offered[0] != "sparse_categorical_crossentropy":
            names.append(name)
    return names


@pytest.mark.parametrize("name", keras_loss_names())
def test_every_keras_loss_name_and_alias_is_accepted_with_kerass_value(name: str) -> None:
    spec = LossSpec.model_validate(name)
    ours_in, keras_in, y = inputs(spec.type)
    resolved = keras.losses.get(name)
    expected = float(np.mean(numpy(resolved(y, keras_in))))
    assert ours(name, ours_in, y) == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    "loss",
    [
        keras.losses.Huber(),
        keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2),
        keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        keras.losses.MeanSquaredLogarithmicError(reduction="mean"),
        keras.losses.LogCosh(),
        keras.losses.KLDivergence(),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_a_serialized_keras_loss_keeps_its_arguments_and_value(loss) -> None:
    serialized = keras.losses.serialize(loss)
    spec = LossSpec.model_validate(serialized)
    ours_in, keras_in, y = inputs(spec.type)
    from_logits = serialized["config"].get("from_logits", False)
    assert spec.from_logits is from_logits
    expected = float(numpy(loss(y, ours_in if from_logits else keras_in)))
    assert ours(serialized, ours_in, y) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_huber_written_with_its_delta_computes_kerass_huber() -> None:
    # (Keras 3.15's Huber.get_config leaves delta out, so its serialized form cannot carry it.)
    y, outputs = TARGETS, VALUES
    expected = float(numpy(keras.losses.Huber(delta=0.3)(y, outputs)))
    assert ours({"class_name": "Huber", "config": {"delta": 0.3}}, outputs, y) == pytest.approx(
        expected, rel=1e-5
    )


@pytest.mark.parametrize("ignore_class", [0, 2, 7])
def test_ignore_class_leaves_out_that_class_as_keras_does(ignore_class: int) -> None:
    labels = np.array([0, 1, 2, 0, 3, 0])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_class)
    serialized = keras.losses.serialize(loss)
    expected = float(numpy(loss(labels, LOGITS)))
    assert ours(serialized, LOGITS, labels) == pytest.approx(expected, rel=1e-5)
    # a batch of ignored samples only: 0, as in Keras, not 0/0
    assert ours(serialized, LOGITS[:1], labels[:1]) == (
        0.0
        if ignore_class == 0
        else pytest.approx(float(numpy(loss(labels[:1], LOGITS[:1]))), rel=1e-5)
    )


@pytest.mark.parametrize(
    "regularizer",
    ["l1", "l2", {"class_name": "L2", "config": {"l2": 1e-4}}, keras.regularizers.L1L2(0.1, 0.2)],
    ids=["l1", "l2", "serialized-L2", "L1L2-object"],
)
def test_regularizers_as_keras_writes_them_give_kerass_penalty(regularizer) -> None:
    keras_reg = keras.regularizers.get(regularizer)
    written = regularizer if isinstance(regularizer, str | dict) else None
    written = written or keras.regularizers.serialize(keras_reg)
    w = RNG.normal(size=(3, 4))
    ours_penalty = float(penalty(torch.tensor(w), L1L2.model_validate(written)))
    assert ours_penalty == pytest.approx(float(numpy(keras_reg(w))), rel=1e-6)


@pytest.mark.parametrize(
    "written",
    ["L1L2", "l1l2", {"type": "l1_l2"}, {"type": "L1L2"}, {"class_name": "L1L2", "config": {}}],
)
def test_every_spelling_of_l1l2_is_kerass_3_l1_l2_of_0_each(written) -> None:
    assert keras.regularizers.l1_l2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert L1L2.model_validate(written) == L1L2(l1=0.0, l2=0.0)


def test_the_bare_name_l1_l2_is_refused_as_keras_3_refuses_it() -> None:
    # Keras 2's l1_l2() meant 0.01 each, Keras 3's 0 each: the name alone says neither.
    with pytest.raises(ValueError, match="Could not interpret"):
        keras.regularizers.get("l1_l2")
    with pytest.raises(ValueError, match=r"'l1_l2' is ambiguous.*write the factors") as refused:
        L1L2.model_validate("l1_l2")
    suggested = '{"type": "l1_l2", "l1": 0.01, "l2": 0.01}'
    assert suggested in str(refused.value)
    assert L1L2.model_validate_json(suggested) == L1L2(l1=0.01, l2=0.01)


@pytest.mark.parametrize(
    "constraint",
    [
        keras.constraints.MaxNorm(max_value=0.5),
        keras.constraints.UnitNorm(),
        keras.constraints.MinMaxNorm(min_value=0.8, max_value=1.2, rate=0.5),
        keras.constraints.NonNeg(),
    ],
    ids=lambda c: type(c).__name__,
)
def test_serialized_keras_constraints_do_what_keras_does_to_a_dense_kernel(constraint) -> None:
    spec = TypeAdapter(ConstraintSpec).validate_python(keras.constraints.serialize(constraint))
    kernel = RNG.normal(size=(5, 3))  # Keras's (in, out); PyTorch's weight is its transpose
    weight = torch.tensor(kernel.T.copy())
    apply_constraint(weight, spec)
    np.testing.assert_allclose(weight.numpy().T, numpy(constraint(kernel)), rtol=1e-6)


def test_every_serialized_keras_initializer_is_accepted_and_stored_by_name() -> None:
    spec = TypeAdapter(InitializerSpec)
    for name in INITIALIZER_TYPES:
        cls = next(
            c for c in dir(keras.initializers) if c[0].isupper() and squash(c) == squash(name)
        )
        serialized = keras.initializers.serialize(getattr(keras.initializers, cls)())
        assert spec.validate_python(serialized) == name, serialized
    seeded = keras.initializers.serialize(keras.initializers.HeNormal(seed=3))
    assert spec.validate_python(seeded).seed == 3


def test_every_offered_keras_metric_class_serialized_is_accepted() -> None:
    names = TypeAdapter(list[MetricName])
    classes = [keras.metrics.get(n) for n in ("mse", "mae", "mape", "msle")] + [
        getattr(keras.metrics, cls)()
        for cls in (
            "BinaryAccuracy",
            "CategoricalAccuracy",
            "SparseCategoricalAccuracy",
            "TopKCategoricalAccuracy",
            "SparseTopKCategoricalAccuracy",
            "Precision",
            "Recall",
            "F1Score",
            "AUC",
            "RootMeanSquaredError",
            "R2Score",
        )
    ]
    accepted = names.validate_python([keras.metrics.serialize(m) for m in classes])
    assert accepted[:4] == ["mse", "mae", "mape", "msle"]
    assert set(accepted) <= set(METRICS)
    assert len(set(accepted)) == len(classes)


SCHEDULES = [
    keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.5, staircase=True),
    keras.optimizers.schedules.InverseTimeDecay(0.1, 5, 0.5),
    keras.optimizers.schedules.PolynomialDecay(0.1, 10, 0.01, power=2.0, cycle=True),
    keras.optimizers.schedules.PiecewiseConstantDecay([3, 8], [0.1, 0.05, 0.01]),
    keras.optimizers.schedules.CosineDecay(0.0, 10, alpha=0.1, warmup_target=0.2, warmup_steps=4),
    keras.optimizers.schedules.CosineDecayRestarts(0.1, 4, t_mul=2.0, m_mul=0.5),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_a_serialized_keras_schedule_gives_kerass_rates(schedule) -> None:
    spec = TypeAdapter(LearningRate).validate_python(keras.optimizers.schedules.serialize(schedule))
    rate = learning_rate_schedule(spec, steps_per_epoch=1, epochs=1)
    assert rate is not None
    for step in range(0, 25, 3):
        assert rate(step) == pytest.approx(float(numpy(schedule(step))), rel=1e-5)


KERNEL = RNG.normal(size=(3, 2))  # Keras's (in, out)
GRADIENTS = [RNG.normal(size=(3, 2)) * 3 for _ in range(3)]


@pytest.mark.parametrize(
    "optimizer",
    [
        keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.05, clipnorm=1.0),
        keras.optimizers.SGD(learning_rate=0.1, nesterov=True, momentum=0.5, clipvalue=0.5),
        keras.optimizers.Adam(learning_rate=0.01, amsgrad=True, weight_decay=0.1, clipnorm=2.0),
        keras.optimizers.AdamW(learning_rate=0.01, global_clipnorm=1.0),
        keras.optimizers.RMSprop(learning_rate=0.01, centered=True, momentum=0.5),
        keras.optimizers.Adam(
            learning_rate=keras.optimizers.schedules.ExponentialDecay(0.01, 1, 0.5)
        ),
    ],
    ids=lambda o: type(o).__name__,
)
def test_a_serialized_keras_optimizer_takes_kerass_steps(optimizer) -> None:
    spec = TypeAdapter(OptimizerSpec).validate_python(keras.optimizers.serialize(optimizer))
    variable = keras.Variable(KERNEL.astype("float32"))
    optimizer.build([variable])
    layer = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(KERNEL.T))
    ours_opt = build_optimizer(layer, spec, steps_per_epoch=1, epochs=1)
    for gradient in GRADIENTS:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient, "float32"), variable)])
        layer.weight.grad = torch.tensor(gradient.T.copy())
        if ours_opt.before_step is not None:
            ours_opt.before_step()
        ours_opt.optimizer.step()
        if ours_opt.after_step is not None:
            ours_opt.after_step()
    np.testing.assert_allclose(
        layer.weight.detach().numpy().T, numpy(variable), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("name", ["mse", "mae", "mape", "msle"])
def test_regression_metrics_by_keras_alias_give_kerass_values(name: str) -> None:
    metric = METRICS.get(TypeAdapter(MetricName).validate_python(name.upper())).make()
    for rows in (slice(0, 4), slice(4, 6)):  # two batches: the epoch's mean over samples
        metric.update(torch.tensor(VALUES[rows]), torch.tensor(TARGETS[rows]))
    keras_metric = keras.metrics.get(name)
    keras_metric.update_state(TARGETS[:4], VALUES[:4])
    keras_metric.update_state(TARGETS[4:], VALUES[4:])
    assert float(metric.compute()) == pytest.approx(float(numpy(keras_metric.result())), rel=1e-5)
