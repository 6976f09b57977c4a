"""Epochal's training of the tiny digits MLP against scikit-learn's `MLPClassifier`.

    python bench/vs_sklearn.py [--epochs N] [--repeats R]

The network is the digits MLP without its dropout layer (64-128-10, relu, softmax), the one
network both can train: scikit-learn has no dropout, and with it Epochal would do more work per
step (a mask per batch) on a different model. The MLP with dropout (bench/digits_setup.py's
DIGITS_MLP) is timed too, for reference, and its accuracy must stay within 1 pp. Both train on
Epochal's split of digits (the same arrays), with Adam (lr 1e-3, epsilon 1e-7), batches of 64,
the same number of epochs, no L2 penalty (scikit-learn's `alpha=0`) and no early stopping
(`tol=0`, `n_iter_no_change` never reached). Epochal's side is a stored job run as the worker
runs it (`digits_setup.run_as_worker`: heartbeat, metrics streamed to SQLite, checkpoints, the
model's save), timed from its first step to the end of training, validation every epoch
included; scikit-learn's is `fit` (which validates nothing).

For reference, a plain PyTorch loop (bench/vs_plain.py's, fused Adam) on the same network at 1
and 2 intra-op threads. Each contender runs once untimed (warm-up), then R repetitions
alternate the contenders, the order rotated every repetition; samples/s as median [min-max].
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from digits_setup import (
    DIGITS_MLP,
    SqliteStore,
    alternate,
    digits_spec,
    load_average,
    run_as_worker,
    spread,
)
from goals import goal_line, ratios
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from torch import nn
from vs_plain import digits, plain_loop

from core.training.loop import TensorData

Run = Callable[[], tuple[float, int, float]]  # -> (seconds, samples trained, val accuracy)
NO_DROPOUT = [layer for layer in DIGITS_MLP if layer["type"] != "dropout"]
TARGET = 1.0
ACCURACY_PP = 1.0  # the largest difference in validation accuracy that counts as equal


def sklearn_mlp(train: TensorData, val: TensorData, epochs: int, batch_size: int) -> Run:
    x, y = train.x.numpy(), train.y.numpy()
    vx, vy = val.x.numpy(), val.y.numpy()

    def run() -> tuple[float, int, float]:
        model = MLPClassifier(
            (128,),
            activation="relu",
            solver="adam",
            alpha=0.0,
            batch_size=batch_size,
            learning_rate_init=1e-3,
            epsilon=1e-7,
            max_iter=epochs,
            shuffle=True,
            random_state=0,
            tol=0.0,
            n_iter_no_change=10**9,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached, as asked
            started = time.perf_counter()
            model.fit(x, y)
            seconds = time.perf_counter() - started
        return seconds, len(x) * epochs, float(np.mean(model.predict(vx) == vy))

    return run


def plain(train: TensorData, val: TensorData, epochs: int, threads: int) -> Run:
    def run() -> tuple[float, int, float]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
            t = plain_loop(model, train, val, epochs, 64)
            return t.seconds, t.samples, t.accuracy
        finally:
            torch.set_num_threads(before)

    return run


def epochal(layers: list, epochs: int, store: SqliteStore) -> Run:
    spec = digits_spec(layers, epochs)

    def run() -> tuple[float, int, float]:
        run = run_as_worker(spec, store)
        return run.train_seconds, run.samples, run.summary["final"]["val_accuracy"]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    store = SqliteStore()
    train, val = digits(digits_spec(NO_DROPOUT, args.epochs))
    contenders: dict[str, Run] = {
        "Epochal": epochal(NO_DROPOUT, args.epochs, store),
        "scikit-learn MLPClassifier": sklearn_mlp(train, val, args.epochs, 64),
        "Epochal, with dropout 0.2": epochal(DIGITS_MLP, args.epochs, store),
        "plain PyTorch, 1 thread": plain(train, val, args.epochs, 1),
        "plain PyTorch, 2 threads": plain(train, val, args.epochs, 2),
    }
    print(f"load average before: {load_average()}")
    print(f"digits MLP 64-128-10, batch 64, {args.epochs} epochs, Adam 1e-3, {len(train)} samples")
    names = list(contenders)
    results = alternate(contenders, args.repeats)  # (seconds, samples, accuracy) per run
    rates = {name: [samples / seconds for seconds, samples, _ in results[name]] for name in names}
    accuracy = {name: statistics.median(acc for _, _, acc in results[name]) for name in names}
    for name in names:
        print(f"  {name:28} {spread(rates[name])} samples/s, val accuracy {accuracy[name]:.4f}")
    print(f"load average after: {load_average()}")
    ratio, per_repetition = ratios(rates["Epochal"], rates["scikit-learn MLPClassifier"])
    gap = 100 * max(
        abs(accuracy[name] - accuracy["scikit-learn MLPClassifier"])
        for name in ("Epochal", "Epochal, with dropout 0.2")
    )
    equal = gap <= ACCURACY_PP
    print(
        f"accuracy: Epochal's within {gap:.2f} pp of scikit-learn's ({'equal' if equal else 'NOT equal'})"
    )
    print(goal_line("MLP vs scikit-learn", per_repetition, ratio, TARGET, equal_accuracy=equal))


if __name__ == "__main__":
    main()
