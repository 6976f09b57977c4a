"""Checks at submission: the loss fits the output, limits hold, options apply to the data set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.errors import SpecError
from core.settings import Settings
from core.spec import JobSpec
from core.training.plan import plan_job


def job(
    layers: list[dict], loss: object, dataset: object = "digits", **training: object
) -> JobSpec:
    ds = {"name": dataset} if isinstance(dataset, str) else dataset
    return JobSpec.model_validate(
        {"dataset": ds, "model": {"layers": layers}, "training": {"loss": loss, **training}}
    )


def issues(spec: JobSpec, **limits: int) -> dict[tuple, str]:
    with pytest.raises(SpecError) as e:
        plan_job(spec, Settings(**limits))
    return {i.loc: i.msg for i in e.value.issues}


SOFTMAX10 = [{"type": "dense", "units": 10, "activation": "softmax"}]


def test_accepted_spec_reports_a_keras_style_summary() -> None:
    plan = plan_job(
        job(
            [{"type": "dense", "units": 16, "activation": "relu"}, *SOFTMAX10],
            "sparse_categorical_crossentropy",
        ),
        Settings(),
    )
    assert plan.summary() == {
        "parameter_count": 64 * 16 + 16 + 16 * 10 + 10,
        "input_shape": [64],
        "layers": [
            {"name": "dense_0", "type": "dense", "output_shape": [16], "params": 64 * 16 + 16},
            {"name": "dense_1", "type": "dense", "output_shape": [10], "params": 170},
        ],
    }
    assert (plan.encoding, plan.use_logits) == ("index", True)


@pytest.mark.parametrize(
    ("layers", "loss", "dataset", "expected"),
    [
        (
            [{"type": "dense", "units": 3, "activation": "softmax"}],
            "sparse_categorical_crossentropy",
            "digits",
            "the last layer outputs shape (3,); expected (10,), one unit per class",
        ),
        (
            [{"type": "dense", "units": 10}],
            "categorical_crossentropy",
            "digits",
            "add activation 'softmax' or set from_logits: true",
        ),
        (
            [{"type": "dense", "units": 1, "activation": "sigmoid"}],
            "binary_crossentropy",
            "digits",
            "needs two classes; 'digits' has 10 classes",
        ),
        (
            [{"type": "dense", "units": 2, "activation": "softmax"}],
            "binary_crossentropy",
            "moons",
            "expected (1,), a single sigmoid unit",
        ),
        (
            [{"type": "dense", "units": 1}],
            "sparse_categorical_crossentropy",
            "regression",
            "needs class labels but 'regression' is a regression data set",
        ),
        (
            [{"type": "dense", "units": 3}],
            "mean_squared_error",
            "regression",
            "the targets have shape (1,)",
        ),
        (
            [{"type": "dense", "units": 10, "activation": "sigmoid"}],
            "categorical_crossentropy",
            "digits",
            "needs a softmax output, not sigmoid",
        ),
        (
            SOFTMAX10,
            {"type": "sparse_categorical_crossentropy", "from_logits": True},
            "digits",
            "from_logits is true but the last layer applies softmax",
        ),
    ],
)
def test_a_loss_that_does_not_fit_the_output_is_refused(layers, loss, dataset, expected) -> None:
    found = issues(job(layers, loss, dataset))
    assert expected in found[("training", "loss")]


@pytest.mark.parametrize(
    ("layers", "loss", "dataset", "encoding", "use_logits"),
    [
        (
            [{"type": "dense", "units": 10}],
            {"type": "sparse_categorical_crossentropy", "from_logits": True},
            "digits",
            "index",
            True,
        ),
        (SOFTMAX10, "categorical_crossentropy", "digits", "one_hot", True),
        (
            [{"type": "dense", "units": 1, "activation": "sigmoid"}],
            "binary_crossentropy",
            "xor",
            "binary",
            True,
        ),
        (
            [{"type": "dense", "units": 1, "activation": "sigmoid"}],
            "mean_squared_error",
            "moons",
            "binary",
            False,
        ),
        (SOFTMAX10, "mean_squared_error", "digits", "one_hot", False),
        ([{"type": "dense", "units": 1}], "mean_absolute_error", "regression", "values", False),
    ],
)
def test_targets_are_encoded_as_the_loss_needs(layers, loss, dataset, encoding, use_logits) -> None:
    plan = plan_job(job(layers, loss, dataset), Settings())
    assert (plan.encoding, plan.use_logits) == (encoding, use_logits)


def test_limits_from_settings_are_enforced_with_the_setting_named() -> None:
    big = job(
        [{"type": "dense", "units": 5000}, *SOFTMAX10],
        "sparse_categorical_crossentropy",
        epochs=50,
        batch_size=4096,
    )
    found = issues(big, max_parameters=100_000, max_epochs=10, max_batch_size=1024)
    assert "the limit is 100,000 (EPOCHAL_MAX_PARAMETERS)" in found[("model", "layers")]
    assert "EPOCHAL_MAX_EPOCHS" in found[("training", "epochs")]
    assert "EPOCHAL_MAX_BATCH_SIZE" in found[("training", "batch_size")]


def test_dataset_options_must_apply_to_the_data_set() -> None:
    found = issues(
        job(SOFTMAX10, "sparse_categorical_crossentropy", {"name": "digits", "n_samples": 100})
    )
    assert "n_samples does not apply to the data set 'digits'" in found[("dataset", "n_samples")]


def test_input_shape_is_checked_against_the_data() -> None:
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "digits"},
            "model": {"input_shape": [8, 8, 1], "layers": SOFTMAX10},
            "training": {"loss": "sparse_categorical_crossentropy"},
        }
    )
    assert "has inputs of shape (64,), not (8, 8, 1)" in issues(spec)[("model", "input_shape")]


def test_metrics_must_suit_the_task() -> None:
    found = issues(
        job(
            [{"type": "dense", "units": 1}],
            "mean_squared_error",
            "regression",
            metrics=["accuracy", "mae"],
        )
    )
    assert found == {
        ("training", "metrics", 0): "accuracy needs a classification data set; 'regression' is not"
    }


@pytest.mark.parametrize(
    ("dataset", "layers", "loss", "where", "expected"),
    [
        (
            "moons",
            [{"type": "flatten"}, {"type": "activation", "activation": "softmax"}],
            "categorical_crossentropy",
            ("model", "layers"),
            "no trainable weights",
        ),
        (
            "wine",
            [
                {"type": "embedding", "input_dim": 10, "output_dim": 4},
                {"type": "flatten"},
                {"type": "dense", "units": 3, "activation": "softmax"},
            ],
            "sparse_categorical_crossentropy",
            ("model", "layers", 0),
            "has real-valued features",
        ),
        (
            "parity",
            [
                {"type": "embedding", "input_dim": 1, "output_dim": 4},
                {"type": "flatten"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "sparse_categorical_crossentropy",
            ("model", "layers", 0),
            "input_dim of at least 2",
        ),
        (
            "parity",
            [
                {"type": "flatten"},
                {"type": "embedding", "input_dim": 2, "output_dim": 4},
                {"type": "flatten"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "sparse_categorical_crossentropy",
            ("model", "layers", 1),
            "must be the model's first layer",
        ),
        (
            "parity",
            [
                {"type": "lstm", "units": 4, "bias_initializer": "orthogonal"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "sparse_categorical_crossentropy",
            ("model", "layers", 0),
            "orthogonal initializer needs a kernel of rank 2",
        ),
    ],
)
def test_networks_that_would_fail_at_the_first_step_are_refused(
    dataset, layers, loss, where, expected
) -> None:
    found = issues(job(layers, loss, dataset))
    assert expected in found[where]


def test_an_embedding_reads_parity_bits_as_token_ids() -> None:
    plan_job(
        job(
            [
                {"type": "embedding", "input_dim": 2, "output_dim": 4},  # (8, 1) bits → (8, 1, 4)
                {"type": "reshape", "target_shape": [8, 4]},
                {"type": "lstm", "units": 4},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "sparse_categorical_crossentropy",
            "parity",
        ),
        Settings(),
    )


@pytest.mark.parametrize("bad", [{"l2": float("inf")}, {"l1": float("nan")}])
def test_infinities_and_nan_are_refused_in_a_spec(bad: dict) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        job(
            [{"type": "dense", "units": 10, "activation": "softmax", "kernel_regularizer": bad}],
            "sparse_categorical_crossentropy",
        )
