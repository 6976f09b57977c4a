"""Layer wrappers: bidirectional (around a recurrent layer) and time_distributed (around any).

`TimeDistributed.layer` refers to the union of every layer spec, which is defined from this
module's classes too: `core/spec/layers/__init__.py` resolves it once the union exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.spec.layers.base import BaseLayer
from core.spec.layers.keras_args import InitialWeights, only
from core.spec.layers.recurrent import RecurrentSpec

if TYPE_CHECKING:
    from core.spec.layers import LayerSpec


class Bidirectional(BaseLayer):
    """Keras's `Bidirectional`: the layer, and a copy of it that reads the sequence backwards
    (weights of its own), their outputs merged. With return_sequences, the backward copy's
    output is reversed back first, so step t of both directions is merged. `backward_layer`
    (Keras's, with go_backwards true) replaces that copy: another recurrent layer, or the same
    with other options."""

    type: Literal["bidirectional"]
    layer: RecurrentSpec
    merge_mode: Annotated[
        Literal["concat", "sum", "mul", "ave"] | None,
        only(
            "concat",
            "sum",
            "mul",
            "ave",
            why="null returns the two outputs apart, and a sequential network passes one tensor",
        ),
    ] = Field("concat", description="how the two directions' outputs are combined")
    backward_layer: RecurrentSpec | None = None
    weights: InitialWeights = None

    @field_validator("layer")
    @classmethod
    def _reads_forwards(cls, layer: BaseLayer) -> BaseLayer:
        if getattr(layer, "go_backwards", False):
            raise ValueError(
                "expected a layer with go_backwards false: bidirectional makes the backward "
                "copy itself. Received: go_backwards=True"
            )
        return layer

    @model_validator(mode="after")
    def _backward_layer(self) -> Bidirectional:
        back = self.backward_layer
        if back is None:
            return self
        if not back.go_backwards:
            raise ValueError(
                "expected backward_layer with go_backwards true: it reads the sequence "
                "backwards (as Keras requires). Received: go_backwards=False"
            )
        if back.return_sequences != self.layer.return_sequences:
            raise ValueError(
                "expected backward_layer's return_sequences equal to layer's (as Keras "
                f"requires). Received: {back.return_sequences} and {self.layer.return_sequences}"
            )
        return self


class TimeDistributed(BaseLayer):
    """Keras's `TimeDistributed`: applies `layer` (one set of weights) to every step of an input
    (steps, *shape), giving (steps, *the layer's output shape)."""

    type: Literal["time_distributed"]
    layer: LayerSpec

    @field_validator("layer")
    @classmethod
    def _not_an_input(cls, layer: BaseLayer) -> BaseLayer:
        if getattr(layer, "type", None) == "input":
            raise ValueError("expected a layer, not an input: an input layer comes first")
        if getattr(layer, "activity_regularizer", None) is not None:
            raise ValueError(
                "the wrapped layer's activity_regularizer is not offered: Keras 3 never applies "
                "it (TimeDistributed runs the layer's call, which skips the penalty); put an "
                "activity_regularization layer after the time_distributed layer instead"
            )
        return layer


SPECS = (Bidirectional, TimeDistributed)
