"""Checks at submission that need the built network: its weights, its inputs, its callbacks."""

from __future__ import annotations

from core.data import DatasetInfo
from core.errors import SpecIssue
from core.nn.network import Network
from core.series import no_best, scores, validation_hint
from core.spec.job import JobSpec
from core.training.monitor import maximizes


def check_network(
    spec: JobSpec, info: DatasetInfo, network: Network, issues: list[SpecIssue]
) -> None:
    if network.parameter_count() == 0:
        issues.append(
            SpecIssue(
                ("model", "layers"),
                "the network has no trainable weights: add a "
                "layer that learns (dense, conv, recurrent, …)",
            )
        )
    for i, layer in enumerate(spec.model.layers):
        if layer.type != "embedding":
            continue
        where = ("model", "layers", i)
        if i > 0:
            issues.append(
                SpecIssue(
                    where,
                    "an embedding reads integer token ids, so it must be the model's first layer",
                )
            )
        elif info.ids is None:
            issues.append(
                SpecIssue(
                    where,
                    f"an embedding reads integer token ids, but the data "
                    f"set {spec.dataset.name!r} has real-valued features",
                )
            )
        elif info.ids[1] >= layer.input_dim or info.ids[0] < 0:
            issues.append(
                SpecIssue(
                    where,
                    f"input_dim={layer.input_dim} but the data set's ids "
                    f"run from {info.ids[0]} to {info.ids[1]}: expected "
                    f"input_dim of at least {info.ids[1] + 1}",
                )
            )


def check_callbacks(spec: JobSpec, series: list[str], issues: list[SpecIssue]) -> None:
    """Each callback's monitor among the scores of `series`, what the run logs
    (`core.series.epoch_series`): not `lr`, which has no best."""
    scheduled = not isinstance(spec.training.optimizer.learning_rate, int | float | str)
    for i, callback in enumerate(spec.training.callbacks):
        if callback.type == "reduce_lr_on_plateau" and scheduled:
            issues.append(
                SpecIssue(
                    ("training", "callbacks", i),
                    "reduce_lr_on_plateau needs a constant learning_rate; the optimizer's is a "
                    f"{spec.training.optimizer.learning_rate.type} schedule, which sets the rate every step",
                )
            )
            continue
        monitor = getattr(callback, "monitor", None)
        if monitor is None:
            continue
        where = ("training", "callbacks", i, "monitor")
        why = no_best(monitor, series)
        if why is not None:
            issues.append(SpecIssue(where, f"{callback.type} cannot monitor {monitor!r}: {why}"))
            continue
        if monitor not in series:
            issues.append(
                SpecIssue(
                    where,
                    f"{callback.type} monitors {monitor!r}, which this job "
                    f"does not log; it logs: {', '.join(scores(series))}"
                    + validation_hint(monitor, series),
                )
            )
            continue
        try:
            maximizes(monitor, callback.mode)
        except ValueError as e:
            issues.append(SpecIssue(where, str(e)))
