"""The data set part of a spec checked at submission: the name (a built-in or an upload), its
options, its size, the held-out test and validation parts, and a separate validation set."""

from __future__ import annotations

import math

from core.data import DATASETS, DatasetInfo
from core.data.base import OPTIONS
from core.data.catalog import UnknownDataset, UploadedDatasets, resolve
from core.errors import SpecIssue
from core.settings import Settings
from core.spec.job import DatasetSpec, JobSpec


def dataset_info(
    spec: JobSpec,
    settings: Settings,
    uploads: UploadedDatasets | None,
    issues: list[SpecIssue],
) -> DatasetInfo | None:
    ds = spec.dataset
    try:
        resolved = resolve(ds.name, ds, uploads)
    except UnknownDataset as e:
        issues.append(SpecIssue(("dataset", "name"), str(e), "unknown_dataset"))
        return None
    options = DATASETS.get(ds.name).options if resolved.uploaded is None else frozenset()
    bad = [o for o in OPTIONS if getattr(ds, o) is not None and o not in options]
    for option in bad:
        allowed = ", ".join(sorted(options)) or "none"
        issues.append(
            SpecIssue(
                ("dataset", option),
                f"{option} does not apply to the data set {ds.name!r} (its options: {allowed})",
            )
        )
    if ds.n_samples is not None and ds.n_samples > settings.max_samples:
        issues.append(
            SpecIssue(
                ("dataset", "n_samples"),
                f"expected at most {settings.max_samples:,} samples "
                f"(EPOCHAL_MAX_SAMPLES); received n_samples={ds.n_samples:,}",
                "too_large",
            )
        )
    if bad:
        return None
    info = resolved.info
    values = info.samples * math.prod(info.feature_shape)
    if values > settings.max_data_values:
        issues.append(
            SpecIssue(
                ("dataset",),
                f"the data set would hold {values:,} input values ({info.samples:,} samples of "
                f"shape {info.feature_shape}); the limit is {settings.max_data_values:,} "
                "(EPOCHAL_MAX_DATA_VALUES)",
                "too_large",
            )
        )
    n_test = round(info.samples * ds.test_split)
    if ds.test_split > 0 and (n_test == 0 or n_test == info.samples):
        issues.append(
            SpecIssue(
                ("dataset", "test_split"),
                f"test_split={ds.test_split} of {info.samples} samples "
                "leaves an empty training or test set",
            )
        )
    remaining = info.samples - n_test
    n_val = round(remaining * ds.validation_split)
    if ds.validation_split > 0 and (n_val == 0 or n_val == remaining):
        issues.append(
            SpecIssue(
                ("dataset", "validation_split"),
                f"validation_split={ds.validation_split} of {remaining} samples "
                "leaves an empty training or validation set",
            )
        )
    if ds.validation is not None:
        _check_validation_set(spec, info, uploads, issues)
    return info


def _check_validation_set(
    spec: JobSpec, info: DatasetInfo, uploads: UploadedDatasets | None, issues: list[SpecIssue]
) -> None:
    """A separate validation set must look like the training set to the network and the loss."""
    ds, where = spec.dataset, ("dataset", "validation")
    name = ds.validation or ""
    if ds.validation_split > 0:
        issues.append(
            SpecIssue(where, "give a validation data set or a validation_split, not both")
        )
        return
    try:
        # A built-in validation set is generated with its default options.
        val = resolve(name, DatasetSpec(name=name), uploads).info
    except UnknownDataset as e:
        issues.append(SpecIssue(where, str(e), "unknown_dataset"))
        return
    mine = (info.task, info.feature_shape, info.num_classes, info.target_shape)
    theirs = (val.task, val.feature_shape, val.num_classes, val.target_shape)
    if mine != theirs:
        issues.append(
            SpecIssue(
                where,
                f"the validation set {ds.validation!r} is {_describe(val)}; the training set "
                f"{ds.name!r} is {_describe(info)}: expected the same",
                "dataset_mismatch",
            )
        )


def _describe(info: DatasetInfo) -> str:
    targets = (
        f"{info.num_classes} classes"
        if info.task == "classification"
        else f"targets of shape {info.target_shape}"
    )
    return f"{info.task} with inputs of shape {info.feature_shape} and {targets}"
