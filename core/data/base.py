"""What a data set is to the rest of `core`: metadata known without loading, and arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from core.registry import Registry

if TYPE_CHECKING:
    from core.spec.job import DatasetSpec

Task = Literal["classification", "regression"]
OPTIONS = ("n_samples", "noise", "classes", "features", "steps")
CUT_STREAM = 1  # the cut's random stream beside the split's, both seeded by the data set's seed


@dataclass(frozen=True)
class DatasetInfo:
    """Known at submission without loading the data: enough to check a network against it."""

    task: Task
    feature_shape: tuple[int, ...]
    samples: int
    num_classes: int | None = None  # classification only
    target_shape: tuple[int, ...] = ()  # regression only
    ids: tuple[int, int] | None = None  # features are integer ids in [low, high] (token-like)


@dataclass(frozen=True)
class Arrays:
    x: np.ndarray  # float32, (samples, *feature_shape), channels-last for images
    y: np.ndarray  # int64 class indices, or float32 (samples, *target_shape)

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> Arrays:
        return Arrays(self.x[index], self.y[index])


@dataclass(frozen=True)
class BuiltinDataset:
    description: str
    options: frozenset[str]  # which of OPTIONS a spec may set for this set
    info: Callable[[DatasetSpec], DatasetInfo]
    load: Callable[[DatasetSpec], Arrays]


DATASETS: Registry[BuiltinDataset] = Registry("dataset")


def split(arrays: Arrays, validation_split: float, seed: int) -> tuple[Arrays, Arrays | None]:
    """Shuffle once with the data set's seed, then hold out the last `validation_split` fraction.

    The split depends on the data set's seed only, so runs that vary the model seed are
    validated on the same samples.
    """
    order = np.random.default_rng(seed).permutation(len(arrays))
    n_val = round(len(arrays) * validation_split)
    if n_val == 0:
        return arrays.take(order), None
    return arrays.take(order[:-n_val]), arrays.take(order[-n_val:])


def cut(arrays: Arrays, max_samples: int, seed: int, *, by_class: bool) -> Arrays:
    """The first `max_samples` samples of a shuffle seeded by the data set's seed; all of them,
    as they are, when there are no more than that.

    `by_class` (classification) stratifies the cut: each class keeps its share of the samples,
    so 100 digits are about 10 of each. The cut depends on the data set's seed only, so it is
    the same in every run, every resumed attempt and every trial of a sweep.
    """
    n = len(arrays)
    if max_samples >= n:
        return arrays
    order = np.random.default_rng((seed, CUT_STREAM)).permutation(n)
    if by_class:
        # Each sample's rank within its class (in the shuffled order) as a fraction of the
        # class's size: taking the smallest fractions first takes every class in proportion.
        _, labels, counts = np.unique(arrays.y[order], return_inverse=True, return_counts=True)
        by_label = np.argsort(labels, kind="stable")
        starts = np.cumsum(counts) - counts
        rank = np.empty(n, dtype=np.int64)
        rank[by_label] = np.arange(n) - starts[labels[by_label]]
        order = order[np.argsort((rank + 0.5) / counts[labels], kind="stable")]
    return arrays.take(order[:max_samples])
