"""Evaluating a trained model on a data set: the spec's loss and metrics, as training reports them.

The data set goes through the model's saved preprocessing (its scaler), and its targets are
encoded as the job's loss reads them. A data set that does not fit the model (another input
shape, task or class count, or other class labels) is refused, located at `dataset`.
"""

from __future__ import annotations

from typing import Any

import torch

from core.data import Arrays, DatasetInfo
from core.errors import SpecIssue
from core.serving import InputsError, LoadedModel
from core.training.loop import EVAL_BATCH_MIN, evaluate
from core.training.session import make_objective, to_tensors


def check_fits(
    model: LoadedModel, name: str, info: DatasetInfo, classes: list[Any] | None, limit: int
) -> None:
    """Raises InputsError when the data set `name` cannot be evaluated by `model`."""
    problems = []
    mine = model.info
    if info.feature_shape != mine.feature_shape:
        problems.append(
            f"{name!r} has inputs of shape {info.feature_shape}; the model takes "
            f"{mine.feature_shape}"
        )
    if info.task != mine.task:
        problems.append(f"{name!r} is a {info.task} data set; the model does {mine.task}")
    elif info.num_classes != mine.num_classes or info.target_shape != mine.target_shape:
        problems.append(
            f"{name!r} has "
            + (
                f"{info.num_classes} classes; the model has {mine.num_classes}"
                if info.task == "classification"
                else f"targets of shape {info.target_shape}; the model's are {mine.target_shape}"
            )
        )
    elif model.data.classes is not None and classes is not None and classes != model.data.classes:
        problems.append(
            f"{name!r} labels its classes {classes[:10]}; the model was trained on "
            f"{model.data.classes[:10]}"
        )
    if info.samples > limit:
        problems.append(
            f"{name!r} has {info.samples:,} samples; evaluation takes at most {limit:,} "
            "(EPOCHAL_MAX_EVALUATE_SAMPLES)"
        )
    if problems:
        raise InputsError([SpecIssue(("dataset",), p, "dataset_mismatch") for p in problems])


def evaluate_model(model: LoadedModel, arrays: Arrays) -> dict[str, float]:
    """The loss and the spec's metrics of `model` on `arrays` (raw, as the data set holds them)."""
    assert model.spec is not None and model.plan is not None  # set by serving.load_model
    x = model.data.scaler.apply(arrays.x) if model.data.scaler is not None else arrays.x
    data = to_tensors(
        Arrays(x, arrays.y), model.plan.encoding, model.info.num_classes, torch.device("cpu")
    )
    batch = model.spec.training.batch_size
    size = max(len(data) if batch == "full" else batch, EVAL_BATCH_MIN)
    return evaluate(model.network, make_objective(model.spec, model.plan), data, size)
