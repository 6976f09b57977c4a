"""What every layer spec shares, and the weight options (Keras's names) of layers with weights."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from core.nn.activations import ACTIVATIONS
from core.spec.base import Spec
from core.spec.initializers import InitializerSpec
from core.spec.regularizers import L1L2, ConstraintSpec

ActivationName = Annotated[str, AfterValidator(ACTIVATIONS.canonical)]
InitializerName = InitializerSpec  # a Keras name, or an object with its arguments


class BaseLayer(Spec):
    name: str | None = Field(
        None, max_length=100, description="optional label shown in the summary"
    )


class KernelOptions(Spec):
    """Keras's options for a layer with a kernel and a bias (dense, conv)."""

    use_bias: bool = True
    kernel_initializer: InitializerName = "glorot_uniform"
    bias_initializer: InitializerName = "zeros"
    kernel_regularizer: L1L2 | None = None
    bias_regularizer: L1L2 | None = None
    activity_regularizer: L1L2 | None = None
    kernel_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None
