"""The learning-rate finder on digits: its suggestion against a learning-rate grid.

    python bench/lr_finder_digits.py [--seeds N] [--epochs E]

The issue's goal: on digits, the finder's suggestion used for a 20-epoch Adam run reaches a
val_accuracy within 1 pp of the best of a 6-point learning-rate grid (1e-4 … 3e-1,
log-spaced). Every run is the same digits MLP (digits_setup.DIGITS_MLP), the same 20 %
validation split, batches of 64, Adam; per seed, each grid point trains for E epochs, and one
job with `training.lr_finder` and `learning_rate: "suggested"` runs the range test then
trains at its suggestion, as a worker would (core's `train_spec`, on the CPU). Printed, per
seed and as medians over the seeds: the grid's final val_accuracy per rate, the suggestions
(steepest descent, minimum / 10: the one `"suggested"` takes), the suggested run's final
val_accuracy and, for comparison, a run at the steepest descent's rate; then one GOAL line
(the median over the seeds of the gap to the grid's best) and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
from digits_setup import CPU, DIGITS_MLP, digits_spec

from core.settings import Settings
from core.training.session import train_spec

GRID = [float(f"{r:.1g}") for r in np.logspace(-4, np.log10(0.3), 6)]  # 1e-4 … 3e-1


def val_accuracy(epochs: int, seed: int, learning_rate: float | str) -> tuple[float, dict]:
    training = {"optimizer": {"type": "adam", "learning_rate": learning_rate}, "seed": seed}
    if learning_rate == "suggested":
        training["lr_finder"] = True
    result = train_spec(digits_spec(DIGITS_MLP, epochs, **training), Settings(), device=CPU)
    return result.history.epochs[-1]["val_accuracy"], result.lr_finder or {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    load_before = os.getloadavg()
    grids, found, gaps = [], [], []
    print(f"grid: {', '.join(f'{lr:g}' for lr in GRID)}; {args.epochs} epochs of Adam")
    for seed in range(args.seeds):
        grid = [val_accuracy(args.epochs, seed, lr)[0] for lr in GRID]
        accuracy, finder = val_accuracy(args.epochs, seed, "suggested")
        steepest = val_accuracy(args.epochs, seed, finder["steepest_lr"])[0]
        grids.append(grid)
        found.append((finder["steepest_lr"], finder["min_lr_div_10"], accuracy, steepest))
        gaps.append(max(grid) - accuracy)
        print(
            f"seed {seed}: grid val_accuracy "
            + " ".join(f"{lr:g}={a:.4f}" for lr, a in zip(GRID, grid, strict=True))
            + f" | steepest_lr={finder['steepest_lr']:.3g} min_lr_div_10="
            f"{finder['min_lr_div_10']:.3g} -> suggested run {accuracy:.4f}"
            f" (best of grid {max(grid):.4f}, gap {100 * gaps[-1]:+.2f} pp;"
            f" at steepest_lr {steepest:.4f})"
        )
    medians = [statistics.median(g[i] for g in grids) for i in range(len(GRID))]
    print(
        "median: grid "
        + " ".join(f"{lr:g}={a:.4f}" for lr, a in zip(GRID, medians, strict=True))
        + f" | steepest_lr={statistics.median(f[0] for f in found):.3g}"
        f" min_lr_div_10={statistics.median(f[1] for f in found):.3g}"
        f" suggested run {statistics.median(f[2] for f in found):.4f}"
        f" (at steepest_lr {statistics.median(f[3] for f in found):.4f})"
    )
    within = sum(g <= 0.01 for g in gaps)
    gap = statistics.median(gaps)
    print(
        f"GOAL lr finder on digits: median gap to the grid's best {100 * gap:.2f} pp "
        f"(goal <= 1 pp; {within} of {len(gaps)} seeds within 1 pp): "
        f"{'PASS' if gap <= 0.01 else 'FAIL'}"
    )
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
