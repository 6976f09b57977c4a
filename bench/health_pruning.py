"""Health-based pruning: the same grid sweep with and without `early_terminate: {type: health}`.

    python bench/health_pruning.py                  # starts its own service (SQLite, 2 workers)
    python bench/health_pruning.py --server URL     # or uses a running one
    python bench/health_pruning.py --dry-run        # validates the two sweeps, prints them

The search space includes networks that cannot learn: the ten-layer sigmoid stack of
examples/diagnostics_deep_sigmoid.yaml (its first layers' gradients vanish), on moons with
noise NOISE (0.3: the classes overlap, so the best val_accuracy stays below 1 and "the same
best" is a real comparison, not two runs at the ceiling), against the same
stack in relu with he_uniform, crossed with learning rates from sound (0.01, 0.1) to too large
(1: its relus die; 10: the loss becomes NaN). Both sweeps train the same trials from the same
seeds: with health pruning, the untrainable ones stop within their first epochs (pruned, the
reason naming the condition and the layer) and the others train exactly as without it. The
figures are epochs, not seconds: one run is a valid measurement. The goal: at most half the
epochs, at the same best val_accuracy. Exit status 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from goals import goal_line
from service import service_client
from sweep_efficiency import run_sweep

from core.settings import Settings
from core.sweeps.plan import plan_sweep
from core.sweeps.spec import SweepSpec
from epochal_client import SweepRun, load_spec

ROOT = Path(__file__).resolve().parents[1]
METRIC = {"name": "val_accuracy", "goal": "maximize"}
HEALTH = ["exploding_gradients", "vanishing_gradients", "dead_relu", "divergence"]
LEARNING_RATES = [0.01, 0.1, 1.0, 10.0]
TARGET_EPOCH_SHARE = 0.5
NOISE = 0.3  # moons' noise: a best below 1


def spaces(epochs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The base spec (the deep sigmoid example for `epochs` epochs, on noisy moons) and the
    parameters."""
    base = load_spec(ROOT / "examples" / "diagnostics_deep_sigmoid.yaml")
    base["name"] = "bench-health-pruning"
    base["training"]["epochs"] = epochs
    base["dataset"]["noise"] = NOISE
    base["resources"] = {"device": "cpu"}
    sigmoid = base["model"]["layers"]
    *hidden, last = sigmoid
    relu = [{**layer, "activation": "relu", "kernel_initializer": "he_uniform"} for layer in hidden]
    parameters = {
        "model.layers": {"values": [sigmoid, [*relu, last]]},
        "training.optimizer.learning_rate": {"values": LEARNING_RATES},
    }
    return base, parameters


def sweep_specs(epochs: int, parallel: int) -> tuple[dict, dict]:
    tag = f"health-pruning-{uuid.uuid4().hex[:8]}"
    base, parameters = spaces(epochs)
    base["tags"] = ["bench", tag]
    common = {
        "tags": ["bench", tag],
        "base": base,
        "method": "grid",
        "metric": METRIC,
        "parameters": parameters,
        "max_parallel": parallel,
    }
    plain = {"name": "bench-grid", **copy.deepcopy(common)}
    health = {
        "name": "bench-grid-health",
        "early_terminate": {"type": "health", "on": HEALTH},
        **copy.deepcopy(common),
    }
    for sweep in (plain, health):
        plan_sweep(SweepSpec.model_validate(sweep), Settings())  # what the API would refuse
    return plain, health


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", default=None, help="a running Epochal API (default: start one)")
    p.add_argument("--workers", type=int, default=2, help="trials at once (and workers started)")
    p.add_argument("--epochs", type=int, default=20, help="epochs of a full trial (default 20)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per sweep")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    p.add_argument("--dry-run", action="store_true", help="validate and print, submit nothing")
    args = p.parse_args(argv)

    plain, health = sweep_specs(args.epochs, args.workers)
    if args.dry_run:
        print(yaml.safe_dump({"without": plain, "with": health}, sort_keys=False))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"load before: {loadavg()}", flush=True)
    with contextlib.ExitStack() as stack:
        client = service_client(stack, args.server, args.workers)
        without = run_sweep(client, plain, args.timeout, args.poll)
        with_health = run_sweep(client, health, args.timeout, args.poll)
        trials = SweepRun(client, with_health.sweep).trials()
        pruned_on = Counter(
            (j.summary.get("stopped_on") or {}).get("type", "-")
            for j in trials
            if j.status == "pruned"
        )
    print(f"load after: {loadavg()}", flush=True)
    rows = [
        ("trials", without.sweep.trials, with_health.sweep.trials),
        ("pruned", without.sweep.counts.pruned, with_health.sweep.counts.pruned),
        ("failed", without.sweep.counts.failed, with_health.sweep.counts.failed),
        (f"best {METRIC['name']}", f"{without.best:.4f}", f"{with_health.best:.4f}"),
        ("epochs trained", without.epochs, with_health.epochs),
        ("seconds", f"{without.seconds:.0f}", f"{with_health.seconds:.0f}"),
    ]
    print("\npruned on: " + ", ".join(f"{n} {kind}" for kind, n in sorted(pruned_on.items())))
    print()
    print(f"{'':<22} {'without':>10} {'health pruning':>16}")
    for name, a, b in rows:
        print(f"{name:<22} {a!s:>10} {b!s:>16}")
    share = with_health.epochs / without.epochs
    same_best = with_health.best == without.best
    print()
    print(
        goal_line(
            "health pruning epochs share",
            [share],
            share,
            TARGET_EPOCH_SHARE,
            at_least=False,
            equal_accuracy=same_best,
        )
    )
    return 0 if share <= TARGET_EPOCH_SHARE and same_best else 1


if __name__ == "__main__":
    sys.exit(main())
