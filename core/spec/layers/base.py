"""What every layer spec shares, and the weight options (Keras's names) of layers with weights."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PositiveInt

from core.nn.activations import ACTIVATIONS
from core.spec.base import Spec
from core.spec.initializers import InitializerSpec
from core.spec.layers.keras_args import DType, only
from core.spec.regularizers import L1L2, ConstraintSpec

ActivationName = Annotated[str, AfterValidator(ACTIVATIONS.canonical)]
InitializerName = InitializerSpec  # a Keras name, or an object with its arguments


# A shape as Keras writes one, batch axis excluded; null: any size (e.g. a sequence's steps).
KerasShape = tuple[PositiveInt | None, ...]


def _dtype_policy(value: Any) -> Any:
    """Keras's serialized policy `{"class_name": "DTypePolicy", "config": {"name": "float32"}}`
    → its name."""
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        return value["config"].get("name", value)
    return value


class BaseLayer(Spec):
    """Keras's arguments of every layer (`keras.layers.Layer`)."""

    name: str | None = Field(
        None, max_length=100, description="optional label shown in the summary"
    )
    trainable: bool = Field(
        True, description="false: the weights keep their initial values (Keras's freezing)"
    )
    dtype: Annotated[DType, BeforeValidator(_dtype_policy)] = None
    autocast: Annotated[
        bool,
        only(True, why="training.precision sets mixed precision for every layer of the run"),
    ] = True
    activity_regularizer: L1L2 | None = Field(
        None, description="a penalty on the layer's output, added to the loss"
    )
    input_shape: KerasShape | None = Field(
        None, description="checked against the layer's input (Keras: the first layer's fixes it)"
    )
    input_dim: PositiveInt | None = Field(None, description="input_shape (input_dim,)")

    def expected_input(self) -> tuple[str, KerasShape] | None:
        """The input shape the layer states (`input_shape`, or `input_dim`), and the argument
        that states it."""
        if self.input_shape is not None:
            return "input_shape", self.input_shape
        if self.input_dim is not None:
            return "input_dim", (self.input_dim,)
        return None


class KernelOptions(Spec):
    """Keras's options for a layer with a kernel and a bias (dense, conv)."""

    use_bias: bool = True
    kernel_initializer: InitializerName = "glorot_uniform"
    bias_initializer: InitializerName = "zeros"
    kernel_regularizer: L1L2 | None = None
    bias_regularizer: L1L2 | None = None
    kernel_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None
