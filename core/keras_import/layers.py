"""One Keras layer envelope as an Epochal layer: `class_name` becomes `type` (the layer specs
take Keras's class spelling themselves), the config's arguments are passed on as they are, and
only Keras's bookkeeping whose value changes nothing is dropped. Anything else, whatever Epochal
makes of it, reaches the spec, which accepts it with Keras's meaning or refuses it by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Keras's class names that are not the squashed spelling of an Epochal type.
TYPES = {"InputLayer": "input"}

# Envelope keys of a serialized layer: what it is, where its class lives, how it was built and
# called (the graph, which core/keras_import/graph.py reads). None of them is an argument.
ENVELOPE = ("module", "class_name", "config", "registered_name", "build_config", "name")
GRAPH = ("inbound_nodes",)
WRAPPED = ("layer", "backward_layer")  # layer envelopes inside a wrapper's config


def _float32(value: Any) -> bool:
    """Keras's default dtype, as a name or a serialized DTypePolicy."""
    if isinstance(value, dict):
        config = value.get("config")
        return (
            value.get("class_name") == "DTypePolicy"
            and isinstance(config, dict)
            and _float32(config.get("name"))
        )
    return value in (None, "float32")


# Config keys dropped when their value is Keras's default (a value that changes nothing here).
BOOKKEEPING: dict[str, Callable[[Any], bool]] = {
    "trainable": lambda v: v is True,
    "dtype": _float32,
    "autocast": lambda v: v is True,
    "quantization_config": lambda v: v is None,
    "lora_rank": lambda v: v is None,
    "lora_alpha": lambda v: v is None,
    "sparse": lambda v: v is False,  # InputLayer
    "ragged": lambda v: v is False,  # InputLayer
    "optional": lambda v: v is False,  # InputLayer
}


def _kept(key: str, value: Any) -> bool:
    drop = BOOKKEEPING.get(key)
    return drop is None or not drop(value)


def epochal_layer(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Epochal layer that a Keras layer envelope describes (nested layers of wrappers too)."""
    class_name = envelope.get("class_name")
    kind = TYPES.get(class_name, class_name) if isinstance(class_name, str) else class_name
    layer: dict[str, Any] = {"type": kind}
    extra = {k: v for k, v in envelope.items() if k not in ENVELOPE + GRAPH}
    registered = envelope.get("registered_name")
    if registered not in (None, class_name):  # a custom layer registered under another name
        extra["registered_name"] = registered
    config = envelope.get("config", {})
    if not isinstance(config, dict):  # passed on, to be refused where it is
        return {**layer, "config": config, **extra}
    for key, value in config.items():
        if not _kept(key, value):
            continue
        if key in WRAPPED and isinstance(value, dict) and "class_name" in value:
            value = epochal_layer(value)
        layer[key] = value
    if _mirrors(layer.get("layer"), layer.get("backward_layer")):
        del layer["backward_layer"]
    return {**layer, **extra}


def _mirrors(forward: Any, backward: Any) -> bool:
    """Whether Bidirectional's `backward_layer` is what Keras writes when none was given: the
    forward layer reading backwards, under another name. Any other backward layer is passed on."""
    if not isinstance(forward, dict) or not isinstance(backward, dict):
        return False
    if backward.get("go_backwards", False) == forward.get("go_backwards", False):
        return False
    ignored = ("name", "go_backwards")
    return {k: v for k, v in backward.items() if k not in ignored} == {
        k: v for k, v in forward.items() if k not in ignored
    }
