"""Builder of the embedding layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.nn.layers.base import LAYERS, Built, LayerShapeError, Shape
from core.spec.layers import embedding as L


class Embedding(nn.Module):
    """Looks up the vector of each token id; ids arrive as floats (the data's dtype) and are
    cast to integers here.

    The table is stored outputs first, (output_dim, input_dim), like every kernel here (a
    PyTorch Linear weight is (out, in)), so Keras's fans (fan_in = input_dim) and its default
    constraint axis (0, across the tokens) come out as Keras computes them for its
    (input_dim, output_dim) table.
    """

    def __init__(self, input_dim: int, output_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(output_dim, input_dim).uniform_(-0.05, 0.05))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x.long(), self.weight.t())

    def extra_repr(self) -> str:
        output_dim, input_dim = self.weight.shape
        return f"input_dim={input_dim}, output_dim={output_dim}"


@LAYERS.register("embedding")
def embedding(spec: L.Embedding, shape: Shape) -> Built:
    layer = Embedding(spec.input_dim, spec.output_dim)
    if spec.input_length is not None and shape != (spec.input_length,):
        raise LayerShapeError(
            f"has input_length {spec.input_length} but its input has shape {shape}",
            "input_length",
        )
    built = Built(layer, (*shape, spec.output_dim))
    built.initializers.append((layer.weight, spec.embeddings_initializer))
    if spec.embeddings_regularizer is not None:
        built.penalties.append((layer.weight, spec.embeddings_regularizer))
    if spec.embeddings_constraint is not None:
        built.constraints.append((layer.weight, spec.embeddings_constraint))
    return built
