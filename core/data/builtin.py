"""The small real data sets that scikit-learn ships on disk: no download, ever."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from sklearn import datasets as skd

from core.data.base import DATASETS, Arrays, BuiltinDataset, DatasetInfo


def _register(
    name: str,
    loader: Callable[..., tuple[np.ndarray, np.ndarray]],
    description: str,
    scale: float = 1.0,
    shape: tuple[int, ...] | None = None,  # each sample reshaped to this (channels-last)
) -> None:
    @lru_cache(maxsize=1)
    def arrays() -> Arrays:
        x, y = loader(return_X_y=True)
        x = (x / scale).astype(np.float32)
        return Arrays(x if shape is None else x.reshape(len(x), *shape), y.astype(np.int64))

    @lru_cache(maxsize=1)
    def info() -> DatasetInfo:
        a = arrays()
        return DatasetInfo("classification", a.x.shape[1:], len(a), int(a.y.max()) + 1)

    DATASETS.register(name)(
        BuiltinDataset(description, frozenset(), lambda spec: info(), lambda spec: arrays())
    )


_register(
    "digits",
    skd.load_digits,
    "8x8 handwritten digits, 64 pixels scaled to [0, 1], 10 classes",
    scale=16.0,
)
_register(
    "digits_images",
    skd.load_digits,
    "the digits as 8x8x1 images (channels-last) for CNNs, pixels scaled to [0, 1], 10 classes",
    scale=16.0,
    shape=(8, 8, 1),
)
_register("iris", skd.load_iris, "iris flowers: 4 measurements, 3 classes")
_register("wine", skd.load_wine, "wine cultivars: 13 chemical features (unscaled), 3 classes")
_register(
    "breast_cancer",
    skd.load_breast_cancer,
    "breast cancer diagnosis: 30 features (unscaled), 2 classes",
)
