"""Synthetic data sets, generated from the spec's `n_samples`, `noise` and `seed`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from sklearn import datasets as skd

from core.data.base import DATASETS, Arrays, BuiltinDataset, DatasetInfo

if TYPE_CHECKING:
    from core.spec.job import DatasetSpec

DEFAULT_SAMPLES = 1000


def n_samples(spec: DatasetSpec) -> int:
    return spec.n_samples or DEFAULT_SAMPLES


def noise(spec: DatasetSpec, default: float) -> float:
    return default if spec.noise is None else spec.noise


def _classifier(
    name: str,
    description: str,
    options: set[str],
    classes: Callable[[DatasetSpec], int],
    make: Callable[[DatasetSpec, np.random.Generator], tuple[np.ndarray, np.ndarray]],
) -> None:
    def load(spec: DatasetSpec) -> Arrays:
        x, y = make(spec, np.random.default_rng(spec.seed))
        return Arrays(x.astype(np.float32), y.astype(np.int64))

    def info(spec: DatasetSpec) -> DatasetInfo:
        return DatasetInfo("classification", (2,), n_samples(spec), classes(spec))

    DATASETS.register(name)(
        BuiltinDataset(description, frozenset({"n_samples", "noise", *options}), info, load)
    )


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def _moons(spec: DatasetSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return skd.make_moons(n_samples(spec), noise=noise(spec, 0.1), random_state=_seed(rng))


def _circles(spec: DatasetSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return skd.make_circles(
        n_samples(spec), noise=noise(spec, 0.05), factor=0.5, random_state=_seed(rng)
    )


def _spiral(spec: DatasetSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`classes` interleaved arms (the CS231n spiral): not linearly separable."""
    k = spec.classes or 3
    y = rng.integers(k, size=n_samples(spec))
    r = rng.uniform(0.0, 1.0, size=len(y))
    theta = y * (2 * np.pi / k) + r * 4.0 + rng.normal(0.0, noise(spec, 0.2), size=len(y))
    return np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1), y


def _xor(spec: DatasetSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points in [-1, 1]²: class 1 where the coordinates' signs differ."""
    x = rng.uniform(-1.0, 1.0, size=(n_samples(spec), 2))
    y = (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int64)
    return x + rng.normal(0.0, noise(spec, 0.05), size=x.shape), y


_classifier("moons", "two interleaving half circles, 2 classes", set(), lambda s: 2, _moons)
_classifier("circles", "a circle inside a circle, 2 classes", set(), lambda s: 2, _circles)
_classifier(
    "spiral",
    "interleaved spiral arms; `classes` arms (default 3)",
    {"classes"},
    lambda s: s.classes or 3,
    _spiral,
)
_classifier("xor", "the XOR problem on [-1, 1]², 2 classes", set(), lambda s: 2, _xor)


def _regression_load(spec: DatasetSpec) -> Arrays:
    """y = mean of sin(x_j) over `features` inputs drawn from [-π, π], plus gaussian noise."""
    rng = np.random.default_rng(spec.seed)
    x = rng.uniform(-np.pi, np.pi, size=(n_samples(spec), spec.features or 1))
    y = np.sin(x).mean(axis=1, keepdims=True) + rng.normal(0.0, noise(spec, 0.1), (len(x), 1))
    return Arrays(x.astype(np.float32), y.astype(np.float32))


DATASETS.register("regression")(
    BuiltinDataset(
        "nonlinear regression: y = mean(sin(x)) + noise over `features` inputs (default 1)",
        frozenset({"n_samples", "noise", "features"}),
        lambda s: DatasetInfo("regression", (s.features or 1,), n_samples(s), target_shape=(1,)),
        _regression_load,
    )
)
