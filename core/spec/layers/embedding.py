"""The embedding layer: integer token ids → dense vectors."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from core.spec.layers.base import BaseLayer, InitializerName
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
    activity_regularizer: L1L2 | None = None


SPECS = (Embedding,)
