"""The Keras import's graph reader on mutated real `model.to_json()` outputs (Keras 3, a
test-only dependency): whatever is changed, the answer is a conversion or a SpecError, never
another exception (a 500) and never an endless walk."""

from __future__ import annotations

import copy
import json
import os
import random
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from core.errors import SpecError
from core.keras_import import from_keras

Path = tuple[str | int, ...]
HANG_GUARD_S = 10  # not a timing check (a case takes milliseconds): it ends an endless walk
# before it fills the memory


def _models() -> list[dict[str, Any]]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 is not installed (the `test` extra)")
    L = keras.layers
    x = keras.Input((8,), name="x")
    h = L.Dense(4, activation="relu", name="hidden")(x)
    h = L.Dropout(0.2, name="drop")(h)
    functional = keras.Model(x, L.Dense(3, activation="softmax", name="out")(h), name="chain")
    sequential = keras.Sequential(
        [keras.Input((8,)), L.Dense(4, activation="relu"), L.Dense(3, activation="softmax")]
    )
    for model in (functional, sequential):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    return [json.loads(m.to_json()) for m in (functional, sequential)]


def _paths(value: Any, at: Path = ()) -> Iterator[Path]:
    yield at
    if isinstance(value, dict | list):
        for key, child in list(value.items() if isinstance(value, dict) else enumerate(value)):
            yield from _paths(child, (*at, key))


def _get(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


def _mutated(model: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """`model` with one to three random changes: a layer called on another's output (its graph
    rewired), or a value replaced (by junk, by a layer's name, by a reference to a layer's
    output, by another part of the model), deleted or doubled."""
    model = copy.deepcopy(model)
    names = [_get(model, p) for p in _paths(model) if p[-1:] == ("name",)] or ["x"]
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(model) if p]
        path = rng.choice(paths)
        parent, key = _get(model, path[:-1]), path[-1]
        name = rng.choice(names)
        junk = [None, True, 0, -1, 2.5, float("nan"), 10**30, "", "x", [], {}, [1], {"a": 1},
                name, [name, 0, 0],
                {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}},
                copy.deepcopy(_get(model, rng.choice(paths)))]  # fmt: skip
        op = rng.random()
        config = model.get("config")
        layers = config.get("layers") if isinstance(config, dict) else None
        if op < 0.2 and isinstance(layers, list) and layers and isinstance(layers[0], dict):
            # rewired: a layer (the input too) called on another's output, maybe its own
            target = rng.choice([x for x in layers if isinstance(x, dict)])
            target["inbound_nodes"] = [{"args": [junk[-2]], "kwargs": {}}]
        elif op < 0.3:
            del parent[key]
        elif op < 0.4 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[key] = rng.choice(junk)
    return model


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"from_keras did not return within {HANG_GUARD_S} s")


@pytest.fixture(scope="module")
def models() -> list[dict[str, Any]]:
    return _models()


def test_a_mutated_keras_json_is_converted_or_refused_never_crashes(models):
    rng = random.Random(15)
    before = signal.signal(signal.SIGALRM, _alarm)
    outcomes = {"converted": 0, "refused": 0}
    try:
        for case in range(400):
            model = _mutated(rng.choice(models), rng)
            signal.alarm(HANG_GUARD_S)
            try:
                from_keras(model, dataset="iris")
                outcomes["converted"] += 1
            except SpecError:
                outcomes["refused"] += 1
            except Exception as e:  # noqa: BLE001 - any other is the failure, shown with its case
                pytest.fail(f"case {case}: {type(e).__name__}: {e}\n{json.dumps(model)[:2000]}")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, before)
    assert outcomes["converted"] and outcomes["refused"], outcomes  # both outcomes reached
