"""The search space: grid order and size, distributions' bounds, seeds and q rounding."""

from __future__ import annotations

import itertools
import math

import pytest
from pydantic import TypeAdapter, ValidationError

from core.sweeps import space
from core.sweeps.spec import ParameterSpec

PARAMETER = TypeAdapter(ParameterSpec)


def parameters(**specs: dict) -> dict:
    return {path.replace("__", "."): PARAMETER.validate_python(s) for path, s in specs.items()}


def test_shorthand_forms_read_as_w_and_b_reads_them() -> None:
    assert PARAMETER.validate_python({"value": 3}).distribution == "constant"
    assert PARAMETER.validate_python({"values": [1, 2]}).distribution == "categorical"
    assert PARAMETER.validate_python({"min": 1, "max": 4}).distribution == "int_uniform"
    assert PARAMETER.validate_python({"min": 0.1, "max": 4}).distribution == "uniform"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"distribution": "uniform", "min": 2, "max": 1}, "expected max greater than min"),
        ({"distribution": "log_uniform_values", "min": 0, "max": 1}, "greater than 0"),
        ({"distribution": "q_uniform", "min": 0.1, "max": 0.2, "q": 1}, "no multiple of q=1"),
        ({"distribution": "normal", "sigma": 0}, "greater than 0"),
        ({"distribution": "beta", "min": 0, "max": 1}, "does not match any of the expected tags"),
        ({"values": []}, "at least 1 item"),
    ],
)
def test_bad_bounds_are_refused_with_what_was_expected(spec: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PARAMETER.validate_python(spec)


def test_the_grid_is_the_product_in_order_and_its_size() -> None:
    p = parameters(
        a={"values": [1, 2, 3]},
        b={"distribution": "int_uniform", "min": 0, "max": 1},
        c={"value": "x"},
        d={"distribution": "q_uniform", "min": 0.1, "max": 0.35, "q": 0.1},
    )
    assert space.grid_size(p) == 3 * 2 * 1 * 3
    points = [space.grid_point(p, i) for i in range(space.grid_size(p))]
    expected = itertools.product([1, 2, 3], [0, 1], ["x"], [0.1, 0.2, 0.3])
    assert [tuple(x.values()) for x in points] == list(expected)
    with pytest.raises(IndexError):
        space.grid_point(p, 18)


def test_q_uniform_takes_the_multiples_of_q_within_the_bounds() -> None:
    p = PARAMETER.validate_python({"distribution": "q_uniform", "min": 3, "max": 17, "q": 4})
    assert space.choices(p) == [4, 8, 12, 16]
    assert all(isinstance(v, int) for v in space.choices(p))
    drawn = {space.draw(p, space.generator(0, i)) for i in range(200)}
    assert drawn == {4, 8, 12, 16}


def test_random_samples_stay_in_bounds_and_are_reproducible_per_trial() -> None:
    p = parameters(
        lr={"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        u={"distribution": "uniform", "min": -1, "max": 1},
        n={"distribution": "int_uniform", "min": 2, "max": 5},
        g={"distribution": "normal", "mu": 10, "sigma": 0.5},
        c={"values": [{"type": "adam"}, {"type": "sgd"}]},
    )
    draws = [space.sample(p, 7, i) for i in range(400)]
    assert draws[3] == space.sample(p, 7, 3)  # any process computes trial 3 again
    assert draws[3] != space.sample(p, 8, 3)
    assert all(1e-4 <= d["lr"] <= 1e-1 and -1 <= d["u"] <= 1 for d in draws)
    assert {d["n"] for d in draws} == {2, 3, 4, 5}
    assert {d["c"]["type"] for d in draws} == {"adam", "sgd"}
    # log-uniform: as many draws per decade
    decades = [math.floor(math.log10(d["lr"])) for d in draws]
    assert all(abs(decades.count(k) - 400 / 3) < 40 for k in (-4, -3, -2))
    mean = sum(d["g"] for d in draws) / len(draws)
    assert abs(mean - 10) < 0.15


def test_probes_are_the_choices_or_the_bounds() -> None:
    p = parameters(
        a={"values": [1, 2]},
        b={"distribution": "int_uniform", "min": 1, "max": 100},
        c={"distribution": "uniform", "min": 0.5, "max": 2},
        d={"distribution": "normal", "mu": 3},
    )
    assert [space.probes(x) for x in p.values()] == [[1, 2], [1, 100], [0.5, 2], [3]]
