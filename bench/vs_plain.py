"""Epochal's training against a plain PyTorch loop with torch's best settings, side by side.

    python bench/vs_plain.py [--epochs N] [--repeats R] [--threads T]

Digits MLP and CNN, four contenders:
- "worker": Epochal as a worker runs it — the spec stored as a job in a SQLite store and run by
  `Runner.run(job_id)` exactly as the Celery task does (heartbeat thread, cancel flag, metric
  sink, checkpoints to a folder artifacts store by EPOCHAL_CHECKPOINT_SECONDS, model save;
  `digits_setup.run_as_worker`). Timed from the first step to the end of training; the whole
  job (claim to finished) is printed beside it.
- "session": `train_spec` with a `StoreSink` only (no checkpoints, no lease), as before.
- "plain, 1 thread" and "plain, T threads": a hand-written loop over pre-built tensors (index
  slicing, no DataLoader) on an equivalent `nn.Sequential` (channels-first CNN), with
  `Adam(fused=True)` and no per-step host sync: the epoch's training loss and accuracy
  accumulate on the device and are read once per epoch with a validation pass. Torch's CPU
  speed depends on its thread count, so the plain loop runs at both and the faster (by median)
  is the baseline. Epochal's contenders run at T threads (or what Epochal itself chooses).
Same data, batch size, epochs and seed.

Compute-bound: an MLP 256-512-512-10 at batch 256 on random data, Epochal's `fit` (its network,
objective and optimizer) against the same plain loop, and the machine's matmul ceiling
measured in the same rotation: the samples/s if a step took only the time of its eight matrix
products (three forward, five backward) timed on their own.

Each contender runs once untimed (warm-up), then R repetitions alternate the contenders, the
order rotated every repetition. Printed: samples/s as median [min-max] over the repetitions
(setup excluded), the final validation accuracy, the load average before and after, and one
GOAL line per goal: the ratio of the medians, and the range of the per-repetition ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from digits_setup import (
    DIGITS_CNN,
    DIGITS_MLP,
    SqliteStore,
    alternate,
    digits_spec,
    load_average,
    run_as_worker,
    run_epochal,
    spread,
)
from goals import goal_line, ratios
from torch import nn

from core.data import DATASETS
from core.data.base import split
from core.nn.network import build_network
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.training.loop import Objective, TensorData, fit
from core.training.metrics import METRICS
from core.training.optimizers import build_optimizer

WORKER, SESSION, CEILING = "worker", "session", "matmul ceiling"


@dataclass(frozen=True)
class Timing:
    seconds: float  # the first step to the end of training
    samples: int  # trained
    accuracy: float = math.nan  # final validation accuracy
    job_seconds: float | None = None  # the worker's whole job, claim to finished


Run = Callable[[], Timing]


def plain_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


def plain_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),  # Keras's defaults
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def plain_loop(
    model: nn.Module,
    train: TensorData,
    val: TensorData,
    epochs: int,
    batch_size: int,
    autocast: torch.dtype | None = None,
) -> Timing:
    """What a PyTorch user writes with torch's best settings, on the device the model and the
    data are on (bench/gpu_check.py runs it on CUDA); `autocast`: mixed precision in that
    dtype, float16 with a GradScaler (whose step the fused Adam takes without a host sync)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7, fused=True)
    x, y = train.x, train.y
    n, device = len(x), x.device
    scaler = torch.amp.GradScaler(device.type) if autocast == torch.float16 else None
    mixed = torch.autocast(device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    started = time.perf_counter()
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for i in range(0, n, batch_size):
            index = order[i : i + batch_size]
            xb, yb = x[index], y[index]
            with mixed:
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            with torch.no_grad():
                loss_sum.add_(loss, alpha=len(index))
                correct.add_((logits.argmax(-1) == yb).sum())
        model.eval()
        with torch.no_grad(), mixed:
            val_logits = model(val.x)
            val_loss = F.cross_entropy(val_logits, val.y)
            val_correct = (val_logits.argmax(-1) == val.y).sum()
        _, _, _, accuracy = torch.stack(
            [loss_sum / n, correct / n, val_loss, val_correct / len(val)]
        ).tolist()
    return Timing(time.perf_counter() - started, n * epochs, accuracy)


def at_threads(threads: int, run: Run) -> Run:
    """`run` at `threads` torch threads (each contender sets its own)."""

    def threaded() -> Timing:
        torch.set_num_threads(threads)
        return run()

    return threaded


def plain_name(threads: int) -> str:
    return f"plain, {threads} thread{'s' if threads > 1 else ''}"


def plains(run: Run, thread_counts: list[int]) -> dict[str, Run]:
    return {plain_name(t): at_threads(t, run) for t in thread_counts}


def digits(spec: JobSpec) -> tuple[TensorData, TensorData]:
    arrays = DATASETS.get("digits").load(spec.dataset)
    train, val = split(arrays, spec.dataset.validation_split, spec.dataset.seed)
    return (
        TensorData(torch.from_numpy(train.x), torch.from_numpy(train.y)),
        TensorData(torch.from_numpy(val.x), torch.from_numpy(val.y)),
    )


def digits_contenders(
    layers: list,
    make_plain: Callable[[], nn.Module],
    epochs: int,
    store: SqliteStore,
    threads: int,
    thread_counts: list[int],
) -> dict[str, Run]:
    spec = digits_spec(layers, epochs)
    train, val = digits(spec)

    def plain() -> Timing:
        torch.manual_seed(0)
        return plain_loop(make_plain(), train, val, epochs, spec.training.batch_size)

    def worker() -> Timing:
        run = run_as_worker(spec, store)
        accuracy = run.summary["final"]["val_accuracy"]
        return Timing(run.train_seconds, run.samples, accuracy, run.job_seconds)

    def session() -> Timing:
        seconds, result = run_epochal(spec, store)
        accuracy = result.history.epochs[-1]["val_accuracy"]
        return Timing(seconds, result.train_samples * epochs, accuracy)

    return {
        WORKER: at_threads(threads, worker),
        SESSION: at_threads(threads, session),
        **plains(plain, thread_counts),
    }


WIDE = [256, 512, 512, 10]


def wide_data(n: int) -> tuple[TensorData, TensorData]:
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(WIDE[0], WIDE[-1], generator=g)
    x = torch.randn(n + 1024, WIDE[0], generator=g)
    y = (x @ teacher).argmax(-1)
    return TensorData(x[:n], y[:n]), TensorData(x[n:], y[n:])


def wide_contenders(
    epochs: int, n: int, batch_size: int, threads: int, thread_counts: list[int]
) -> dict[str, Run]:
    train, val = wide_data(n)
    layers = [{"type": "dense", "units": u, "activation": "relu"} for u in WIDE[1:-1]]
    layers.append({"type": "dense", "units": WIDE[-1], "activation": "softmax"})
    model_spec = ModelSpec.model_validate({"layers": layers})
    optimizer_spec = digits_spec(DIGITS_MLP, epochs).training.optimizer

    def epochal() -> Timing:
        torch.manual_seed(0)
        network = build_network(model_spec, (WIDE[0],))
        network.initialize()
        objective = Objective(
            loss=lambda logits, y: F.cross_entropy(logits, y),
            use_logits=True,
            metrics={"accuracy": METRICS.get("accuracy")},
        )
        steps = -(-n // batch_size)
        optimization = build_optimizer(
            network, optimizer_spec, steps_per_epoch=steps, epochs=epochs
        )
        started = time.perf_counter()
        history = fit(
            network,
            objective,
            optimization,
            train,
            epochs=epochs,
            batch_size=batch_size,
            val=val,
            generator=torch.Generator().manual_seed(0),
        )
        seconds = time.perf_counter() - started
        return Timing(seconds, n * epochs, history.epochs[-1]["val_accuracy"])

    def plain() -> Timing:
        torch.manual_seed(0)
        sizes = list(itertools.pairwise(WIDE))
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(sizes):
            modules += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 1 else [])
        return plain_loop(nn.Sequential(*modules), train, val, epochs, batch_size)

    return {
        "Epochal": at_threads(threads, epochal),
        **plains(plain, thread_counts),
        CEILING: at_threads(threads, matmul_ceiling(batch_size)),
    }


def matmul_ceiling(batch_size: int, steps: int = 200) -> Run:
    """Samples/s if a training step of the wide MLP cost only its matrix products."""
    g = torch.Generator().manual_seed(0)
    acts = [torch.randn(batch_size, d, generator=g) for d in WIDE]
    weights = [torch.randn(b, a, generator=g) for a, b in itertools.pairwise(WIDE)]

    def step() -> None:
        for i, w in enumerate(weights):  # forward: x @ W^T
            torch.mm(acts[i], w.t())
        for i, w in enumerate(weights):  # backward: dW = dy^T @ x, and dx = dy @ W past layer 0
            torch.mm(acts[i + 1].t(), acts[i])
            if i > 0:
                torch.mm(acts[i + 1], w)

    def run() -> Timing:
        for _ in range(20):
            step()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        return Timing(time.perf_counter() - started, steps * batch_size)

    return run


@dataclass
class Results:
    rates: dict[str, list[float]]  # samples/s, one per repetition
    timings: dict[str, list[Timing]]

    def median(self, name: str) -> float:
        return statistics.median(self.rates[name])

    def baseline(self) -> str:
        """The plain loop at its faster thread count (by median)."""
        return max((n for n in self.rates if n.startswith("plain")), key=self.median)


def compare(title: str, contenders: dict[str, Run], repeats: int) -> Results:
    names = list(contenders)
    timings = alternate(contenders, repeats)
    results = Results(
        {n: [t.samples / t.seconds for t in ts] for n, ts in timings.items()}, timings
    )
    print(f"\n{title}")
    for name in names:
        accuracy = statistics.median(t.accuracy for t in timings[name])
        extra = "" if math.isnan(accuracy) else f"   val accuracy {accuracy:.4f}"
        print(f"  {name:<16} {spread(results.rates[name]):>30} samples/s{extra}")
        jobs = [t.job_seconds for t in timings[name] if t.job_seconds is not None]
        if jobs:
            train = [t.seconds for t in timings[name]]
            fixed = [j - t for j, t in zip(jobs, train, strict=True)]
            print(
                f"  {'':<16} whole job (claim to finished) {spread(jobs, 3)} s; training "
                f"{spread(train, 3)} s; the rest (data, plan, model save, last write) "
                f"{spread(fixed, 3)} s"
            )
    print(f"  baseline: {results.baseline()} (the plain loop's faster thread count)")
    return results


def goal(name: str, results: Results, a: str, b: str, target: float) -> str:
    """bench/goals.py's GOAL line for contender `a` over `b`."""
    return goal_line(name, *reversed(ratios(results.rates[a], results.rates[b])), target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--wide-samples", type=int, default=8192)
    parser.add_argument("--wide-epochs", type=int, default=3)
    args = parser.parse_args()
    thread_counts = sorted({1, args.threads})
    print(
        f"torch {torch.__version__}, Epochal at {args.threads} threads, the plain loop at "
        f"{' and '.join(map(str, thread_counts))}; load average {load_average()}"
    )
    store = SqliteStore()
    goals = []
    for name, short, layers, make_plain in (
        ("digits MLP", "MLP", DIGITS_MLP, plain_mlp),
        ("digits CNN", "CNN", DIGITS_CNN, plain_cnn),
    ):
        contenders = digits_contenders(
            layers, make_plain, args.epochs, store, args.threads, thread_counts
        )
        results = compare(f"{name}, {args.epochs} epochs", contenders, args.repeats)
        base = results.baseline()
        goals.append(goal(f"{short} worker vs plain", results, WORKER, base, 1.00))
        print("  " + goal(f"{short} session vs plain", results, SESSION, base, 1.00)[5:])
    wide = wide_contenders(args.wide_epochs, args.wide_samples, 256, args.threads, thread_counts)
    results = compare(
        f"MLP {'-'.join(map(str, WIDE))}, batch 256, {args.wide_epochs} epochs of "
        f"{args.wide_samples:,} samples",
        wide,
        args.repeats,
    )
    base = results.baseline()
    print("  " + goal("compute-bound Epochal vs plain", results, "Epochal", base, 1.00)[5:])
    print("  " + goal("compute-bound plain vs matmul ceiling", results, base, CEILING, 0.80)[5:])
    goals.append(goal("compute-bound vs matmul ceiling", results, "Epochal", CEILING, 0.80))
    print(f"\nload average after: {load_average()}")
    for line in goals:
        print(line)


if __name__ == "__main__":
    main()
