"""The learning-rate finder on digits: its suggestion rules against a learning-rate grid.

    python bench/lr_finder_digits.py [--seeds N] [--first S] [--epochs E] [--variants]

The issue's goal: on digits, the finder's suggestion used for a 20-epoch Adam run reaches a
val_accuracy within 1 pp of the best of a 6-point learning-rate grid (1e-4 … 3e-1,
log-spaced). Every run is the same digits MLP (digits_setup.DIGITS_MLP), the same 20 %
validation split, batches of 64, Adam, on the CPU through core's `train_spec`. Per seed: each
grid point trains for E epochs; the range test runs once per finder setting (a finder-only
job, its curve recorded), every rule's rate is taken from that same curve, and each distinct
rate trains for E epochs (a run at a number trains exactly as the `"suggested"` run at that
number would: the test puts the weights and random states back).

The rules: `min/10` (the lowest smoothed loss's rate / 10), `steepest` (the steepest descent),
`valley` (fastai's, half-way down the longest valley) and `geomean` (the geometric mean of
steepest and min/10). The default finder setting is `LrFinderSpec()`'s; `--variants` adds
others, named smoothing/steps/finder batch (e.g. s0.98/100/b64; training stays at 64). Printed:
each rule's gap to the grid's best per seed, then per rule and setting the seeds within 1 pp,
the median and the worst gap; then one GOAL line on the rule that `"suggested"` takes
(core/training/lr_finder.py SUGGESTION) at the default setting, and the load average.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from typing import Any

import numpy as np
from digits_setup import CPU, DIGITS_MLP, digits_spec

from core.series import LR_FINDER_LOSS, LR_FINDER_LR
from core.settings import Settings
from core.spec.lr_finder import LrFinderSpec
from core.training.lr_finder import SUGGESTION, suggest
from core.training.session import train_spec

GRID = [float(f"{r:.1g}") for r in np.logspace(-4, np.log10(0.3), 6)]  # 1e-4 … 3e-1
RULES = {
    "min/10": lambda s: s["min_lr_div_10"],
    "steepest": lambda s: s["steepest_lr"],
    "valley": lambda s: s["valley_lr"],
    "geomean": lambda s: math.sqrt(s["steepest_lr"] * s["min_lr_div_10"]),
}
CHOSEN = {"min_lr_div_10": "min/10", "steepest_lr": "steepest", "valley_lr": "valley"}[SUGGESTION]
SETTINGS = [  # finder overrides (smoothing, steps) and the finder's batch size
    (0.9, 100, 64),
    (0.98, 100, 64),
    (0.9, 200, 64),
    (0.98, 200, 64),
    (0.9, 100, 32),
    (0.9, 100, 128),
    (0.9, 200, 32),
    (0.9, 200, 128),
]
VARIANTS = {f"s{s:g}/{n}/b{b}": ({"smoothing": s, "steps": n}, b) for s, n, b in SETTINGS}
DEFAULT = f"s{LrFinderSpec().smoothing:g}/{LrFinderSpec().steps}/b64"  # `lr_finder: true`'s


def val_accuracy(epochs: int, seed: int, learning_rate: float) -> float:
    training = {"optimizer": {"type": "adam", "learning_rate": learning_rate}, "seed": seed}
    result = train_spec(digits_spec(DIGITS_MLP, epochs, **training), Settings(), device=CPU)
    return result.history.epochs[-1]["val_accuracy"]


def finder_rates(seed: int, overrides: dict[str, Any], batch_size: int) -> dict[str, float]:
    """Each rule's rate from one range test (a finder-only job, the curve recorded)."""
    points: dict[str, dict[int, float]] = {LR_FINDER_LR: {}, LR_FINDER_LOSS: {}}
    spec = digits_spec(
        DIGITS_MLP,
        1,
        optimizer={"type": "adam", "learning_rate": 1e-3},
        seed=seed,
        batch_size=batch_size,
        lr_finder=LrFinderSpec(**overrides).model_dump(),
    )

    def record(name: str, step: int, epoch: int, value: float) -> None:
        if name in points:
            points[name][step] = value

    result = train_spec(spec, Settings(), device=CPU, record=record).lr_finder or {}
    kept = result["steps"] - (1 if result["stopped_early"] else 0)
    lrs = [points[LR_FINDER_LR][i] for i in range(1, kept + 1)]
    found = suggest(lrs, [points[LR_FINDER_LOSS][i] for i in range(1, kept + 1)])
    return {rule: rate(found) for rule, rate in RULES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[],
        help=f"finder settings besides the default ({DEFAULT}): names of {', '.join(VARIANTS)}"
        " (smoothing/steps/finder batch), or all",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    names = list(VARIANTS) if args.variants == ["all"] else [DEFAULT, *args.variants]
    variants = {name: VARIANTS[name] for name in dict.fromkeys(names)}
    gaps: dict[tuple[str, str], list[float]] = {}  # (setting, rule) -> gap per seed
    print(f"grid: {', '.join(f'{lr:g}' for lr in GRID)}; {args.epochs} epochs of Adam")
    for seed in range(args.first, args.first + args.seeds):
        trained = {lr: val_accuracy(args.epochs, seed, lr) for lr in GRID}
        best = max(trained.values())
        print(
            f"seed {seed}: grid "
            + " ".join(f"{lr:g}={a:.4f}" for lr, a in trained.items())
            + f" (best {best:.4f})",
            flush=True,
        )
        for name, (overrides, batch_size) in variants.items():
            rates = finder_rates(seed, overrides, batch_size)
            cells = []
            for rule, lr in rates.items():
                if lr not in trained:
                    trained[lr] = val_accuracy(args.epochs, seed, lr)
                gap = best - trained[lr]
                gaps.setdefault((name, rule), []).append(gap)
                cells.append(f"{rule} {lr:.3g} -> {trained[lr]:.4f} ({100 * gap:+.2f} pp)")
            print(f"  seed {seed} {name:12}: " + "; ".join(cells), flush=True)
    print("rule      setting       within 1 pp  median gap  worst gap  (pp)")
    for (name, rule), g in gaps.items():
        within = sum(x <= 0.01 for x in g)
        print(
            f"{rule:9} {name:13} {within:2d} of {len(g):2d}     "
            f"{100 * statistics.median(g):6.2f}     {100 * max(g):6.2f}"
        )
    chosen = gaps[(DEFAULT, CHOSEN)]
    within = sum(x <= 0.01 for x in chosen)
    print(
        f"GOAL lr finder on digits ({SUGGESTION}): {within} of {len(chosen)} seeds within 1 pp "
        f"of the grid's best; median gap {100 * statistics.median(chosen):.2f} pp, worst "
        f"{100 * max(chosen):.2f} pp (goal: median <= 1 pp): "
        f"{'PASS' if statistics.median(chosen) <= 0.01 else 'FAIL'}"
    )
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
