"""Initializers against Keras 3's formulas (keras/src/initializers/*.py), for dense and conv kernels.

Moments are checked with tolerances of about five standard errors for the sample count, so a
wrong fan, scale or truncation (all off by 20 % or more) fails while sampling noise cannot.
"""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from core.nn.initializers import INITIALIZERS, TRUNCATED_STDDEV, initialize
from core.nn.network import build_network
from core.spec.initializers import INITIALIZER_TYPES, InitializerSpec, RandomNormal
from core.spec.job import JobSpec, ModelSpec

# PyTorch layouts (out, in, *kernel); Keras's fans: fan_in = in · kernel, fan_out = out · kernel.
LAYOUTS = {
    "dense": ((300, 200), 200, 300),
    "conv": ((64, 32, 3, 3), 32 * 9, 64 * 9),
}
SPEC = TypeAdapter(InitializerSpec)


def stddev_of_standard_normal_cut_at_two() -> float:
    density_at_2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))  # P(|z| < 2)
    return math.sqrt(1 - 2 * 2 * density_at_2 / mass)


T = stddev_of_standard_normal_cut_at_two()


def drawn(spec: object, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    t = torch.empty(shape, dtype=torch.float64)
    initialize(t, SPEC.validate_python(spec))
    return t


def uniform(limit: float) -> tuple[str, float, float]:
    return "uniform", limit / math.sqrt(3), limit


def truncated(stddev_after: float) -> tuple[str, float, float]:
    return "truncated", stddev_after, 2 * stddev_after / T  # cut at 2 stddev of the raw draw


# name → (fan_in, fan_out) → (distribution, stddev of the values, bound of the values)
KERAS = {
    "glorot_uniform": lambda i, o: uniform(math.sqrt(6 / (i + o))),
    "glorot_normal": lambda i, o: truncated(math.sqrt(2 / (i + o))),
    "he_uniform": lambda i, o: uniform(math.sqrt(6 / i)),
    "he_normal": lambda i, o: truncated(math.sqrt(2 / i)),
    "lecun_uniform": lambda i, o: uniform(math.sqrt(3 / i)),
    "lecun_normal": lambda i, o: truncated(math.sqrt(1 / i)),
    "variance_scaling": lambda i, o: truncated(math.sqrt(1 / i)),  # scale 1, fan_in, truncated
    "random_normal": lambda i, o: ("normal", 0.05, math.inf),
    "random_uniform": lambda i, o: ("uniform", 0.1 / math.sqrt(12), 0.05),
    "truncated_normal": lambda i, o: ("truncated", 0.05 * T, 0.1),
}


def check_moments(
    t: torch.Tensor, mean: float, distribution: str, stddev: float, bound: float
) -> None:
    n = t.numel()
    assert abs(t.mean().item() - mean) < 5 * stddev / math.sqrt(n)
    assert t.var().item() == pytest.approx(stddev**2, rel=5 * math.sqrt(2 / n))
    spread = (t - mean).abs().max().item()
    if distribution == "normal":
        assert spread > 3 * stddev  # not truncated: 0.27 % of the draws lie beyond 3 stddev
    else:
        assert bound * 0.97 < spread <= bound  # fills the range, never beyond it


def test_the_truncation_constant_is_the_stddev_of_a_standard_normal_cut_at_two() -> None:
    assert math.isclose(TRUNCATED_STDDEV, T, rel_tol=0, abs_tol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", KERAS)
def test_named_initializers_follow_keras_formulas(name: str, layout: str) -> None:
    shape, fan_in, fan_out = LAYOUTS[layout]
    check_moments(drawn(name, shape), 0.0, *KERAS[name](fan_in, fan_out))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_arguments(mode: str, distribution: str) -> None:
    shape, fan_in, fan_out = LAYOUTS["conv"]
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    stddev = math.sqrt(0.5 / n)  # scale / n is the variance for every distribution
    expected = {
        "truncated_normal": truncated(stddev),
        "untruncated_normal": ("normal", stddev, math.inf),
        "uniform": uniform(math.sqrt(3 * 0.5 / n)),
    }[distribution]
    spec = {"type": "variance_scaling", "scale": 0.5, "mode": mode, "distribution": distribution}
    check_moments(drawn(spec, shape), 0.0, *expected)


def test_object_arguments_are_honoured() -> None:
    shape = LAYOUTS["dense"][0]
    check_moments(
        drawn({"type": "random_normal", "mean": 0.3, "stddev": 0.1}, shape),
        0.3,
        "normal",
        0.1,
        math.inf,
    )
    check_moments(
        drawn({"type": "truncated_normal", "mean": 1.0, "stddev": 0.2}, shape),
        1.0,
        *truncated(0.2 * T),  # values within 1.0 ± 0.4
    )
    t = drawn({"type": "random_uniform", "minval": 0.0, "maxval": 2.0}, shape)
    assert 0.0 <= t.min().item() < 0.01 and 1.99 < t.max().item() < 2.0
    check_moments(t, 1.0, "uniform", 2 / math.sqrt(12), 1.0)


def test_constant_zeros_ones() -> None:
    assert torch.equal(drawn({"type": "constant", "value": 0.5}, (2, 3)), torch.full((2, 3), 0.5))
    assert torch.equal(drawn("constant", (4,)), torch.zeros(4))  # Keras's Constant(value=0.0)
    assert torch.equal(drawn("Zeros", (2, 2, 3)), torch.zeros(2, 2, 3))
    assert torch.equal(drawn("ones", (5,)), torch.ones(5))


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(gain: float) -> None:
    spec = {"type": "orthogonal", "gain": gain}
    wide = drawn(spec, (64, 32, 3, 3)).reshape(64, -1)  # 64 filters over 288 inputs
    assert torch.allclose(wide @ wide.T, gain**2 * torch.eye(64, dtype=wide.dtype), atol=1e-10)
    tall = drawn(spec, (300, 200))  # Keras's (200, 300) kernel: orthogonal rows, ours columns
    assert torch.allclose(tall.T @ tall, gain**2 * torch.eye(200, dtype=tall.dtype), atol=1e-10)
    square = drawn(spec, (50, 50))
    assert torch.allclose(square @ square.T, gain**2 * torch.eye(50, dtype=square.dtype))
    assert torch.allclose(square.T @ square, gain**2 * torch.eye(50, dtype=square.dtype))


def test_identity_is_gain_times_eye_for_a_dense_kernel_only() -> None:
    w = drawn({"type": "identity", "gain": 2.0}, (3, 5))  # Linear(5 → 3)
    x = torch.arange(1.0, 6.0, dtype=torch.float64)
    assert torch.equal(w @ x, 2.0 * x[:3])  # output unit i is gain · input i, as in Keras
    assert torch.equal(drawn("identity", (4, 2)), torch.eye(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"2-D kernels. Received: shape=\(8, 4, 3, 3\) of rank 4"):
        drawn("identity", (8, 4, 3, 3))
    with pytest.raises(ValueError, match=r"rank 2 or more. Received: shape=\(8,\) of rank 1"):
        drawn("orthogonal", (8,))


def test_a_seed_gives_the_same_values_and_leaves_the_global_generator_alone() -> None:
    a = drawn({"type": "he_normal", "seed": 7}, (20, 10), seed=1)
    b = drawn({"type": "he_normal", "seed": 7}, (20, 10), seed=2)
    c = drawn({"type": "he_normal", "seed": 8}, (20, 10), seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    initialize(torch.empty(4), SPEC.validate_python({"type": "random_normal", "seed": 7}))
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(1))
    # Unseeded initializers draw from the global generator, so the run's seed reproduces them.
    assert not torch.equal(drawn("he_normal", (20, 10), seed=1), drawn("he_normal", (20, 10), 2))


def test_names_and_class_spellings_normalize_and_defaults_collapse_to_the_name() -> None:
    assert SPEC.validate_python("HeNormal") == "he_normal"
    assert SPEC.validate_python({"type": "GlorotUniform"}) == "glorot_uniform"
    assert SPEC.validate_python({"type": "random_normal", "stddev": 0.05}) == "random_normal"
    assert SPEC.validate_python({"type": "RandomNormal", "stddev": 0.1}) == RandomNormal(
        type="random_normal", stddev=0.1
    )
    keras_normal = SPEC.validate_python({"type": "variance_scaling", "distribution": "Normal"})
    assert keras_normal == "variance_scaling"  # Keras reads "normal" as "truncated_normal"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("he_normall", "unknown initializer 'he_normall'; expected one of: constant, glorot_"),
        ("He_Normal", "unknown initializer 'He_Normal'"),
        ({"type": "random_normal", "stdev": 1}, "random_normal takes mean, stddev, seed; recei"),
        (
            {"type": "glorot_uniform", "scale": 2},
            "glorot_uniform takes input_axes, output_axes, seed; rec",
        ),
        ({"type": "zeros", "value": 1}, "zeros takes no arguments; received unknown argument"),
        ({"stddev": 1.0}, "expected an initializer name or an object with its 'type'"),
        ({"type": "random_uniform", "minval": 1, "maxval": 0}, "expected minval <= maxval"),
        ({"type": "random_normal", "stddev": 0}, "greater than 0"),
        ({"type": "variance_scaling", "scale": -1}, "greater than 0"),
        ({"type": "variance_scaling", "mode": "fan"}, "'fan_in', 'fan_out' or 'fan_avg'"),
        ({"type": "constant", "value": math.nan}, "finite number"),
    ],
)
def test_bad_initializers_are_refused_saying_why(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SPEC.validate_python(value)


def test_each_initializer_spec_has_an_implementation_and_each_implementation_a_spec() -> None:
    assert sorted(INITIALIZER_TYPES) == INITIALIZERS.names()


def test_layer_specs_take_objects_that_round_trip_and_reach_the_weights() -> None:
    job = JobSpec.model_validate(
        {
            "name": "init",
            "dataset": {"name": "digits"},
            "model": {
                "layers": [
                    {
                        "type": "dense",
                        "units": 3,
                        "kernel_initializer": {"type": "Constant", "value": 0.5},
                        "bias_initializer": "Ones",
                    }
                ]
            },
            "training": {"loss": "mean_squared_error"},
        }
    )
    dumped = job.model_dump(mode="json")["model"]["layers"][0]
    assert dumped["kernel_initializer"] == {"type": "constant", "value": 0.5}
    assert dumped["bias_initializer"] == "ones"
    assert JobSpec.model_validate(job.model_dump(mode="json")) == job
    net = build_network(ModelSpec.model_validate(job.model.model_dump()), (4,))
    net.initialize()
    linear = net.body[0]
    assert torch.equal(linear.weight, torch.full((3, 4), 0.5))
    assert torch.equal(linear.bias, torch.ones(3))
