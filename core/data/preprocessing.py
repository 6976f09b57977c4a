"""Feature scaling fitted on the training part, and what a model needs to read new data later.

Statistics are per index of the last axis, over every other axis, as Keras's
`Normalization(axis=-1)` computes them: per feature for a table, per channel for images, per
feature across time steps for sequences. A constant feature (zero spread) is only shifted.

A trained model keeps a `ModelData` record beside its weights: the scaler, the class labels of
an uploaded data set, and the info of each uploaded data set its spec names, so the model can
still be served and evaluated after those data sets are deleted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from core.data.base import DatasetInfo
from epochal_client.rows import scale

FeatureScaling = Literal["none", "standardize", "min_max"]


@dataclass(frozen=True)
class Scaler:
    """x -> (x - offset) / scale, per index of the last axis."""

    kind: FeatureScaling
    offset: list[float]
    scale: list[float]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float32, as a downloaded model's user scales rows (epochal_client.rows.scale)."""
        return scale(x, asdict(self))

    def apply_tensor(self, x: torch.Tensor) -> torch.Tensor:
        offset = torch.tensor(self.offset, dtype=x.dtype, device=x.device)
        return (x - offset) / torch.tensor(self.scale, dtype=x.dtype, device=x.device)


def fit_scaler(kind: FeatureScaling, x: np.ndarray) -> Scaler | None:
    if kind == "none":
        return None
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    if kind == "standardize":
        offset, spread = flat.mean(axis=0), flat.std(axis=0)
    else:
        offset = flat.min(axis=0)
        spread = flat.max(axis=0) - offset
    spread = np.where(spread > 0, spread, 1.0)
    return Scaler(kind, offset.tolist(), spread.tolist())


@dataclass(frozen=True)
class ModelData:
    """Saved with a model (`preprocessing.json`): how to feed it and read its outputs."""

    scaler: Scaler | None = None
    classes: list[Any] | None = None  # class id -> label, for a data set uploaded with labels
    datasets: dict[str, DatasetInfo] = field(default_factory=dict)  # uploaded sets the spec names
    # An uploaded table's columns, features and text categories (epochal_client.rows reads
    # them): raw rows can be encoded as at upload, the data set deleted or not.
    table: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "scaler": asdict(self.scaler) if self.scaler else None,
                "classes": self.classes,
                "datasets": {k: _info_dict(v) for k, v in self.datasets.items()},
                "table": self.table,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ModelData:
        raw = json.loads(data)
        return cls(
            Scaler(**raw["scaler"]) if raw.get("scaler") else None,
            raw.get("classes"),
            {k: _info_of(v) for k, v in (raw.get("datasets") or {}).items()},
            raw.get("table"),
        )


def _info_dict(info: DatasetInfo) -> dict[str, Any]:
    return {
        "task": info.task,
        "feature_shape": list(info.feature_shape),
        "samples": info.samples,
        "num_classes": info.num_classes,
        "target_shape": list(info.target_shape),
    }


def _info_of(raw: dict[str, Any]) -> DatasetInfo:
    return DatasetInfo(
        raw["task"],
        tuple(raw["feature_shape"]),
        raw["samples"],
        raw["num_classes"],
        tuple(raw["target_shape"]),
    )
