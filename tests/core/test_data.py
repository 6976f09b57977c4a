"""Built-in data sets: metadata known without loading agrees with the data, and splits are stable."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import DATASETS
from core.data.base import split
from core.spec.job import DatasetSpec


@pytest.mark.parametrize("name", DATASETS.names())
def test_info_matches_the_loaded_arrays(name: str) -> None:
    spec = DatasetSpec(
        name=name, n_samples=200 if "n_samples" in DATASETS.get(name).options else None
    )
    info, arrays = DATASETS.get(name).info(spec), DATASETS.get(name).load(spec)
    assert arrays.x.dtype == np.float32
    assert arrays.x.shape == (info.samples, *info.feature_shape)
    assert np.isfinite(arrays.x).all()
    if info.task == "classification":
        assert arrays.y.dtype == np.int64
        assert set(np.unique(arrays.y)) == set(range(info.num_classes))
    else:
        assert arrays.y.shape == (info.samples, *info.target_shape)


def test_sklearn_sets_have_their_known_sizes() -> None:
    sizes = {
        n: DATASETS.get(n).info(DatasetSpec(name=n))
        for n in ("digits", "iris", "wine", "breast_cancer")
    }
    assert {n: (i.samples, i.feature_shape, i.num_classes) for n, i in sizes.items()} == {
        "digits": (1797, (64,), 10),
        "iris": (150, (4,), 3),
        "wine": (178, (13,), 3),
        "breast_cancer": (569, (30,), 2),
    }
    assert (
        DATASETS.get("digits").load(DatasetSpec(name="digits")).x.max() == 1.0
    )  # scaled from 0..16


def test_synthetic_sets_follow_their_options_and_seed() -> None:
    spiral = DatasetSpec(name="spiral", n_samples=300, classes=5, seed=3)
    a, b = DATASETS.get("spiral").load(spiral), DATASETS.get("spiral").load(spiral)
    assert np.array_equal(a.x, b.x) and set(np.unique(a.y)) == set(range(5))
    other = DATASETS.get("spiral").load(spiral.model_copy(update={"seed": 4}))
    assert not np.array_equal(a.x, other.x)


def test_split_holds_out_the_fraction_and_depends_only_on_the_seed() -> None:
    arrays = DATASETS.get("iris").load(DatasetSpec(name="iris"))
    train, val = split(arrays, 0.2, seed=0)
    assert (len(train), len(val)) == (120, 30)
    assert sorted(np.concatenate([train.x, val.x]).tolist()) == sorted(arrays.x.tolist())
    _, val2 = split(arrays, 0.2, seed=0)
    assert np.array_equal(val.x, val2.x)
    assert split(arrays, 0.0, seed=0)[1] is None
