"""What training diagnostics cost: the digits MLP with diagnostics off and on, side by side.

    python bench/diagnostics_overhead.py [--epochs N] [--repeats R] [--every N] [--device D]

Both sides run `train_spec` on the same spec; the "on" side adds `Diagnostics(every_n_steps)`
with its points collected in memory (the SQL write is `StoreSink`'s cost, measured by
bench/metric_writes.py). The figure is samples/second over the epochs (setup excluded), best of
R alternating runs, and their ratio.
"""

from __future__ import annotations

import argparse

import torch
from digits_setup import DIGITS_MLP, Clock, digits_spec

from core.settings import Settings
from core.spec import JobSpec
from core.training.callbacks import Callback
from core.training.diagnostics import Diagnostics
from core.training.session import resolve_device, train_spec


def samples_per_second(spec: JobSpec, device: torch.device, every: int | None) -> tuple[float, int]:
    """Throughput, and how many diagnostic points the run emitted."""
    points: list[tuple[str, int, int, float]] = []
    clock = Clock()
    callbacks: list[Callback] = [clock]
    if every is not None:
        callbacks.insert(0, Diagnostics(every, lambda *point: points.append(point)))
    result = train_spec(spec, Settings(), device=device, callbacks=callbacks)
    return result.train_samples * spec.training.epochs / clock.seconds, len(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--every", type=int, default=50, help="diagnostics' every_n_steps")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    spec = digits_spec(DIGITS_MLP, args.epochs)
    samples_per_second(
        digits_spec(DIGITS_MLP, 1), device, args.every
    )  # warm-up: first-call costs, both paths
    best_off = best_on = 0.0
    points = 0
    for _ in range(args.repeats):  # alternate, so machine noise hits both alike
        best_off = max(best_off, samples_per_second(spec, device, None)[0])
        rate, points = samples_per_second(spec, device, args.every)
        best_on = max(best_on, rate)
    print(f"digits MLP, {args.epochs} epochs on {device}, diagnostics every {args.every} steps")
    print(f"{'off (samples/s)':>16} {'on (samples/s)':>16} {'on/off':>7} {'points':>7}")
    print(f"{best_off:>16,.0f} {best_on:>16,.0f} {best_on / best_off:>7.3f} {points:>7}")


if __name__ == "__main__":
    main()
