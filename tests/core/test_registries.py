"""Every spec'd component has its implementation, so adding one is a local change that can't half-land."""

from __future__ import annotations

import pytest

from core.errors import UnknownNameError
from core.nn.layers import LAYERS
from core.registry import Registry
from core.spec.layers import LAYER_TYPES
from core.spec.metrics import series_name
from core.spec.optimizers import OPTIMIZER_TYPES
from core.training.losses import LOSSES
from core.training.metrics import METRICS
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


def test_a_registry_resolves_its_own_aliases_the_one_way_for_every_kind() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("mean_squared_error")(1)
    reg.alias("mean_squared_error", "mse", "MSE")
    assert (reg.get("mse"), reg.canonical("MSE"), reg.get("MeanSquaredError")) == (
        1,
        "mean_squared_error",
        1,
    )
    assert reg.unalias("mse") == "mean_squared_error" and reg.unalias("val") == "val"
    assert reg.names() == ["mean_squared_error"] and "mse" not in reg  # aliases are not names
    with pytest.raises(ValueError, match="registered twice"):
        reg.alias("mean_squared_error", "mse")
    with pytest.raises(ValueError, match="'huber' is not registered"):
        reg.alias("huber", "hub")


def test_losses_and_metrics_hold_kerass_aliases_in_their_registries() -> None:
    assert (LOSSES.canonical("mse"), LOSSES.canonical("BCE"), LOSSES.canonical("kld")) == (
        "mean_squared_error",
        "binary_crossentropy",
        "kl_divergence",
    )
    assert (METRICS.canonical("acc"), METRICS.canonical("MeanSquaredError")) == ("accuracy", "mse")
    assert (series_name("val_acc"), series_name("MAE"), series_name("val_loss")) == (
        "val_accuracy",
        "mae",
        "val_loss",
    )
