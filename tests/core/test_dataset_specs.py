"""A spec's data set part: uploaded ids, a separate validation set, test_split, preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from core.data import Arrays, DatasetInfo
from core.data.catalog import UploadedDataset
from core.data.preprocessing import ModelData, fit_scaler
from core.errors import SpecError
from core.settings import Settings
from core.spec import JobSpec
from core.training.plan import plan_job
from core.training.session import split_data, train_spec

TABLE_ID, SMALL_ID, OTHER_ID = "ds_" + "a" * 20, "ds_" + "b" * 20, "ds_" + "c" * 20


def blobs(n: int, seed: int, features: int = 3) -> Arrays:
    """Two classes whose features sit far from 0 and on very different scales."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, features)) + y[:, None] * 2.0
    return Arrays((x * [1000.0, 1.0, 0.01][:features] + 500.0).astype(np.float32), y)


@dataclass
class MemoryUploads:
    """Uploaded data sets held in memory: the same source the store implements over SQL."""

    arrays: dict[str, Arrays] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)

    def find(self, dataset_id: str) -> UploadedDataset | None:
        a = self.arrays.get(dataset_id)
        if a is None:
            return None
        info = DatasetInfo("classification", a.x.shape[1:], len(a), 2)
        return UploadedDataset(dataset_id, info, f"datasets/{dataset_id}.npz", ["no", "yes"])

    def load(self, dataset: UploadedDataset) -> Arrays:
        self.loads.append(dataset.id)
        return self.arrays[dataset.id]


@pytest.fixture
def uploads() -> MemoryUploads:
    return MemoryUploads(
        {TABLE_ID: blobs(400, 0), SMALL_ID: blobs(60, 1), OTHER_ID: blobs(60, 2, 2)}
    )


def spec(**dataset: object) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": TABLE_ID, **dataset},
            "model": {"layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "optimizer": {"type": "adam", "learning_rate": 0.05},
                "metrics": ["accuracy"],
                "epochs": 15,
                "batch_size": 32,
                "seed": 0,
            },
        }
    )


def issues(s: JobSpec, uploads: MemoryUploads | None) -> dict[tuple, str]:
    with pytest.raises(SpecError) as caught:
        plan_job(s, Settings(), uploads)
    return {i.loc: i.msg for i in caught.value.issues}


def test_an_uploaded_id_is_looked_up_at_planning_not_in_the_spec(uploads: MemoryUploads) -> None:
    assert plan_job(spec(), Settings(), uploads).info.feature_shape == (3,)
    missing = "ds_" + "0" * 20
    found = issues(spec(name=missing), uploads)
    assert "no uploaded data set" in found[("dataset", "name")]
    assert ("dataset", "name") in issues(spec(), None)  # no source of uploads at all
    assert uploads.loads == []  # planning never loads the arrays


def test_dataset_part_refusals(uploads: MemoryUploads) -> None:
    both = issues(spec(validation=SMALL_ID, validation_split=0.2), uploads)
    assert "not both" in both[("dataset", "validation")]
    mismatch = issues(spec(validation=OTHER_ID), uploads)
    assert "(2,)" in mismatch[("dataset", "validation")]
    assert "n_samples" in str(issues(spec(n_samples=100), uploads))
    one_hot = issues(spec(preprocessing={"targets": "one_hot"}), uploads)
    assert "categorical_crossentropy" in one_hot[("dataset", "preprocessing", "targets")]
    too_much = issues(spec(test_split=0.999), uploads)
    assert ("dataset", "test_split") in too_much


def test_splits_hold_out_test_first_and_scale_with_training_statistics(
    uploads: MemoryUploads,
) -> None:
    s = spec(test_split=0.25, validation_split=0.2, preprocessing={"features": "standardize"})
    parts = split_data(s.dataset, uploads)
    assert (len(parts.train), len(parts.val), len(parts.test)) == (240, 60, 100)
    assert np.allclose(parts.train.x.mean(axis=0), 0.0, atol=1e-3)
    assert np.allclose(parts.train.x.std(axis=0), 1.0, atol=1e-3)
    scaler = parts.model_data.scaler
    assert scaler is not None and scaler.offset[0] > 400  # fitted on raw, large values
    assert parts.model_data.classes == ["no", "yes"] and TABLE_ID in parts.model_data.datasets
    again = ModelData.from_json(parts.model_data.to_json())
    assert again == parts.model_data
    separate = split_data(spec(validation=SMALL_ID).dataset, uploads)
    assert (len(separate.train), len(separate.val)) == (400, 60)


def test_min_max_is_per_channel_for_images() -> None:
    x = np.stack([np.full((4, 4), 2.0), np.full((4, 4), 10.0)], axis=-1)[None].repeat(3, 0)
    x[0, 0, 0, 0] = 0.0
    scaler = fit_scaler("min_max", x)
    assert scaler is not None and scaler.offset == [0.0, 10.0] and scaler.scale == [2.0, 1.0]
    scaled = scaler.apply(x)
    assert scaled[..., 0].min() == 0.0 and scaled[..., 0].max() == 1.0
    assert np.all(scaled[..., 1] == 0.0)  # a constant channel is only shifted


def test_standardized_training_learns_and_reports_the_test_part(uploads: MemoryUploads) -> None:
    s = spec(test_split=0.25, validation_split=0.2, preprocessing={"features": "standardize"})
    result = train_spec(s, Settings(), device=torch.device("cpu"), uploads=uploads)
    assert (result.train_samples, result.val_samples, result.test_samples) == (240, 60, 100)
    assert result.test is not None and set(result.test) == {"loss", "accuracy"}
    assert result.test["accuracy"] > 0.8
    raw = train_spec(spec(test_split=0.25), Settings(), device=torch.device("cpu"), uploads=uploads)
    assert raw.test is not None and raw.test["loss"] > result.test["loss"]  # unscaled inputs
