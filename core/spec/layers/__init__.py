"""Layer specs: one frozen model per Keras layer, joined in a union discriminated on `type`.

Each family module (`core.py`, …) lists its classes in `SPECS`; its builders live in the
module of the same name under `core/nn/layers/`. To add a family, add it to `FAMILIES`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from core.spec.base import tagged_union, type_names
from core.spec.layers import (
    augmentation,
    conv,
    core,
    embedding,
    normalization,
    pooling,
    recurrent,
    regularization,
    reshaping,
    wrappers,
)
from core.spec.layers.base import BaseLayer

FAMILIES = (
    core,
    conv,
    pooling,
    normalization,
    reshaping,
    regularization,
    augmentation,
    embedding,
    recurrent,
    wrappers,
)

LAYER_SPECS: tuple[type[BaseLayer], ...] = tuple(cls for family in FAMILIES for cls in family.SPECS)
LAYER_TYPES: list[str] = type_names(LAYER_SPECS)


def _input_layer(value: Any) -> Any:
    """Keras's `Input(shape)` is the layer `InputLayer` in `model.to_json()`: both are `input`."""
    if isinstance(value, dict) and value.get("type") == "InputLayer":
        return {**value, "type": "input"}
    return value


LayerSpec = Annotated[tagged_union(LAYER_SPECS), BeforeValidator(_input_layer)]

# Wrappers nest a `LayerSpec` (time_distributed's `layer`): resolve that reference now that the
# union exists. A no-op for the specs that nest none.
for _spec in LAYER_SPECS:
    _spec.model_rebuild()
