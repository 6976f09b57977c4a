"""The synthetic sequence sets: labels recomputed from the inputs, shapes, options, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import DATASETS
from core.spec.job import DatasetSpec


def load(name: str, **options: object):
    spec = DatasetSpec(name=name, **options)
    return DATASETS.get(name).info(spec), DATASETS.get(name).load(spec)


def test_parity_labels_are_the_parity_of_the_ones() -> None:
    info, a = load("parity", n_samples=500)
    assert (info.task, info.feature_shape, info.num_classes) == ("classification", (8, 1), 2)
    assert a.x.shape == (500, 8, 1)
    assert set(np.unique(a.x)) == {0.0, 1.0}
    assert np.array_equal(a.y, a.x.sum(axis=(1, 2)).astype(np.int64) % 2)
    assert 0.4 < a.y.mean() < 0.6
    info, short = load("parity", n_samples=50, steps=3)
    assert info.feature_shape == short.x.shape[1:] == (3, 1)
    assert np.array_equal(short.y, short.x.sum(axis=(1, 2)).astype(np.int64) % 2)


def test_sine_targets_continue_the_wave() -> None:
    info, clean = load("sine", n_samples=300, noise=0.0)
    assert (info.task, info.feature_shape, info.target_shape) == ("regression", (16, 1), (1,))
    x, y = clean.x[..., 0].astype(np.float64), clean.y[:, 0].astype(np.float64)
    # A pure sinusoid obeys x[t+1] = 2cos(ω)·x[t] - x[t-1]: fit 2cos(ω) on the window, continue.
    middle, around = x[:, 1:-1], x[:, 2:] + x[:, :-2]
    two_cos = (middle * around).sum(axis=1) / (middle * middle).sum(axis=1)
    np.testing.assert_allclose(two_cos * x[:, -1] - x[:, -2], y, atol=1e-4)
    cycles = np.arccos(two_cos / 2) / (2 * np.pi)
    assert cycles.min() > 0.02 - 1e-4 and cycles.max() < 0.2 + 1e-4  # frequencies per step
    assert cycles.max() - cycles.min() > 0.15  # random per window
    # The noise is on the inputs only, gaussian with the given (default 0.05) deviation.
    _, noisy = load("sine", n_samples=300)
    assert np.array_equal(noisy.y, clean.y)
    assert np.std(noisy.x - clean.x) == pytest.approx(0.05, rel=0.05)


def test_moving_dot_labels_are_the_direction_of_the_dot() -> None:
    info, a = load("moving_dot", n_samples=200, noise=0.0)
    assert (info.feature_shape, info.num_classes) == ((8, 8, 8, 1), 4)
    assert a.x.shape == (200, 8, 8, 8, 1)
    frames = a.x[..., 0]
    assert np.array_equal(frames.sum(axis=(2, 3)), np.ones((200, 8)))  # one lit pixel a frame
    flat = frames.reshape(200, 8, 64).argmax(axis=2)
    rows, cols = flat // 8, flat % 8
    steps = {(0, 1): 0, (0, 7): 1, (1, 0): 2, (7, 0): 3}  # right, left, down, up (mod 8)
    for i in range(200):
        moves = {
            ((rows[i, t + 1] - rows[i, t]) % 8, (cols[i, t + 1] - cols[i, t]) % 8) for t in range(7)
        }
        assert len(moves) == 1  # one pixel a frame, the same way throughout
        assert steps[moves.pop()] == a.y[i]
    assert set(np.unique(a.y)) == {0, 1, 2, 3}
    assert len(set(flat[:, 0])) > 32  # the start is random
    # `steps` sets the number of frames; noise (default 0.1) on every pixel
    _, noisy = load("moving_dot", n_samples=200, steps=5)
    assert noisy.x.shape == (200, 5, 8, 8, 1)
    assert np.std(noisy.x[noisy.x < 0.5]) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("name", ["parity", "sine", "moving_dot"])
def test_same_seed_same_data_other_seed_other_data(name: str) -> None:
    _, a = load(name, n_samples=50, seed=7)
    _, b = load(name, n_samples=50, seed=7)
    _, c = load(name, n_samples=50, seed=8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
