"""Core layers: dense, dropout, flatten, activation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.spec.layers.base import ActivationName, BaseLayer, KernelOptions


class Dense(BaseLayer, KernelOptions):
    type: Literal["dense"]
    units: int = Field(gt=0, description="number of output units")
    activation: ActivationName = "linear"


class Dropout(BaseLayer):
    type: Literal["dropout"]
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of the inputs to drop")


class Flatten(BaseLayer):
    type: Literal["flatten"]


class Activation(BaseLayer):
    type: Literal["activation"]
    activation: ActivationName


SPECS = (Dense, Dropout, Flatten, Activation)
