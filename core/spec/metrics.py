"""A metric of `training.metrics`: a Keras name, alias or class (`"accuracy"`, `"acc"`, `"mse"`,
`"MeanSquaredError"`), or an object, as Keras serializes one (`keras.metrics.serialize`:
`{"class_name": "Precision", "config": {"thresholds": null, ...}}`) or `{"type": ..., ...}`.

It is stored as the metric's registered name, which names its series. An object's arguments are
taken at the values Epochal computes (Keras's defaults, listed in `ARGUMENTS`) and refused
otherwise, with why, located at the argument; Keras's `name` label is dropped (the series keeps
Epochal's name) and `dtype` must be float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, create_model

from core.spec.base import Spec, keras_default, unwrap, without_label
from core.training.metrics import METRICS

# An argument: (Keras's default, whether a value means what Epochal computes, why if not).
Check = tuple[Any, Callable[[Any], bool], str]


def _is(default: Any, why: str) -> Check:
    return (default, lambda value: value == default, why)


def _none(why: str) -> Check:
    return (None, lambda value: value is None, why)


THRESHOLD = "Epochal thresholds probabilities at 0.5"
ONE_HALF = (None, lambda v: v in (None, 0.5, [0.5]), THRESHOLD)
ARGUMENTS: dict[str, dict[str, Check]] = {
    "binary_accuracy": {"threshold": _is(0.5, THRESHOLD)},
    "top_k_categorical_accuracy": {"k": _is(5, "Epochal's top-k accuracy has k = 5")},
    "sparse_top_k_categorical_accuracy": {"k": _is(5, "Epochal's top-k accuracy has k = 5")},
    "precision": {
        "thresholds": ONE_HALF,
        "top_k": _none("top_k is not offered: every entry above the threshold counts"),
        "class_id": _none("class_id is not offered: Epochal's precision is over every class"),
    },
    "recall": {
        "thresholds": ONE_HALF,
        "top_k": _none("top_k is not offered: every entry above the threshold counts"),
        "class_id": _none("class_id is not offered: Epochal's recall is over every class"),
    },
    "f1_score": {
        # Keras's default (None) is one F1 per class; a series holds one number: the macro mean.
        "average": (
            None,
            lambda v: v in (None, "macro"),
            "Epochal's f1_score is the macro average (Keras's average=None, one value per "
            "class, is logged as their mean)",
        ),
        "threshold": _none("Epochal's f1_score predicts the class of highest probability"),
    },
    "auc": {
        "num_thresholds": _is(200, "Epochal's AUC has Keras's 200 thresholds"),
        "curve": _is("ROC", "Epochal's AUC is the ROC curve's (PR is not offered)"),
        "summation_method": _is(
            "interpolation", "Epochal's AUC sums trapezoids (Keras's interpolation)"
        ),
        "multi_label": _is(False, "Epochal's AUC flattens the classes (multi_label false)"),
        "num_labels": _none("num_labels goes with multi_label, which is not offered"),
        "label_weights": _none("label_weights go with multi_label, which is not offered"),
        "from_logits": _is(False, "metrics read probabilities (the output layer's activation)"),
    },
    "r2_score": {
        "class_aggregation": _is(
            "uniform_average", "Epochal's r2_score averages the outputs uniformly"
        ),
        "num_regressors": _is(0, "the adjusted R² (num_regressors > 0) is not offered"),
    },
}
DTYPE: Check = (
    None,
    lambda v: v in (None, "float32"),
    "metrics are computed in float32 (accumulated in float64)",
)


def metric_name(name: str) -> str:
    """The registered name of a metric written as Keras accepts it."""
    return METRICS.canonical(name)


def series_name(monitor: str) -> str:
    """A monitored series as Epochal names it: Keras's metric aliases, with or without `val_`,
    read as the metric's registered name (`"val_acc"` -> `"val_accuracy"`)."""
    prefix = "val_" if monitor.startswith("val_") else ""
    base = monitor.removeprefix(prefix)
    return prefix + METRICS.unalias(base)


def _arguments_model(name: str) -> type[Spec]:
    """The object form of metric `name`: its `type` and Keras's arguments, none of them stored."""
    fields: dict[str, Any] = {"type": (Literal[name], ...)}
    for argument, (default, accepts, why) in {"dtype": DTYPE, **ARGUMENTS.get(name, {})}.items():
        fields[argument] = (
            Annotated[Any, keras_default(accepts, why)],
            Field(default, exclude=True),
        )
    return create_model(f"Metric_{name}", __base__=Spec, **fields)


MODELS = {name: _arguments_model(name) for name in METRICS}
NAME_TAG = "name"


def _normalize(value: Any) -> Any:
    """Keras's serialized form unwrapped, its `name` dropped, the `type` read as the metric's
    registered name (an unknown one is refused with the list of known names)."""
    value = without_label(unwrap(value))
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return {**value, "type": metric_name(value["type"])}
    if isinstance(value, dict | Spec):
        return value
    if not isinstance(value, str):
        raise ValueError(
            "expected a metric name or an object with its 'type' (or Keras's 'class_name'). "
            f"Received: {value!r}"
        )
    return metric_name(value)


def _tag(value: Any) -> str | None:
    if isinstance(value, str):
        return NAME_TAG
    if isinstance(value, dict):
        return value.get("type")
    return getattr(value, "type", None)


def _as_name(value: Any) -> str:
    return value if isinstance(value, str) else value.type


MetricName = Annotated[
    Union[
        (
            Annotated[str, Tag(NAME_TAG)],
            *(Annotated[model, Tag(name)] for name, model in MODELS.items()),
        )
    ],
    Discriminator(
        _tag,
        custom_error_type="metric",
        custom_error_message="expected a metric name or an object with its 'type'",
    ),
    BeforeValidator(_normalize),
    AfterValidator(_as_name),
]
