"""The JobSpec schema: Keras vocabulary, Keras spellings, defaults, and errors that say what's wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.spec import JobSpec

DIGITS = {
    "name": "digits-mlp",
    "dataset": {"name": "digits", "validation_split": 0.2},
    "model": {"layers": [{"type": "dense", "units": 10, "activation": "softmax"}]},
    "training": {"loss": "sparse_categorical_crossentropy"},
}


def spec(**changes: object) -> dict:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DIGITS.items()}
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return data


def errors(data: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as e:
        JobSpec.model_validate(data)
    return [(err["loc"], err["msg"]) for err in e.value.errors()]


def test_keras_defaults_are_filled_in() -> None:
    s = JobSpec.model_validate(DIGITS)
    dense = s.model.layers[0]
    assert (dense.kernel_initializer, dense.bias_initializer, dense.use_bias) == (
        "glorot_uniform",
        "zeros",
        True,
    )
    assert s.training.optimizer.type == "adam"
    assert (s.training.optimizer.learning_rate, s.training.optimizer.epsilon) == (0.001, 1e-7)
    assert (s.training.batch_size, s.training.epochs) == (32, 1)
    assert s.resources.device == "auto"


def test_keras_class_spellings_are_normalized() -> None:
    s = JobSpec.model_validate(
        spec(
            model={
                "layers": [
                    {"type": "Dense", "units": 4, "activation": "relu"},
                    {"type": "Dropout", "rate": 0.1},
                    {"type": "Activation", "activation": "softmax"},
                ]
            },
            training={"loss": "SparseCategoricalCrossentropy", "optimizer": "SGD"},
        )
    )
    assert [layer.type for layer in s.model.layers] == ["dense", "dropout", "activation"]
    assert s.training.loss.type == "sparse_categorical_crossentropy"
    assert s.training.optimizer.type == "sgd"
    assert s.training.optimizer.learning_rate == 0.01  # Keras's SGD default


@pytest.mark.parametrize("bad", ["Dense_", "Max_Pooling2D", "dense_layer", "denses"])
def test_only_canonical_or_class_spelling_is_accepted(bad: str) -> None:
    [(loc, msg)] = errors(spec(model={"layers": [{"type": bad, "units": 3}]}))
    assert loc == ("model", "layers", 0)
    assert "'dense'" in msg


def test_unknown_names_list_the_known_ones() -> None:
    found = dict(errors(spec(dataset={"name": "mnistt"}, training={"loss": "crossentropy"})))
    assert "expected one of: breast_cancer, circles, digits" in found[("dataset", "name")]
    assert "sparse_categorical_crossentropy" in found[("training", "loss", "type")]


def test_values_out_of_range_name_the_field() -> None:
    found = dict(
        errors(
            spec(
                model={"layers": [{"type": "dense", "units": -3}, {"type": "dropout", "rate": 1.5}]}
            )
        )
    )
    assert ("model", "layers", 0, "dense", "units") in found
    assert ("model", "layers", 1, "dropout", "rate") in found


def test_unknown_fields_are_refused() -> None:
    found = dict(errors(spec(training={"loss": "mean_squared_error", "learning_rate": 0.1})))
    assert found[("training", "learning_rate")] == "Extra inputs are not permitted"


def test_spec_is_frozen_and_round_trips() -> None:
    s = JobSpec.model_validate(DIGITS)
    with pytest.raises(ValidationError):
        s.name = "other"  # type: ignore[misc]
    assert JobSpec.model_validate(s.model_dump(mode="json")) == s


def test_a_rescaling_factor_may_be_written_as_a_fraction() -> None:
    s = JobSpec.model_validate(
        spec(
            model={
                "layers": [{"type": "Rescaling", "scale": "1/255"}, DIGITS["model"]["layers"][0]]
            }
        )
    )
    assert s.model.layers[0].scale == pytest.approx(1 / 255)
    assert ("model", "layers", 0, "rescaling", "scale") in dict(
        errors(spec(model={"layers": [{"type": "rescaling", "scale": "1/zero"}]}))
    )
