"""Convolution layers (Keras `Conv1D`, `Conv2D`) on channels-last inputs, and the window types
that pooling shares (`Size1`, `Size2`, `Padding`)."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt, model_validator

from core.spec.layers.base import ActivationName, BaseLayer, KernelOptions
from core.spec.layers.keras_args import DataFormat

# A window size or stride per spatial axis; one int stands for the same value on every axis.
Size1 = PositiveInt | tuple[PositiveInt]
Size2 = PositiveInt | tuple[PositiveInt, PositiveInt]
Padding = Literal["valid", "same"]


def as_tuple(value: int | tuple[int, ...], rank: int) -> tuple[int, ...]:
    """Keras's `standardize_tuple`: `3` → `(3, 3)` for a 2-D window."""
    return (value,) * rank if isinstance(value, int) else tuple(value)


class _Conv(BaseLayer, KernelOptions):
    filters: PositiveInt
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    dilation_rate: int | tuple[int, ...] = 1
    groups: PositiveInt = 1
    activation: ActivationName = "linear"
    data_format: DataFormat = None

    @model_validator(mode="after")
    def _check(self) -> _Conv:
        if self.filters % self.groups:
            raise ValueError(
                "filters must be divisible by groups. "
                f"Received: filters={self.filters}, groups={self.groups}"
            )
        strides, dilation = as_tuple(self.strides, 2), as_tuple(self.dilation_rate, 2)
        if max(strides) > 1 and max(dilation) > 1:
            raise ValueError(
                "strides > 1 is not supported together with dilation_rate > 1 (as in Keras). "
                f"Received: strides={self.strides}, dilation_rate={self.dilation_rate}"
            )
        return self


class Conv1D(_Conv):
    """Input (steps, channels) → (new_steps, filters). "causal" pads on the left only."""

    type: Literal["conv1d"]
    kernel_size: Size1
    strides: Size1 = 1
    padding: Literal["valid", "same", "causal"] = "valid"
    dilation_rate: Size1 = 1


class Conv2D(_Conv):
    """Input (height, width, channels) → (new_height, new_width, filters)."""

    type: Literal["conv2d"]
    kernel_size: Size2
    strides: Size2 = 1
    padding: Padding = "valid"
    dilation_rate: Size2 = 1


SPECS = (Conv1D, Conv2D)
