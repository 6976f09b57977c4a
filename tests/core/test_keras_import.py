"""The Keras import (core/keras_import) on hand-written Keras JSON: what it passes on, what it
drops, and where each refusal points (the real Keras round trip is tests/core/test_keras_round_trip.py)."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import SpecError
from core.keras_import import from_keras
from core.keras_import.graph import GraphError, model_layers
from core.keras_import.layers import epochal_layer
from core.keras_import.training import training_of

POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}
COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}


def layer(class_name: str, name: str, **config: Any) -> dict[str, Any]:
    """A layer as Keras 3 serializes it, bookkeeping included."""
    return {
        "module": "keras.layers",
        "class_name": class_name,
        "config": {"name": name, "trainable": True, "dtype": POLICY, **config},
        "registered_name": None,
        "build_config": {"input_shape": [None, 64]},
    }


def sequential(*layers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    config = {"name": "sequential", "trainable": True, "dtype": POLICY, "layers": list(layers)}
    return {"module": "keras", "class_name": "Sequential", "config": config, **extra}


def node(*sources: str) -> list[dict[str, Any]]:
    tensors = [
        {"class_name": "__keras_tensor__", "config": {"keras_history": [s, 0, 0]}} for s in sources
    ]
    return [{"args": tensors if len(tensors) == 1 else [tensors], "kwargs": {}}]


def functional(layers: list[dict[str, Any]], inputs: Any, outputs: Any) -> dict[str, Any]:
    config = {"name": "f", "layers": layers, "input_layers": inputs, "output_layers": outputs}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": config}


def called(envelope: dict[str, Any], *sources: str) -> dict[str, Any]:
    return {**envelope, "name": envelope["config"]["name"], "inbound_nodes": node(*sources)}


def refusal(model: Any, **kwargs: Any) -> list[tuple[list[Any], str]]:
    kwargs.setdefault("dataset", "digits")
    kwargs.setdefault("compile", COMPILE)
    with pytest.raises(SpecError) as e:
        from_keras(model, **kwargs)
    return [(list(i.loc), i.msg) for i in e.value.issues]


def test_a_sequential_model_becomes_its_spec_without_keras_bookkeeping():
    model = sequential(
        layer("Dense", "hidden", units=32, activation="relu", quantization_config=None),
        layer("Dropout", "drop", rate=0.2),
        layer("Dense", "out", units=10, activation="softmax"),
    )
    fit = {"batch_size": 16, "epochs": 3, "validation_split": 0.2, "shuffle": False, "verbose": 2}
    spec = from_keras(model, compile=COMPILE, fit=fit, dataset="digits").spec
    assert [(x.type, x.name) for x in spec.model.layers] == [
        ("dense", "hidden"),
        ("dropout", "drop"),
        ("dense", "out"),
    ]
    assert spec.model.layers[0].units == 32 and spec.model.layers[2].activation == "softmax"
    assert (spec.training.batch_size, spec.training.epochs, spec.training.shuffle) == (16, 3, False)
    assert spec.training.metrics == ["accuracy"]
    assert spec.dataset.validation_split == 0.2
    assert spec.name == "sequential"


def test_the_compile_config_inside_the_model_json_is_used_when_none_is_given():
    compiled = {**COMPILE, "loss": "mean_squared_error"}
    model = sequential(layer("Dense", "out", units=10), compile_config=compiled)
    assert from_keras(model, dataset="digits").spec.training.loss.type == "mean_squared_error"


def test_names_and_dtypes_inside_serialized_compile_objects_are_labels_and_dropped():
    schedule = {
        "class_name": "ExponentialDecay",
        "config": {"name": "ExponentialDecay", "decay_steps": 10},
    }
    adam = {"class_name": "Adam", "config": {"name": "adam", "learning_rate": schedule}}
    metric = {"class_name": "MeanAbsoluteError", "config": {"name": "mae", "dtype": "float32"}}
    compiled = {
        "optimizer": adam,
        "metrics": [metric],
        "jit_compile": "auto",
        "steps_per_execution": 1,
    }
    training, _, origins, refusals = training_of(compiled, {})
    assert refusals == []
    assert training == {
        "optimizer": {"class_name": "Adam", "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {"decay_steps": 10}}}},
        "metrics": [{"class_name": "MeanAbsoluteError", "config": {}}],
    }  # fmt: skip
    assert origins[("training", "optimizer")] == ("compile", "optimizer")


def test_an_input_layer_becomes_the_input_type_with_its_batch_shape_as_is():
    envelope = {
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 8, 8, 1], "dtype": "float32", "sparse": False,
                   "ragged": False, "name": "pixels", "optional": False},
        "registered_name": None,
    }  # fmt: skip
    assert epochal_layer(envelope) == {"type": "input", "batch_shape": [None, 8, 8, 1],
                                       "name": "pixels"}  # fmt: skip


def test_bookkeeping_with_a_value_that_changes_something_is_passed_on():
    """trainable false, say, reaches the layer spec (which freezes the layer, or refuses it):
    only the values that change nothing are dropped."""
    envelope = layer("Dense", "frozen", units=10, trainable=False, autocast=True, dtype="float16")
    assert epochal_layer(envelope) == {
        "type": "Dense", "name": "frozen", "units": 10, "trainable": False, "dtype": "float16",
    }  # fmt: skip
    [(loc, _)] = refusal(sequential(layer("Dense", "mixed", units=10, autocast=False)))
    assert loc == ["model", "layers", "mixed", "autocast"]  # refused, by its spec


def test_an_argument_epochal_refuses_is_located_at_the_keras_layer_and_argument():
    gru = layer("GRU", "encoder", units=4, reset_after=False)
    [(loc, msg)] = refusal(sequential(layer("Dense", "d", units=3), gru))
    assert loc == ["model", "layers", "encoder", "reset_after"]
    assert "reset_after" in msg


def test_every_issue_is_listed_each_at_its_own_layer():
    model = sequential(layer("Dense", "a", units=0), layer("Dropout", "b", rate=2.0))
    locs = [loc for loc, _ in refusal(model)]
    assert locs == [["model", "layers", "a", "units"], ["model", "layers", "b", "rate"]]


def test_an_unknown_layer_is_refused_by_its_keras_name():
    [(loc, msg)] = refusal(
        sequential(layer("Dense", "d", units=3), layer("MultiHeadAttention", "mha"))
    )
    assert loc == ["model", "layers", "mha"]
    assert "'MultiHeadAttention'" in msg and "expected one of" in msg


def test_a_layer_nested_in_a_wrapper_is_located_inside_it():
    inner = layer("Dense", "inner", units=-1)
    [(loc, _)] = refusal(sequential(layer("TimeDistributed", "td", layer=inner)))
    assert loc == ["model", "layers", "td", "layer", "units"]


def test_bidirectionals_backward_layer_is_dropped_only_when_it_mirrors_the_forward_one():
    forward = layer("LSTM", "forward_lstm", units=4, go_backwards=False)
    backward = layer("LSTM", "backward_lstm", units=4, go_backwards=True)
    wrapped = layer(
        "Bidirectional", "bi", layer=forward, backward_layer=backward, merge_mode="concat"
    )
    assert "backward_layer" not in epochal_layer(wrapped)
    other = layer("GRU", "backward_gru", units=4, go_backwards=True)
    wrapped = layer("Bidirectional", "bi", layer=forward, backward_layer=other)
    # passed on, its envelope taken off as the forward layer's is
    assert epochal_layer(wrapped)["backward_layer"] == {
        "type": "GRU", "name": "backward_gru", "units": 4, "go_backwards": True,
    }  # fmt: skip


def test_compile_and_fit_arguments_epochal_lacks_are_refused_where_they_were_given():
    fit = {"epochs": 0, "class_weight": {"0": 2.0}, "initial_epoch": 0}
    issues = refusal(
        sequential(layer("Dense", "d", units=10)), compile={**COMPILE, "jit_compile": True}, fit=fit
    )  # with the spec's own refusals (epochs), each listed once
    assert [loc for loc, _ in issues] == [
        ["fit", "epochs"],
        ["compile", "jit_compile"],
        ["fit", "class_weight"],
    ]


def test_an_argument_of_another_call_or_a_misspelled_one_is_refused_where_it_was_given():
    """`fit`'s `loss` is not taken as compile's, nor `compile`'s `epoch` as anything."""
    issues = refusal(
        sequential(layer("Dense", "d", units=10)),
        compile={**COMPILE, "epoch": 3},
        fit={"loss": "mse", "epochs": 2},
    )
    assert [loc for loc, _ in issues] == [["compile", "epoch"], ["fit", "loss"]]
    assert all("no argument of Keras's" in msg for _, msg in issues), issues


def test_a_missing_loss_is_asked_for_in_compile():
    [(loc, msg)] = refusal(sequential(layer("Dense", "d", units=10)), compile={"optimizer": "sgd"})
    assert (loc, msg) == (["compile", "loss"], "field required")


def test_a_bad_fit_value_is_located_in_fit():
    issues = refusal(
        sequential(layer("Dense", "d", units=10)), fit={"epochs": 0, "validation_split": 1.5}
    )
    assert sorted(loc for loc, _ in issues) == [["fit", "epochs"], ["fit", "validation_split"]]


def test_a_validation_split_given_twice_differently_is_refused():
    dataset = {"name": "digits", "validation_split": 0.1}
    [(loc, _)] = refusal(
        sequential(layer("Dense", "d", units=10)), fit={"validation_split": 0.2}, dataset=dataset
    )
    assert loc == ["fit", "validation_split"]


@pytest.mark.parametrize("model", [None, [], {"class_name": "Dense", "config": {}}, sequential()])
def test_what_is_not_a_keras_model_is_refused_at_model(model):
    [(loc, _)] = refusal(model)
    assert loc[0] == "model"


def input_layer(name: str = "x") -> dict[str, Any]:
    envelope = {"class_name": "InputLayer", "config": {"batch_shape": [None, 8], "name": name}}
    return {**envelope, "name": name, "inbound_nodes": []}


def test_a_functional_chain_is_read_in_order():
    layers = [
        input_layer(),
        called(layer("Dense", "a", units=4), "x"),
        called(layer("Dense", "b", units=2), "a"),
    ]
    chain = model_layers(functional(layers, ["x", 0, 0], [["b", 0, 0]]))
    assert [c["name"] for c in chain] == ["x", "a", "b"]


def test_a_layer_with_two_inputs_is_a_branching_graph():
    layers = [
        input_layer(),
        called(layer("Dense", "a", units=4), "x"),
        called(layer("Dense", "b", units=4), "x"),
    ]
    with pytest.raises(GraphError, match="branches: the output of layer 'x' feeds 2 layers"):
        model_layers(functional(layers, ["x", 0, 0], ["b", 0, 0]))
    layers[2] = called(layer("Dense", "b", units=4), "a")  # x → a → b, and add(a, b)
    layers.append(called(layer("Add", "add"), "a", "b"))
    [(loc, msg)] = refusal(functional(layers, ["x", 0, 0], ["add", 0, 0]))
    assert loc == ["model", "layers", "add"]
    assert "the graph branches: layer 'add' (Add) takes 2 inputs" in msg


def test_a_shared_layer_and_a_model_with_two_inputs_are_refused():
    shared = called(layer("Dense", "a", units=8), "x")
    shared["inbound_nodes"] += node("a")
    [(loc, msg)] = refusal(functional([input_layer(), shared], ["x", 0, 0], ["a", 0, 0]))
    assert loc == ["model", "layers", "a"] and "called 2 times" in msg
    two = [input_layer("x"), input_layer("y")]
    [(loc, msg)] = refusal(functional(two, [["x", 0, 0], ["y", 0, 0]], ["x", 0, 0]))
    assert loc == ["model", "config", "input_layers"] and "one input and one output" in msg


def test_a_call_argument_such_as_training_is_refused_not_dropped():
    dropout = called(layer("Dropout", "always", rate=0.5), "x")
    dropout["inbound_nodes"][0]["kwargs"] = {"training": True, "mask": None}
    [(loc, msg)] = refusal(functional([input_layer(), dropout], ["x", 0, 0], ["always", 0, 0]))
    assert loc == ["model", "layers", "always", "inbound_nodes"]
    assert "{'training': True}" in msg


def test_a_cycle_through_the_input_is_refused_at_the_layer_where_it_closes():
    """ "x" consumes "d" and "d" consumes "x": each layer has one source and one consumer, and a
    walk along the chain would never end."""
    layers = [called(input_layer(), "d"), called(layer("Dense", "d", units=3), "x")]
    [(loc, msg)] = refusal(functional(layers, ["x", 0, 0], ["d", 0, 0]))
    assert loc == ["model", "layers", "x"]
    assert msg.startswith("the graph has a cycle at layer 'x'")


def test_an_input_layer_called_on_another_layer_is_refused_at_its_calls():
    layers = [
        called(input_layer(), "stray"),
        called(layer("Dense", "d", units=3), "x"),
        {**layer("Dense", "stray", units=3), "name": "stray", "inbound_nodes": []},
    ]
    [(loc, msg)] = refusal(functional(layers, ["x", 0, 0], ["d", 0, 0]))
    assert loc == ["model", "layers", "x", "inbound_nodes"]
    assert "the input layer 'x' is called on a layer's output" in msg


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([{"args": [], "kwargs": [1]}], "expected the call's kwargs as an object. Received: list"),
        (["x"], "expected a call ({args, kwargs}). Received: str"),
        (node("nowhere"), "layer 'd' is called on 'nowhere', which is no layer of the model"),
    ],
)
def test_a_malformed_call_record_is_refused_at_the_calls(calls, expected):
    dense = {**layer("Dense", "d", units=3), "name": "d", "inbound_nodes": calls}
    [(loc, msg)] = refusal(functional([input_layer(), dense], ["x", 0, 0], ["d", 0, 0]))
    assert (loc, msg) == (["model", "layers", "d", "inbound_nodes"], expected)


KERAS_ONLY = [
    ("compile", "loss_weights", [0.5], "one output"),
    ("compile", "weighted_metrics", ["accuracy"], "no class or sample weights"),
    ("compile", "steps_per_execution", 8, "one step per batch"),
    ("compile", "jit_compile", True, "does not compile the network"),
    ("compile", "auto_scale_loss", False, "does not scale the loss"),
    ("fit", "x", [[0.0]], "the data come from `dataset`"),
    ("fit", "validation_data", [[[0.0]], [0]], "the data come from `dataset`"),
    ("fit", "class_weight", {"0": 2.0}, "no class or sample weights"),
    ("fit", "sample_weight", [1.0], "no class or sample weights"),
    ("fit", "initial_epoch", 2, "clone it with init_from"),
    ("fit", "steps_per_epoch", 10, "one pass over the training split"),
    ("fit", "validation_steps", 3, "one pass over the validation split"),
    ("fit", "validation_batch_size", 64, "batches of `batch_size`"),
    ("fit", "validation_freq", 2, "validates after every epoch"),
    ("fit", "shuffle", "batch", "shuffles the samples (true) or not (false)"),
]


@pytest.mark.parametrize(("call", "argument", "value", "why"), KERAS_ONLY)
def test_a_keras_argument_epochal_lacks_is_refused_saying_why(call, argument, value, why):
    """Keras's own compile and fit arguments are not spelling mistakes: each refusal says why."""
    args = {"compile": dict(COMPILE), "fit": {"epochs": 2}}
    args[call][argument] = value
    [(loc, msg)] = refusal(sequential(layer("Dense", "d", units=10)), **args)
    assert loc == [call, argument]
    assert why in msg and "check its spelling" not in msg


def test_keras_arguments_at_the_values_that_change_nothing_are_dropped():
    compiled = {**COMPILE, "loss_weights": None, "run_eagerly": True, "jit_compile": "auto"}
    fit = {"initial_epoch": 0, "validation_freq": 1, "batch_size": None, "callbacks": None}
    fit |= {"class_weight": None, "steps_per_epoch": None, "verbose": "auto", "shuffle": False}
    spec = from_keras(sequential(layer("Dense", "d", units=10)), dataset="digits",
                      compile=compiled, fit=fit).spec  # fmt: skip
    assert (spec.training.batch_size, spec.training.shuffle) == (32, False)


@pytest.mark.parametrize(
    "nothing",
    [
        {"metrics": None},
        {"weighted_metrics": None, "loss_weights": None},
        {"weighted_metrics": [], "loss_weights": []},
        {"weighted_metrics": {}, "loss_weights": {}},
    ],
)
def test_compile_arguments_null_or_empty_mean_none(nothing):
    compiled = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", **nothing}
    spec = from_keras(sequential(layer("Dense", "d", units=10)), dataset="digits",
                      compile=compiled).spec  # fmt: skip
    assert spec.training.metrics == []


def test_a_loss_epochal_lacks_is_one_refusal_not_one_per_argument():
    focal = {"class_name": "BinaryFocalCrossentropy", "config": {"alpha": 0.25, "gamma": 2.0}}
    [(loc, msg)] = refusal(
        sequential(layer("Dense", "d", units=1)), compile={**COMPILE, "loss": focal}
    )
    assert loc == ["compile", "loss", "type"]
    assert msg.startswith("unknown loss 'BinaryFocalCrossentropy'; expected one of")
