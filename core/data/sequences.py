"""Synthetic sequence data sets, channels-last with time first: parity, sine and moving_dot.

Generated from the spec's `n_samples`, `noise` and `seed`; the `steps` option is the
sequence length (the number of time steps, or frames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.data.base import DATASETS, Arrays, BuiltinDataset, DatasetInfo
from core.data.synthetic import n_samples, noise

if TYPE_CHECKING:
    from core.spec.job import DatasetSpec

PARITY_STEPS = 8
SINE_STEPS = 16
SINE_CYCLES = (0.02, 0.2)  # frequency range, in cycles per step (below Nyquist's 0.5)
DOT_FRAMES = 8
DOT_SIZE = 8  # frames are DOT_SIZE x DOT_SIZE pixels
# (row, column) step of the dot per frame for each class: right, left, down, up.
DOT_MOVES = np.array([(0, 1), (0, -1), (1, 0), (-1, 0)])


def _steps(spec: DatasetSpec, default: int) -> int:
    return spec.steps or default


def parity(spec: DatasetSpec) -> Arrays:
    """Bits (steps, 1); the label is 1 when the number of ones is odd. No noise: one flipped
    bit flips the label."""
    rng = np.random.default_rng(spec.seed)
    bits = rng.integers(0, 2, size=(n_samples(spec), _steps(spec, PARITY_STEPS), 1))
    return Arrays(bits.astype(np.float32), (bits.sum(axis=(1, 2)) % 2).astype(np.int64))


def sine(spec: DatasetSpec) -> Arrays:
    """Windows of `steps` samples of sin(2π·f·t + φ), f and φ random per window, with gaussian
    noise (default 0.05) on the inputs; the target is the next, noise-free sample."""
    rng = np.random.default_rng(spec.seed)
    n, steps = n_samples(spec), _steps(spec, SINE_STEPS)
    cycles = rng.uniform(*SINE_CYCLES, size=(n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    wave = np.sin(2 * np.pi * cycles * np.arange(steps + 1) + phase)
    x = wave[:, :steps] + rng.normal(0.0, noise(spec, 0.05), size=(n, steps))
    return Arrays(x[..., None].astype(np.float32), wave[:, steps:].astype(np.float32))


def moving_dot(spec: DatasetSpec) -> Arrays:
    """Videos (frames, 8, 8, 1) of one bright pixel that moves one pixel per frame, wrapping at
    the edges, to the right, left, down or up: the label (0-3). One frame alone cannot tell
    the direction. Gaussian noise (default 0.1) on every pixel."""
    rng = np.random.default_rng(spec.seed)
    n, frames = n_samples(spec), _steps(spec, DOT_FRAMES)
    y = rng.integers(0, len(DOT_MOVES), size=n)
    start = rng.integers(0, DOT_SIZE, size=(n, 2))
    # (n, frames, 2) positions: the start plus t moves, modulo the frame size
    where = (start[:, None] + np.arange(frames)[None, :, None] * DOT_MOVES[y][:, None]) % DOT_SIZE
    x = rng.normal(0.0, noise(spec, 0.1), size=(n, frames, DOT_SIZE, DOT_SIZE, 1))
    sample, frame = np.meshgrid(np.arange(n), np.arange(frames), indexing="ij")
    x[sample, frame, where[..., 0], where[..., 1], 0] += 1.0
    return Arrays(x.astype(np.float32), y.astype(np.int64))


DATASETS.register("parity")(
    BuiltinDataset(
        "bit sequences (steps, 1); class 1 when the count of ones is odd; "
        f"`steps` steps (default {PARITY_STEPS})",
        frozenset({"n_samples", "steps"}),
        lambda s: DatasetInfo(
            "classification", (_steps(s, PARITY_STEPS), 1), n_samples(s), 2, ids=(0, 1)
        ),
        parity,
    )
)
DATASETS.register("sine")(
    BuiltinDataset(
        "forecasting: noisy windows (steps, 1) of sine waves of random frequency and phase; "
        f"the target is the next value; `steps` steps (default {SINE_STEPS})",
        frozenset({"n_samples", "noise", "steps"}),
        lambda s: DatasetInfo(
            "regression", (_steps(s, SINE_STEPS), 1), n_samples(s), target_shape=(1,)
        ),
        sine,
    )
)
DATASETS.register("moving_dot")(
    BuiltinDataset(
        f"videos (frames, {DOT_SIZE}, {DOT_SIZE}, 1) of a dot moving right, left, down or up: "
        f"4 classes; `steps` frames (default {DOT_FRAMES})",
        frozenset({"n_samples", "noise", "steps"}),
        lambda s: DatasetInfo(
            "classification", (_steps(s, DOT_FRAMES), DOT_SIZE, DOT_SIZE, 1), n_samples(s), 4
        ),
        moving_dot,
    )
)
