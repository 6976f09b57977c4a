"""Where a second intra-op thread starts to pay for a dense network's training step.

    python bench/step_threads.py [--repeats R] [--steps S]

For MLPs 64-W-W-10 at a few widths and batch sizes, the time of Epochal's step (the direct
step and its Adam update) at 1 and at 2 threads, alternating, after a warm-up; median [min-max]
of R repetitions of S steps. Printed with each case: its work per step in MFLOP (what
`core/training/threads.py` counts) and the speed-up of the second thread. `FLOPS_PER_THREAD`
there should sit where the speed-up crosses 1; this prints the smallest work at which it did.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from digits_setup import load_average

from core.nn.network import build_network
from core.spec.job import ModelSpec
from core.spec.optimizers import Adam
from core.training.direct_step import make_step
from core.training.loop import Objective
from core.training.losses import LOSSES
from core.training.optimizers import build_optimizer
from core.training.threads import FLOPS_PER_THREAD, dense_step_flops

CASES = [(128, 64), (256, 64), (256, 256), (512, 128), (512, 256), (1024, 256)]


def step_seconds(width: int, batch: int, threads: int, steps: int) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        layers = [{"type": "dense", "units": width, "activation": "relu"}] * 2
        layers.append({"type": "dense", "units": 10, "activation": "softmax"})
        network = build_network(ModelSpec.model_validate({"layers": layers}), (64,))
        network.initialize()
        objective = Objective(LOSSES.get("sparse_categorical_crossentropy").fn, True)
        optimizer = build_optimizer(network, Adam(type="adam"), steps_per_epoch=1, epochs=1)
        step = make_step(network, objective, optimizer.optimizer, "auto")
        x, y = torch.randn(batch, 64), torch.randint(0, 10, (batch,))
        for _ in range(3):
            step(x, y)
            optimizer.optimizer.step()
        started = time.perf_counter()
        for _ in range(steps):
            step(x, y)
            optimizer.optimizer.step()
        return (time.perf_counter() - started) / steps
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    print(f"load average before: {load_average()}")
    print(f"FLOPS_PER_THREAD now: {FLOPS_PER_THREAD / 1e6:.0f} MFLOP")
    pays = None
    for width, batch in CASES:
        layers = [torch.nn.Linear(64, width), torch.nn.Linear(width, width)]
        mflop = dense_step_flops(torch.nn.Sequential(*layers, torch.nn.Linear(width, 10)), batch)
        assert mflop is not None
        times: dict[int, list[float]] = {1: [], 2: []}
        for r in range(args.repeats):
            for threads in (1, 2) if r % 2 == 0 else (2, 1):
                times[threads].append(step_seconds(width, batch, threads, args.steps))
        one, two = (statistics.median(times[t]) for t in (1, 2))
        speedup = one / two
        if speedup > 1 and pays is None:
            pays = mflop
        print(
            f"  width {width:5} batch {batch:4}: {mflop / 1e6:8.1f} MFLOP/step, "
            f"1 thread {one * 1e3:7.3f} ms, 2 threads {two * 1e3:7.3f} ms "
            f"[{min(times[2]) * 1e3:.3f}-{max(times[2]) * 1e3:.3f}], 2 threads {speedup:.2f}x"
        )
    print(f"load average after: {load_average()}")
    where = f"{pays / 1e6:.0f} MFLOP/step" if pays else "none of these sizes"
    print(f"a second thread first paid at: {where}")


if __name__ == "__main__":
    main()
