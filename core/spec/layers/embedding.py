"""The embedding layer: integer token ids → dense vectors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from core.spec.layers.base import BaseLayer, InitializerName, KerasShape
from core.spec.layers.keras_args import NO_MASKS, InitialWeights, LoraRank, Quantization, only
from core.spec.regularizers import L1L2, ConstraintSpec


class Embedding(BaseLayer):
    """Input ids of any shape (e.g. (steps,)) → (steps, output_dim). Ids are in [0, input_dim).

    The default initializer is Keras's "uniform", i.e. RandomUniform(-0.05, 0.05).
    """

    type: Literal["embedding"]
    input_dim: PositiveInt
    output_dim: PositiveInt
    embeddings_initializer: InitializerName = "random_uniform"
    embeddings_regularizer: L1L2 | None = None
    embeddings_constraint: ConstraintSpec | None = None
    mask_zero: Annotated[bool, only(False, why=NO_MASKS)] = False
    input_length: PositiveInt | None = Field(
        None, description="Keras 2's: the number of ids per sample, checked against the input"
    )
    weights: InitialWeights = None
    lora_rank: LoraRank = None
    lora_alpha: float | None = Field(None, description="used with lora_rank only")
    quantization_config: Quantization = None

    def expected_input(self) -> tuple[str, KerasShape] | None:
        """`input_dim` is the vocabulary's size here, not Keras's layer-wide input_dim."""
        return None if self.input_shape is None else ("input_shape", self.input_shape)


SPECS = (Embedding,)
