"""/v1/datasets: the data sets a spec can name."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from core.data import DATASETS
from core.errors import NotFoundError, UnknownNameError
from core.spec.job import DatasetSpec

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


class DatasetOut(BaseModel):
    name: str
    description: str
    task: str
    feature_shape: list[int]
    samples: int
    num_classes: int | None
    target_shape: list[int]
    options: list[str]


def describe(name: str) -> DatasetOut:
    builtin = DATASETS.get(name)
    info = builtin.info(DatasetSpec(name=name))  # with default options
    return DatasetOut(
        name=name,
        description=builtin.description,
        task=info.task,
        feature_shape=list(info.feature_shape),
        samples=info.samples,
        num_classes=info.num_classes,
        target_shape=list(info.target_shape),
        options=sorted(builtin.options),
    )


@router.get("", response_model=list[DatasetOut])
def list_datasets() -> list[DatasetOut]:
    return [describe(name) for name in DATASETS.names()]


@router.get("/{name}", response_model=DatasetOut)
def get_dataset(name: str) -> DatasetOut:
    try:
        return describe(DATASETS.canonical(name))
    except UnknownNameError as e:
        raise NotFoundError(str(e)) from e
