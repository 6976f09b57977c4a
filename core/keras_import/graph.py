"""The layers of a Keras model in order: a Sequential's list, or a functional model's graph when
it is a chain (one input, one output, each layer called once on the previous layer's output)."""

from __future__ import annotations

from typing import Any

from core.errors import SpecIssue

MODELS = ("Sequential", "Functional", "Model")
Layers = list[dict[str, Any]]


class GraphError(Exception):
    def __init__(self, issue: SpecIssue):
        super().__init__(issue.msg)
        self.issue = issue


def _refuse(loc: tuple[str | int, ...], msg: str, type_: str = "keras_graph") -> GraphError:
    return GraphError(SpecIssue(loc, msg, type_))


def model_layers(model: Any) -> Layers:
    """The layer envelopes ({class_name, config, ...}) of `model`, input first."""
    if not isinstance(model, dict) or not isinstance(model.get("config"), dict):
        raise _refuse(
            ("model",),
            "expected what Keras's model.to_json() writes: an object with class_name and "
            f"config. Received: {type(model).__name__}",
            "keras_model",
        )
    kind = model.get("class_name")
    layers = model["config"].get("layers")
    if kind not in MODELS or not isinstance(layers, list) or not layers:
        raise _refuse(
            ("model", "class_name"),
            f"expected a Sequential or functional model with layers. Received: class_name={kind!r}",
            "keras_model",
        )
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
            raise _refuse(
                ("model", "layers", i), "expected a layer object with class_name and config"
            )
    return layers if kind == "Sequential" else _chain(model["config"], layers)


def _endpoints(value: Any) -> list[str]:
    """Layer names of `input_layers` / `output_layers`: ["x", 0, 0] or [["x", 0, 0], ...]."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value[0]]
    if isinstance(value, list):
        return [v[0] for v in value if isinstance(v, list) and v and isinstance(v[0], str)]
    return []


def _tensors(value: Any) -> list[str]:
    """The layer name of each Keras tensor that a call's arguments hold."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            config = value.get("config")
            history = config.get("keras_history") if isinstance(config, dict) else None
            ok = isinstance(history, list) and history and isinstance(history[0], str)
            return [history[0] if ok else "<unnamed>"]
        return [name for v in value.values() for name in _tensors(v)]
    if isinstance(value, list):
        return [name for v in value for name in _tensors(v)]
    return []


def _named(layers: Layers) -> dict[str, dict[str, Any]]:
    """The layers by name; GraphError for one without a name, or a name given twice."""
    by_name: dict[str, dict[str, Any]] = {}
    for i, layer in enumerate(layers):
        name = layer.get("name", layer["config"].get("name"))
        if not isinstance(name, str) or name in by_name:
            problem = "no name (a string)" if not isinstance(name, str) else f"{name!r} twice"
            raise _refuse(
                ("model", "layers", i), f"expected a unique layer name; received {problem}"
            )
        if not isinstance(layer.get("inbound_nodes", []), list):
            raise _refuse(("model", "layers", name, "inbound_nodes"), "expected a list of calls")
        by_name[name] = layer
    return by_name


def _call_arguments(name: str, nodes: list[Any]) -> None:
    """A call's keyword arguments other than its input (`training=True`, a `mask`) change what
    the layer computes, and a spec has no place for them: refused, never dropped. Keras records
    `training=False` on a dropout called while the model is built; a functional model's call
    overrides it with its own `training` (fit trains, predict does not), as Epochal runs every
    layer, so it changes nothing."""
    at = ("model", "layers", name, "inbound_nodes")
    for node in nodes:
        if not isinstance(node, dict):
            raise _refuse(
                at, f"expected a call ({{args, kwargs}}). Received: {type(node).__name__}"
            )
        kwargs = node.get("kwargs")
        if not isinstance(kwargs, dict | None):
            raise _refuse(
                at, f"expected the call's kwargs as an object. Received: {type(kwargs).__name__}"
            )
        given = {
            k: v
            for k, v in (kwargs or {}).items()
            if v is not None and not _tensors(v) and (k, v) != ("training", False)
        }
        if given:
            raise _refuse(
                at,
                f"layer {name!r} is called with arguments a spec cannot hold; call it on its "
                f"input alone. Received: {given}",
            )


def _chain(config: dict[str, Any], layers: Layers) -> Layers:
    """The functional model's layers when its graph is a chain; GraphError naming where it
    branches otherwise."""
    inputs, outputs = (
        _endpoints(config.get("input_layers")),
        _endpoints(config.get("output_layers")),
    )
    if len(inputs) != 1 or len(outputs) != 1:
        raise _refuse(
            ("model", "config", "input_layers" if len(inputs) != 1 else "output_layers"),
            "expected a model with one input and one output (a chain of layers). "
            f"Received: inputs={inputs}, outputs={outputs}",
        )
    by_name = _named(layers)
    if inputs[0] not in by_name or outputs[0] not in by_name:
        raise _refuse(
            ("model", "config"),
            f"expected input_layers and output_layers to name layers of the model. "
            f"Received: inputs={inputs}, outputs={outputs}",
        )
    consumers: dict[str, list[str]] = {name: [] for name in by_name}
    for name, layer in by_name.items():
        nodes = layer.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise _refuse(
                ("model", "layers", name),
                f"layer {name!r} is called {len(nodes)} times (shared weights): Epochal "
                "networks are chains of layers, each called once",
            )
        _call_arguments(name, nodes)
        sources = _tensors(nodes)
        if len(sources) > 1:
            raise _refuse(
                ("model", "layers", name),
                f"the graph branches: layer {name!r} ({layer.get('class_name')}) takes "
                f"{len(sources)} inputs ({', '.join(map(str, sources))}); Epochal networks "
                "are chains of layers (Sequential, or a functional model without branches)",
            )
        if sources and sources[0] not in by_name:
            raise _refuse(
                ("model", "layers", name, "inbound_nodes"),
                f"layer {name!r} is called on {sources[0]!r}, which is no layer of the model",
            )
        for source in sources:
            consumers[source].append(name)
    chain, name, seen = [], inputs[0], set()
    while True:
        if name in seen:  # each layer has one source at most: a cycle runs through the input
            raise _refuse(
                ("model", "layers", name),
                f"the graph has a cycle at layer {name!r}: its output comes back to it; "
                "Epochal networks are chains of layers",
            )
        seen.add(name)
        chain.append(by_name[name])
        following = consumers.get(name, [])
        if len(following) > 1:
            raise _refuse(
                ("model", "layers", name),
                f"the graph branches: the output of layer {name!r} feeds "
                f"{len(following)} layers ({', '.join(following)}); Epochal networks are "
                "chains of layers (Sequential, or a functional model without branches)",
            )
        if not following:
            break
        name = following[0]
    if by_name[inputs[0]].get("inbound_nodes"):
        raise _refuse(
            ("model", "layers", inputs[0], "inbound_nodes"),
            f"the input layer {inputs[0]!r} is called on a layer's output; an input takes none",
        )
    if name != outputs[0] or len(chain) != len(layers):
        unused = sorted(set(by_name) - {c.get("name") for c in chain})
        raise _refuse(
            ("model", "config", "output_layers"),
            f"expected one chain of layers from input {inputs[0]!r} to output {outputs[0]!r}. "
            f"Received: the chain ends at {name!r}; not on it: {unused}",
        )
    return chain
