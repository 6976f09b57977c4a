"""Layer specs: one frozen model per Keras layer, joined in a union discriminated on `type`.

To add a layer: a class here (listed in `LAYER_SPECS`) and its builder in `core/nn/layers.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field

from core.nn.activations import ACTIVATIONS
from core.nn.initializers import INITIALIZERS
from core.spec.base import Spec, normalize_type

ActivationName = Annotated[str, AfterValidator(ACTIVATIONS.canonical)]
InitializerName = Annotated[str, AfterValidator(INITIALIZERS.canonical)]


class BaseLayer(Spec):
    name: str | None = Field(
        None, max_length=100, description="optional label shown in the summary"
    )


class Dense(BaseLayer):
    type: Literal["dense"]
    units: int = Field(gt=0, description="number of output units")
    activation: ActivationName = "linear"
    use_bias: bool = True
    kernel_initializer: InitializerName = "glorot_uniform"
    bias_initializer: InitializerName = "zeros"


class Dropout(BaseLayer):
    type: Literal["dropout"]
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of the inputs to drop")


class Flatten(BaseLayer):
    type: Literal["flatten"]


class Activation(BaseLayer):
    type: Literal["activation"]
    activation: ActivationName


LAYER_SPECS: tuple[type[BaseLayer], ...] = (Dense, Dropout, Flatten, Activation)
LAYER_TYPES: list[str] = [cls.model_fields["type"].annotation.__args__[0] for cls in LAYER_SPECS]


def _normalize_layer(value: Any) -> Any:
    return normalize_type(value, LAYER_TYPES)


LayerSpec = Annotated[
    Union[LAYER_SPECS],  # noqa: UP007 - a runtime tuple of classes
    Field(discriminator="type"),
    BeforeValidator(_normalize_layer),
]
