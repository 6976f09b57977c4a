"""Keras layer arguments that Epochal accepts at some values only, each refused otherwise with
the reason, so that a Keras model's config (`model.to_json()`) passes through as written.

`only(*allowed, why=...)` makes the validator: the message names the argument, what is
expected, why, and what was received (Keras's style: "Received: data_format='channels_first'").
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, PositiveInt, ValidationInfo


def only(*allowed: Any, why: str) -> AfterValidator:
    """Accept `allowed` values only; refuse any other, saying `why`."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if value not in allowed:
            expected = " or ".join("null" if a is None else repr(a) for a in allowed)
            raise ValueError(
                f"expected {info.field_name} {expected}: {why}. "
                f"Received: {info.field_name}={value!r}"
            )
        return value

    return AfterValidator(check)


CHANNELS_LAST = (
    "Epochal's tensors are channels-last, as Keras's default: an image is (height, width, "
    "channels) and a sequence (steps, features)"
)
DataFormat = Annotated[str | None, only("channels_last", None, why=CHANNELS_LAST)]

# A layer's own seed. Keras draws a layer's randomness from a generator of its own when seeded;
# Epochal seeds the whole job (training.seed, drawn at submission when absent), which fixes
# every layer's draws, so a run is reproducible either way. The value is kept, not used.
Seed = int | None

PRECISION = (
    "Epochal computes in float32 and sets lower precision for the whole run with "
    'training.precision ("bf16" or "fp16")'
)
DType = Annotated[str | None, only("float32", None, why=PRECISION)]

FROM_SCRATCH = "a job trains a new network from its initializers; there are no weights to adapt"
LoraRank = Annotated[
    PositiveInt | None, only(None, why=f"LoRA adapts pretrained weights, and {FROM_SCRATCH}")
]
Quantization = Annotated[
    dict | str | None, only(None, why="Epochal trains in floating point only; no quantization")
]
InitialWeights = Annotated[
    list | None, only(None, why=f"{FROM_SCRATCH}: set the layer's initializers instead")
]

NO_MASKS = "Epochal's layers pass no masks, so the layers that follow would treat padding as data"
