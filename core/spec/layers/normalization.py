"""Layers that rescale values: batch and layer normalization, rescaling, and leaky_relu."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from core.spec.base import Number
from core.spec.layers.base import BaseLayer, InitializerName
from core.spec.layers.keras_args import only
from core.spec.regularizers import L1L2, ConstraintSpec


class _Normalization(BaseLayer):
    """Keras's options for the learned scale (gamma) and offset (beta)."""

    epsilon: float = Field(1e-3, gt=0, description="added to the variance")
    center: bool = Field(True, description="learn an offset beta")
    scale: bool = Field(True, description="learn a scale gamma")
    beta_initializer: InitializerName = "zeros"
    gamma_initializer: InitializerName = "ones"
    beta_regularizer: L1L2 | None = None
    gamma_regularizer: L1L2 | None = None
    beta_constraint: ConstraintSpec | None = None
    gamma_constraint: ConstraintSpec | None = None


class BatchNormalization(_Normalization):
    """Normalizes each channel by the batch's statistics in training and by their moving
    averages otherwise: moving = moving · momentum + batch · (1 - momentum) (Keras's momentum;
    PyTorch's momentum is 1 - this one). The batch variance is the biased one, as in Keras."""

    type: Literal["batch_normalization"]
    axis: int = Field(-1, description="the channel axis, counted with the batch axis as 0")
    momentum: float = Field(0.99, ge=0.0, le=1.0)
    moving_mean_initializer: InitializerName = "zeros"
    moving_variance_initializer: InitializerName = "ones"
    renorm: Annotated[
        bool, only(False, why="batch renormalization (Ioffe 2017) is not implemented")
    ] = False
    renorm_clipping: Annotated[dict | None, only(None, why="it is renorm's, which is refused")] = (
        None
    )
    renorm_momentum: float = Field(0.99, description="used with renorm only")
    synchronized: bool = Field(
        False, description="a job trains on one device, whose batch statistics are the batch's"
    )


class LayerNormalization(_Normalization):
    """Normalizes each sample over `axis` (by default its last, channel axis)."""

    type: Literal["layer_normalization"]
    axis: int | tuple[int, ...] = Field(-1, description="axes counted with the batch axis as 0")
    rms_scaling: Annotated[
        bool,
        only(
            False,
            why="Keras 3 deprecates it (it scales by the variance, not the root mean square)",
        ),
    ] = False

    @model_validator(mode="after")
    def _check(self) -> LayerNormalization:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        if not axes or 0 in axes:
            raise ValueError(
                f"axis must name one or more non-batch axes. Received: axis={self.axis}"
            )
        return self


class Rescaling(BaseLayer):
    """x · scale + offset, e.g. scale 1/255 to bring pixels into [0, 1]."""

    type: Literal["rescaling"]
    scale: Number = Field(description='a number or a fraction such as "1/255"')
    offset: Number = 0.0


class LeakyReLU(BaseLayer):
    """x for x ≥ 0, negative_slope · x otherwise. The layer's default slope (0.3) is Keras's,
    which differs from the `leaky_relu` function's (0.2)."""

    type: Literal["leaky_relu"]
    negative_slope: float = Field(0.3, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _alpha(cls, data: object) -> object:
        """Keras 3 still takes Keras 2's name, `alpha`, for negative_slope (with a warning)."""
        if isinstance(data, dict) and "alpha" in data:
            if "negative_slope" in data:
                raise ValueError(
                    "expected negative_slope or Keras 2's alpha, not both. "
                    f"Received: alpha={data['alpha']}, negative_slope={data['negative_slope']}"
                )
            data = {k: v for k, v in data.items() if k != "alpha"} | {
                "negative_slope": data["alpha"]
            }
        return data


SPECS = (BatchNormalization, LayerNormalization, Rescaling, LeakyReLU)
