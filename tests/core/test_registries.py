"""Every spec'd component has its implementation, so adding one is a local change that can't half-land."""

from __future__ import annotations

import pytest

from core.errors import UnknownNameError
from core.nn.layers import LAYERS
from core.registry import Registry
from core.spec.layers import LAYER_TYPES
from core.spec.optimizers import OPTIMIZER_TYPES
from core.training.optimizers import OPTIMIZERS


def test_each_layer_spec_has_a_builder_and_each_builder_a_spec() -> None:
    assert sorted(LAYER_TYPES) == LAYERS.names()


def test_each_optimizer_spec_has_a_factory_and_each_factory_a_spec() -> None:
    assert sorted(OPTIMIZER_TYPES) == OPTIMIZERS.names()


def test_registry_accepts_keras_class_spelling_and_lists_known_names() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("max_pooling2d")(1)
    reg.register("simple_rnn")(2)
    assert (reg.get("MaxPooling2D"), reg.get("SimpleRNN"), reg.canonical("simple_rnn")) == (
        1,
        2,
        "simple_rnn",
    )
    with pytest.raises(
        UnknownNameError,
        match="unknown widget 'maxpooling2d'; expected one of: max_pooling2d, simple_rnn",
    ):
        reg.get("maxpooling2d")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("simple_rnn")(3)
