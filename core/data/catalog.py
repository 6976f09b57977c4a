"""A spec's data set names resolved: a built-in name, or the id of an uploaded data set.

The spec stays pure (no store in its validators); uploaded data sets are looked up here,
through an `UploadedDatasets` source handed in by the caller: the API and the worker pass one
backed by SQL and the artifacts store, a served model one backed by what it saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core.data.base import DATASETS, Arrays, DatasetInfo

if TYPE_CHECKING:
    from core.spec.job import DatasetSpec

UPLOAD_ID = re.compile(r"^ds_[0-9a-f]{20}$")


def is_upload_id(name: str) -> bool:
    return bool(UPLOAD_ID.match(name))


@dataclass(frozen=True)
class UploadedDataset:
    id: str
    info: DatasetInfo
    artifact_key: str
    classes: list | None = None  # class id -> label in the uploaded file
    table: dict | None = None  # a table's columns, features and categories (Encoding.as_dict)


class UploadedDatasets(Protocol):
    def find(self, dataset_id: str) -> UploadedDataset | None:
        """The metadata (from SQL, without loading the file), or None when there is none."""

    def load(self, dataset: UploadedDataset) -> Arrays: ...


class UnknownDataset(LookupError):
    """A name that is neither a built-in data set nor an uploaded one."""


@dataclass(frozen=True)
class Resolved:
    name: str
    info: DatasetInfo
    uploaded: UploadedDataset | None  # None for a built-in


def resolve(name: str, spec: DatasetSpec, uploads: UploadedDatasets | None) -> Resolved:
    """The info of `name` (built-in options taken from `spec`); raises UnknownDataset."""
    if not is_upload_id(name):
        return Resolved(name, DATASETS.get(name).info(spec), None)
    found = uploads.find(name) if uploads is not None else None
    if found is None:
        raise UnknownDataset(f"no uploaded data set with id {name!r} (GET /v1/datasets lists them)")
    return Resolved(name, found.info, found)


def load(resolved: Resolved, spec: DatasetSpec, uploads: UploadedDatasets | None) -> Arrays:
    if resolved.uploaded is None:
        return DATASETS.get(resolved.name).load(spec)
    assert uploads is not None  # resolve() found it through them
    return uploads.load(resolved.uploaded)


@dataclass(frozen=True)
class SavedUploads:
    """The uploaded data sets' info a model saved with it: enough to plan, not to load."""

    infos: dict[str, DatasetInfo]

    def find(self, dataset_id: str) -> UploadedDataset | None:
        info = self.infos.get(dataset_id)
        return UploadedDataset(dataset_id, info, "") if info is not None else None

    def load(self, dataset: UploadedDataset) -> Arrays:
        raise UnknownDataset(f"the data set {dataset.id!r} is not loaded when serving a model")
