"""Layer wrappers: bidirectional (around a recurrent layer) and time_distributed (around any).

`TimeDistributed.layer` refers to the union of every layer spec, which is defined from this
module's classes too: `core/spec/layers/__init__.py` resolves it once the union exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from core.spec.layers.base import BaseLayer
from core.spec.layers.recurrent import RecurrentSpec

if TYPE_CHECKING:
    from core.spec.layers import LayerSpec


class Bidirectional(BaseLayer):
    """Keras's `Bidirectional`: the layer, and a copy of it that reads the sequence backwards
    (weights of its own), their outputs merged. With return_sequences, the backward copy's
    output is reversed back first, so step t of both directions is merged."""

    type: Literal["bidirectional"]
    layer: RecurrentSpec
    merge_mode: Literal["concat", "sum", "mul", "ave"] = Field(
        "concat", description="how the two directions' outputs are combined"
    )

    @field_validator("layer")
    @classmethod
    def _reads_forwards(cls, layer: BaseLayer) -> BaseLayer:
        if getattr(layer, "go_backwards", False):
            raise ValueError(
                "expected a layer with go_backwards false: bidirectional makes the backward "
                "copy itself. Received: go_backwards=True"
            )
        return layer


class TimeDistributed(BaseLayer):
    """Keras's `TimeDistributed`: applies `layer` (one set of weights) to every step of an input
    (steps, *shape), giving (steps, *the layer's output shape)."""

    type: Literal["time_distributed"]
    layer: LayerSpec


SPECS = (Bidirectional, TimeDistributed)
