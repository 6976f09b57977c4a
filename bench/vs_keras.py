"""Epochal's training against Keras 3 `fit` (torch backend), side by side.

    python bench/vs_keras.py [--epochs N] [--repeats R] [--threads T]

The issue's goal: Epochal at >= 5x the samples/s of Keras on the digits MLP and CNN. Both
contenders train the same network from the same layer list (`DIGITS_MLP`, `DIGITS_CNN` of
digits_setup.py; Epochal's layer types are Keras's, so each entry becomes the Keras layer of
that name with the same arguments and the same default initializers), with Adam (Keras's
defaults), batches of 64, 20 epochs, on the same training and validation samples (Epochal's
digits loader and split: pixels scaled to [0, 1], the last 20 % of one shuffle held out).

Keras runs as a user writes it: `Sequential` from `Input(shape=(64,))`, `compile` with
sparse categorical cross-entropy and accuracy, then `model.fit(x, y, batch_size, epochs,
validation_data=..., verbose=0)`; only `fit` is timed (the model is built and compiled first).
Epochal's side is a stored job run as the worker runs it (digits_setup.run_as_worker:
heartbeat, metrics streamed to SQLite, checkpoints, the model's save), timed from its first
step to the end of training, as Keras's `fit` is.

Keras is a benchmark-only dependency (the `bench` extra); KERAS_BACKEND is set to torch here,
before keras is imported, so both train on the same torch build and threads.

Each contender runs once untimed (warm-up), then R repetitions alternate the contenders, the
order rotated every repetition. Printed: samples/s as median [min-max], the final validation
accuracy of each, the load average before and after, and one GOAL line per network.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: it reads it once

import keras
import numpy as np
import torch
from digits_setup import (
    DIGITS_CNN,
    DIGITS_MLP,
    SqliteStore,
    alternate,
    digits_spec,
    load_average,
    run_as_worker,
    spread,
)
from goals import goal_line, ratios

from core.data import DATASETS
from core.data.base import Arrays, split
from core.spec import JobSpec

TARGET = 5.0  # the goal: Epochal >= 5x Keras
Run = Callable[[], tuple[float, int, float]]  # -> (seconds, samples trained, val accuracy)

# Epochal's canonical layer names and the Keras classes they name.
KERAS_LAYERS: dict[str, Callable[..., keras.layers.Layer]] = {
    "dense": keras.layers.Dense,
    "dropout": keras.layers.Dropout,
    "reshape": keras.layers.Reshape,
    "conv2d": keras.layers.Conv2D,
    "batch_normalization": keras.layers.BatchNormalization,
    "activation": keras.layers.Activation,
    "max_pooling2d": keras.layers.MaxPooling2D,
    "flatten": keras.layers.Flatten,
}


def keras_layer(layer: dict[str, Any]) -> keras.layers.Layer:
    """The Keras layer that an Epochal layer entry names, with the same arguments."""
    kind, kwargs = layer["type"], {k: v for k, v in layer.items() if k != "type"}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return KERAS_LAYERS[kind](**kwargs)


def keras_model(layers: list[dict[str, Any]], inputs: tuple[int, ...]) -> keras.Model:
    model = keras.Sequential([keras.Input(shape=inputs), *map(keras_layer, layers)])
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def digits(spec: JobSpec) -> tuple[Arrays, Arrays]:
    """Epochal's digits loader and split: the very samples its training and validation see."""
    arrays = DATASETS.get("digits").load(spec.dataset)
    train, val = split(arrays, spec.dataset.validation_split, spec.dataset.seed)
    assert val is not None
    return train, val


def contenders(layers: list[dict[str, Any]], epochs: int, store: SqliteStore) -> dict[str, Run]:
    spec = digits_spec(layers, epochs)
    train, val = digits(spec)
    batch_size = spec.training.batch_size

    def run_keras() -> tuple[float, int, float]:
        keras.utils.set_random_seed(spec.training.seed)
        model = keras_model(layers, train.x.shape[1:])
        started = time.perf_counter()
        history = model.fit(
            train.x,
            train.y,
            batch_size=batch_size,
            epochs=epochs,
            validation_data=(val.x, val.y),
            verbose=0,
        )
        seconds = time.perf_counter() - started
        return seconds, len(train.x) * epochs, history.history["val_accuracy"][-1]

    def run_ours() -> tuple[float, int, float]:
        run = run_as_worker(spec, store)
        return run.train_seconds, run.samples, run.summary["final"]["val_accuracy"]

    return {"Keras fit": run_keras, "Epochal": run_ours}


def compare(
    title: str, runs: dict[str, Run], repeats: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Samples/s of each contender per repetition, and its median final validation accuracy."""
    names = list(runs)
    results = alternate(runs, repeats)  # (seconds, samples, accuracy) per run
    rates = {name: [samples / seconds for seconds, samples, _ in results[name]] for name in names}
    accuracy = {name: [acc for _, _, acc in results[name]] for name in names}
    medians = {name: statistics.median(accuracy[name]) for name in names}
    print(f"\n{title}")
    for name in names:
        print(
            f"  {name:<10} {spread(rates[name]):>30} samples/s   val accuracy {medians[name]:.4f}"
        )
    return rates, medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, keras {keras.__version__} ({keras.backend.backend()}), "
        f"numpy {np.__version__}, {args.threads} threads, load average {load_average()}"
    )
    store = SqliteStore()
    goals = []
    for name, layers in (("MLP", DIGITS_MLP), ("CNN", DIGITS_CNN)):
        rates, accuracy = compare(
            f"digits {name}, {args.epochs} epochs",
            contenders(layers, args.epochs, store),
            args.repeats,
        )
        gap = abs(accuracy["Epochal"] - accuracy["Keras fit"]) * 100
        print(f"  val accuracy gap {gap:.1f} pp{'' if gap <= 1.5 else '  (NOT equal accuracy)'}")
        median, per_rep = ratios(rates["Epochal"], rates["Keras fit"])
        goals.append(goal_line(f"{name} vs Keras", per_rep, median, TARGET))
    print(f"\nload average after: {load_average()}")
    for line in goals:
        print(line)


if __name__ == "__main__":
    main()
