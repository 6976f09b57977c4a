"""Epochal's training against a plain PyTorch loop with torch's best settings, side by side.

    python bench/vs_plain.py [--epochs N] [--repeats R] [--threads T]

Digits MLP and CNN: Epochal's side is what a worker's session runs — `train_spec` with per-step
losses and per-epoch metrics streamed to a SQLite store by a `StoreSink` (checkpoints and
cancellation are the worker's, measured by bench/checkpoint_cost.py). The plain side is a
hand-written loop over pre-built tensors (index slicing, no DataLoader) on an equivalent
`nn.Sequential` (channels-first CNN), with `Adam(fused=True)` and no per-step host sync: the
epoch's training loss and accuracy accumulate on the device and are read once per epoch with a
validation pass. Same data, batch size, epochs and seed.

Compute-bound: an MLP 256-512-512-10 at batch 256 on random data, Epochal's `fit` (its network,
objective and optimizer) against the same plain loop, and the machine's matmul ceiling
measured in the same run: the samples/s if a step took only the time of its eight matrix
products (three forward, five backward) timed on their own.

Each contender runs once untimed (warm-up), then R repetitions alternate the contenders, the
order rotated every repetition. Printed: samples/s as median [min-max] over the epochs (setup
excluded), the final validation accuracy, the ratio of the medians, and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from digits_setup import (
    DIGITS_CNN,
    DIGITS_MLP,
    SqliteStore,
    digits_spec,
    load_average,
    run_epochal,
    spread,
)
from torch import nn

from core.data import DATASETS
from core.data.base import split
from core.nn.network import build_network
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.training.loop import Objective, TensorData, fit
from core.training.metrics import METRICS
from core.training.optimizers import build_optimizer

Run = Callable[[], tuple[float, int, float]]  # -> (seconds, samples trained, val accuracy)


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
) -> tuple[float, int, float]:
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
    return time.perf_counter() - started, n * epochs, accuracy


def digits(spec: JobSpec) -> tuple[TensorData, TensorData]:
    arrays = DATASETS.get("digits").load(spec.dataset)
    train, val = split(arrays, spec.dataset.validation_split, spec.dataset.seed)
    return (
        TensorData(torch.from_numpy(train.x), torch.from_numpy(train.y)),
        TensorData(torch.from_numpy(val.x), torch.from_numpy(val.y)),
    )


def digits_contenders(
    layers: list, make_plain: Callable[[], nn.Module], epochs: int, store: SqliteStore
) -> dict[str, Run]:
    spec = digits_spec(layers, epochs)
    train, val = digits(spec)

    def plain() -> tuple[float, int, float]:
        torch.manual_seed(0)
        return plain_loop(make_plain(), train, val, epochs, spec.training.batch_size)

    def epochal() -> tuple[float, int, float]:
        seconds, result = run_epochal(spec, store)
        accuracy = result.history.epochs[-1]["val_accuracy"]
        return seconds, result.train_samples * epochs, accuracy

    return {"plain PyTorch": plain, "Epochal": epochal}


WIDE = [256, 512, 512, 10]


def wide_data(n: int) -> tuple[TensorData, TensorData]:
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(WIDE[0], WIDE[-1], generator=g)
    x = torch.randn(n + 1024, WIDE[0], generator=g)
    y = (x @ teacher).argmax(-1)
    return TensorData(x[:n], y[:n]), TensorData(x[n:], y[n:])


def wide_contenders(epochs: int, n: int, batch_size: int) -> dict[str, Run]:
    train, val = wide_data(n)
    layers = [{"type": "dense", "units": u, "activation": "relu"} for u in WIDE[1:-1]]
    layers.append({"type": "dense", "units": WIDE[-1], "activation": "softmax"})
    model_spec = ModelSpec.model_validate({"layers": layers})
    optimizer_spec = digits_spec(DIGITS_MLP, epochs).training.optimizer

    def epochal() -> tuple[float, int, float]:
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
        return time.perf_counter() - started, n * epochs, history.epochs[-1]["val_accuracy"]

    def plain() -> tuple[float, int, float]:
        torch.manual_seed(0)
        sizes = list(itertools.pairwise(WIDE))
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(sizes):
            modules += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 1 else [])
        return plain_loop(nn.Sequential(*modules), train, val, epochs, batch_size)

    return {"plain PyTorch": plain, "Epochal": epochal}


def matmul_ceiling(batch_size: int, reps: int) -> list[float]:
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

    for _ in range(20):
        step()
    rates = []
    for _ in range(reps):
        started = time.perf_counter()
        for _ in range(200):
            step()
        rates.append(200 * batch_size / (time.perf_counter() - started))
    return rates


def compare(title: str, contenders: dict[str, Run], repeats: int) -> dict[str, list[float]]:
    names = list(contenders)
    for name in names:
        contenders[name]()  # untimed warm-up: first-call costs, allocator, caches
    rates: dict[str, list[float]] = {name: [] for name in names}
    accuracy: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            seconds, samples, acc = contenders[name]()
            rates[name].append(samples / seconds)
            accuracy[name].append(acc)
    print(f"\n{title}")
    for name in names:
        print(
            f"  {name:<14} {spread(rates[name]):>30} samples/s   "
            f"val accuracy {statistics.median(accuracy[name]):.4f}"
        )
    return rates


def ratio(rates: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(rates[a]) / statistics.median(rates[b])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--wide-samples", type=int, default=8192)
    parser.add_argument("--wide-epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load_average()}")
    store = SqliteStore()
    results = []
    for name, layers, make_plain in (
        ("digits MLP", DIGITS_MLP, plain_mlp),
        ("digits CNN", DIGITS_CNN, plain_cnn),
    ):
        contenders = digits_contenders(layers, make_plain, args.epochs, store)
        rates = compare(f"{name}, {args.epochs} epochs", contenders, args.repeats)
        results.append((name, ratio(rates, "Epochal", "plain PyTorch")))
    wide = wide_contenders(args.wide_epochs, args.wide_samples, 256)
    rates = compare(
        f"MLP {'-'.join(map(str, WIDE))}, batch 256, {args.wide_epochs} epochs of "
        f"{args.wide_samples:,} samples",
        wide,
        args.repeats,
    )
    ceiling = matmul_ceiling(256, args.repeats)
    print(f"  {'matmul ceiling':<14} {spread(ceiling):>30} samples/s")
    print(f"\nload average after: {load_average()}")
    for name, value in results:
        print(f"{name}: Epochal / plain PyTorch = {value:.2f}")
    top = statistics.median(ceiling)
    print(f"wide MLP: Epochal / plain PyTorch = {ratio(rates, 'Epochal', 'plain PyTorch'):.2f}")
    for name in rates:
        print(f"wide MLP: {name} / matmul ceiling = {statistics.median(rates[name]) / top:.2f}")


if __name__ == "__main__":
    main()
