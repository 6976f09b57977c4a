"""Check a JobSpec against its data set and the limits, before anything is stored or queued.

`plan_job` builds the network on the meta device (no weights allocated), so the API can refuse
a spec that cannot run with every problem named, and report the Keras-style summary of one
that can. The worker calls it again to learn how to encode targets and compute the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from core.data import DatasetInfo
from core.data.catalog import UploadedDatasets
from core.errors import SpecError, SpecIssue
from core.nn.network import LayerSummary, build_network
from core.series import epoch_series
from core.settings import Settings
from core.spec.job import JobSpec
from core.training.dataset_checks import dataset_info
from core.training.losses import LOSSES
from core.training.lr_finder import suggested_rate_issues
from core.training.metrics import METRICS
from core.training.spec_checks import check_callbacks, check_network

Encoding = Literal["index", "one_hot", "binary", "values"]


@dataclass(frozen=True)
class JobPlan:
    info: DatasetInfo
    encoding: Encoding  # how targets are fed to the loss and metrics
    use_logits: bool  # compute the loss from the pre-activation outputs
    # The activation that turns the network's outputs into probabilities for the metrics, when
    # the network itself ends in logits (a linear output with from_logits: true).
    metrics_activation: str | None
    parameter_count: int
    layers: list[LayerSummary]
    series: tuple[str, ...] = ()  # what the run logs per epoch (core.series.epoch_series)

    def summary(self) -> dict:
        return {
            "parameter_count": self.parameter_count,
            "input_shape": list(self.info.feature_shape),
            "layers": [
                {
                    "name": r.name,
                    "type": r.type,
                    "output_shape": list(r.output_shape),
                    "params": r.params,
                }
                for r in self.layers
            ],
        }


def plan_job(spec: JobSpec, settings: Settings, uploads: UploadedDatasets | None = None) -> JobPlan:
    """`uploads` looks up the uploaded data sets the spec names (without it, only built-ins)."""
    issues: list[SpecIssue] = []
    info = dataset_info(spec, settings, uploads, issues)
    _check_training(spec, settings, issues)
    issues += suggested_rate_issues(spec)
    if info is None:
        raise SpecError(issues)

    if spec.model.input_shape is not None and tuple(spec.model.input_shape) != info.feature_shape:
        issues.append(
            SpecIssue(
                ("model", "input_shape"),
                f"the data set {spec.dataset.name!r} has inputs of shape "
                f"{info.feature_shape}, not {tuple(spec.model.input_shape)}",
            )
        )
    try:
        with torch.device("meta"):
            network = build_network(spec.model, info.feature_shape)
    except SpecError as e:
        raise SpecError(issues + e.issues) from None

    count = network.parameter_count()
    if count > settings.max_parameters:
        issues.append(
            SpecIssue(
                ("model", "layers"),
                f"the network has {count:,} parameters; the limit is "
                f"{settings.max_parameters:,} (EPOCHAL_MAX_PARAMETERS)",
                "too_large",
            )
        )
    output_shape = network.layer_summaries[-1].output_shape
    encoding, use_logits = _fit_loss(spec, info, output_shape, network.output_activation, issues)
    _check_target_encoding(spec, info, encoding, issues)
    _check_metrics(spec, info, issues)
    check_network(spec, info, network, issues)
    regularized = bool(network.penalties) or network.has_activity_penalties()
    series = epoch_series(spec, regularized=regularized)
    check_callbacks(spec, series, issues)
    if issues:
        raise SpecError(issues)
    metrics_activation = None
    if use_logits and network.output_activation is None:
        metrics_activation = LOSSES.get(spec.training.loss.type).logits_of
    return JobPlan(
        info,
        encoding,
        use_logits,
        metrics_activation,
        count,
        network.layer_summaries,
        series=tuple(series),
    )


def _check_training(spec: JobSpec, settings: Settings, issues: list[SpecIssue]) -> None:
    t = spec.training
    if t.epochs > settings.max_epochs:
        issues.append(
            SpecIssue(
                ("training", "epochs"),
                f"expected at most {settings.max_epochs:,} epochs "
                f"(EPOCHAL_MAX_EPOCHS); received epochs={t.epochs:,}",
                "too_large",
            )
        )
    if t.batch_size != "full" and t.batch_size > settings.max_batch_size:
        issues.append(
            SpecIssue(
                ("training", "batch_size"),
                f"expected at most {settings.max_batch_size:,} "
                f"(EPOCHAL_MAX_BATCH_SIZE); received batch_size={t.batch_size:,}",
                "too_large",
            )
        )


def _fit_loss(
    spec: JobSpec,
    info: DatasetInfo,
    output_shape: tuple[int, ...],
    output_activation: str | None,
    issues: list[SpecIssue],
) -> tuple[Encoding, bool]:
    """Which target encoding the loss needs, and whether it reads logits; issues when it can't fit."""
    loss = spec.training.loss
    definition = LOSSES.get(loss.type)
    where = ("training", "loss")
    out = f"the last layer outputs shape {output_shape}"
    k = info.num_classes

    def refuse(msg: str) -> tuple[Encoding, bool]:
        issues.append(SpecIssue(where, f"{loss.type}: {msg}", "loss_mismatch"))
        return "values", False

    # Targets.
    encoding: Encoding
    if definition.targets in ("class_index", "one_hot"):
        if info.task != "classification":
            return refuse(f"needs class labels but {spec.dataset.name!r} is a regression data set")
        if output_shape != (k,):
            return refuse(f"{out}; expected ({k},), one unit per class of {spec.dataset.name!r}")
        encoding = "index" if definition.targets == "class_index" else "one_hot"
    elif definition.targets == "binary":
        if info.task != "classification" or k != 2:
            return refuse(
                f"needs two classes; {spec.dataset.name!r} has "
                f"{k if k else 'continuous targets, not'} classes"
            )
        if output_shape != (1,):
            return refuse(f"{out}; expected (1,), a single sigmoid unit")
        encoding = "binary"
    elif info.task == "regression":
        if definition.targets == "labels":
            return refuse(f"needs class labels but {spec.dataset.name!r} is a regression data set")
        if output_shape != info.target_shape:
            return refuse(f"{out}; the targets have shape {info.target_shape}")
        encoding = "values"
    elif output_shape == (1,) and k == 2:
        encoding = "binary"
    elif output_shape == (k,):
        encoding = "one_hot"
    else:
        return refuse(
            f"{out}; expected ({k},) for one-hot targets"
            + (" or (1,) for 0/1 targets" if k == 2 else "")
        )

    # Logits or outputs. The spec refuses from_logits for a loss that does not take it.
    if definition.logits_of is None:
        return encoding, False
    if output_activation == definition.logits_of:
        if loss.from_logits:
            return refuse(
                f"from_logits is true but the last layer applies {output_activation}; "
                "drop one of the two"
            )
        return encoding, True
    if output_activation is None and loss.from_logits:
        return encoding, True
    if output_activation is None:
        fix = " or set from_logits: true" if "from_logits" in definition.options else ""
        return refuse(
            f"expects probabilities but the last layer has no {definition.logits_of} "
            f"activation: add activation {definition.logits_of!r}{fix}"
        )
    return refuse(f"needs a {definition.logits_of} output, not {output_activation}")


def _check_target_encoding(
    spec: JobSpec, info: DatasetInfo, encoding: Encoding, issues: list[SpecIssue]
) -> None:
    """`preprocessing.targets: one_hot` asks for one-hot targets: the loss must read them."""
    if spec.dataset.preprocessing.targets != "one_hot":
        return
    where = ("dataset", "preprocessing", "targets")
    loss = spec.training.loss.type
    if info.task != "classification":
        issues.append(
            SpecIssue(where, f"one_hot needs class labels; {spec.dataset.name!r} is a regression")
        )
    elif encoding == "index":
        issues.append(
            SpecIssue(
                where,
                f"one_hot targets, but {loss} reads class indices: use "
                "categorical_crossentropy, or drop targets: one_hot",
            )
        )
    elif encoding == "binary":
        issues.append(
            SpecIssue(
                where,
                f"one_hot targets need {info.num_classes} outputs; {loss} with one output unit "
                "reads 0/1 targets",
            )
        )


def _check_metrics(spec: JobSpec, info: DatasetInfo, issues: list[SpecIssue]) -> None:
    for i, name in enumerate(spec.training.metrics):
        metric = METRICS.get(name)
        wants_classes = metric.classifiers_only
        where = ("training", "metrics", i)
        if wants_classes != (info.task == "classification"):
            kind = "a classification" if wants_classes else "a regression"
            issues.append(
                SpecIssue(where, f"{name} needs {kind} data set; {spec.dataset.name!r} is not")
            )
        elif info.num_classes is not None and info.num_classes < metric.min_classes:
            issues.append(
                SpecIssue(
                    where,
                    f"{name} needs at least {metric.min_classes} classes to say anything; "
                    f"{spec.dataset.name!r} has {info.num_classes}",
                )
            )
