"""The search space: grid enumeration and seeded random sampling of the parameters.

Both are pure functions of (parameters, trial index[, seed]), so any process can compute trial
`i` again after a restart and get the same values: nothing about the space lives in memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.sweeps.spec import (
    Categorical,
    Constant,
    IntUniform,
    LogUniformValues,
    Normal,
    ParameterSpec,
    QUniform,
    Uniform,
)

Params = dict[str, Any]


def q_value(k: int, q: float) -> float | int:
    """k*q, rounded to q's decimals so 0.1 * 3 reads 0.3; an integer when q is one."""
    value = k * q
    if float(q).is_integer():
        return round(value)
    decimals = max(0, -math.floor(math.log10(abs(q)))) + 6
    return round(value, decimals)


def choices(parameter: ParameterSpec) -> list[Any]:
    """Every value an enumerable parameter can take, in order."""
    if isinstance(parameter, Constant):
        return [parameter.value]
    if isinstance(parameter, Categorical):
        return list(parameter.values)
    if isinstance(parameter, IntUniform):
        return list(range(parameter.min, parameter.max + 1))
    if isinstance(parameter, QUniform):
        low, high = parameter.steps
        return [q_value(k, parameter.q) for k in range(low, high + 1)]
    raise ValueError(f"{parameter.distribution} is continuous: it has no list of values")


def size(parameter: ParameterSpec) -> int:
    if isinstance(parameter, IntUniform):
        return parameter.max - parameter.min + 1
    if isinstance(parameter, QUniform):
        low, high = parameter.steps
        return high - low + 1
    return len(choices(parameter))


def grid_size(parameters: Mapping[str, ParameterSpec]) -> int:
    return math.prod(size(p) for p in parameters.values())


def grid_point(parameters: Mapping[str, ParameterSpec], index: int) -> Params:
    """The `index`-th combination, in itertools.product order of the parameters (sorted by
    path in a SweepSpec), the last varying fastest."""
    if not 0 <= index < grid_size(parameters):
        raise IndexError(f"grid point {index} out of {grid_size(parameters)}")
    values: Params = {}
    for path, parameter in reversed(list(parameters.items())):
        index, at = divmod(index, size(parameter))
        values[path] = _nth(parameter, at)
    return {path: values[path] for path in parameters}


def _nth(parameter: ParameterSpec, at: int) -> Any:
    if isinstance(parameter, IntUniform):
        return parameter.min + at
    if isinstance(parameter, QUniform):
        return q_value(parameter.steps[0] + at, parameter.q)
    return choices(parameter)[at]


def generator(seed: int, index: int) -> np.random.Generator:
    """Trial `index`'s own stream: independent of how many trials another process drew."""
    return np.random.default_rng([seed, index])


def sample(parameters: Mapping[str, ParameterSpec], seed: int, index: int) -> Params:
    rng = generator(seed, index)
    return {path: draw(parameter, rng) for path, parameter in parameters.items()}


def draw(parameter: ParameterSpec, rng: np.random.Generator) -> Any:
    if isinstance(parameter, Uniform):
        return float(rng.uniform(parameter.min, parameter.max))
    if isinstance(parameter, LogUniformValues):
        return float(math.exp(rng.uniform(math.log(parameter.min), math.log(parameter.max))))
    if isinstance(parameter, Normal):
        return float(rng.normal(parameter.mu, parameter.sigma))
    if isinstance(parameter, IntUniform):
        return int(rng.integers(parameter.min, parameter.max, endpoint=True))
    if isinstance(parameter, QUniform):
        low, high = parameter.steps
        return q_value(int(rng.integers(low, high, endpoint=True)), parameter.q)
    options = choices(parameter)
    return options[int(rng.integers(len(options)))]


def probes(parameter: ParameterSpec) -> list[Any]:
    """Values that stand for a parameter when a sweep is checked before it runs: every choice
    of a short list, the bounds of a range (mu for a normal)."""
    if isinstance(parameter, Uniform | LogUniformValues):
        return [parameter.min, parameter.max]
    if isinstance(parameter, Normal):
        return [parameter.mu]
    if isinstance(parameter, IntUniform | QUniform) and size(parameter) > 2:
        return [_nth(parameter, 0), _nth(parameter, size(parameter) - 1)]
    return choices(parameter)
