"""A learning rate x batch size sweep over the digits MLP, driven from Python with the client.

    python scripts/sweep_lr_batch.py [--server URL] [--epochs 10] [--parallel 2]

Starts a grid sweep on a running Epochal (`make run`; default EPOCHAL_URL), prints its progress
while it runs, then the leaderboard, the winner's parameters, and the top three trials side by
side (GET /v1/compare). Everything goes through `epochal_client`, as a notebook would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from epochal_client import Client, EpochalError, Sweep, load_spec

ROOT = Path(__file__).resolve().parents[1]
LEARNING_RATES = [0.0003, 0.001, 0.003, 0.01]
BATCH_SIZES = [16, 32, 64]


def sweep_spec(epochs: int, parallel: int) -> dict[str, Any]:
    base = load_spec(ROOT / "examples" / "digits_mlp.yaml")
    base["training"]["epochs"] = epochs
    return {
        "name": "digits-mlp-lr-batch",
        "tags": ["scripts", "lr-batch"],
        "base": base,
        "method": "grid",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {
            "training.optimizer.learning_rate": {"values": LEARNING_RATES},
            "training.batch_size": {"values": BATCH_SIZES},
        },
        "max_parallel": parallel,
    }


def show_progress(sweep: Sweep) -> None:
    c = sweep.counts
    best = "-" if sweep.best is None else f"{sweep.best.value:.4f}"
    print(
        f"\r{sweep.status:<9} {c.done:>2}/{sweep.run_cap} done, {c.running} running, "
        f"{c.failed} failed; best {sweep.metric.name} {best}",
        end="",
        flush=True,
    )


def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", default=None, help="the API's URL (default EPOCHAL_URL)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    p.add_argument("--parallel", type=int, default=2, help="trials at once (default 2)")
    args = p.parse_args(argv)

    with Client(args.server) as client:
        sweep = client.sweep(sweep_spec(args.epochs, args.parallel))
        print(
            f"sweep {sweep.id}: {len(LEARNING_RATES)} learning rates x {len(BATCH_SIZES)} batch sizes"
        )
        final = sweep.wait(poll=1.0, on_progress=show_progress)
        print()

        board = sweep.leaderboard()
        print(f"\n{'rank':>4}  {'job':<36}  {'status':<9}  {board.metric.name:>12}  params")
        for t in board.trials:
            params = ", ".join(f"{k}={fmt(v)}" for k, v in t.params.items())
            print(
                f"{fmt(t.rank or '-'):>4}  {t.job_id:<36}  {t.status:<9}  {fmt(t.value):>12}  {params}"
            )

        best = sweep.best()
        if best is None:
            print(f"no trial reached a {board.metric.name}; the sweep ended {final.status}")
            return 1
        print(
            f"\nwinner: {best.job_id}, {board.metric.name} {best.value:.4f} at epoch {best.epoch}"
        )
        for path, value in best.params.items():
            print(f"  {path} = {value}")

        ranked = [t for t in board.trials if t.rank is not None]
        if len(ranked) >= 2:
            top = sweep.compare(top=3)
            print("\ntop trials side by side:")
            for path, values in sorted(top.params.items()):
                print(f"  {path:<34} " + "  ".join(f"{fmt(v):>10}" for v in values))
            for name in ("val_accuracy", "val_loss"):
                summaries = top.metrics.get(name, [])
                cells = [fmt(m.best) if m else "-" for m in summaries]
                print(f"  best {name:<29} " + "  ".join(f"{c:>10}" for c in cells))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EpochalError as e:
        sys.exit(f"error: {e}")
