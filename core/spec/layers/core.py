"""Core layers: input, dense, dropout, flatten, activation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.spec.layers.base import ActivationName, BaseLayer, KerasShape, KernelOptions
from core.spec.layers.keras_args import (
    DataFormat,
    LoraRank,
    Quantization,
    Seed,
    only,
)

BATCHES_VARY = (
    "Epochal's batches vary in size (training.batch_size, and a smaller last batch), so the "
    "batch axis stays free"
)
INPUT_DTYPE = (
    "Epochal feeds the data set's values as float32 (an embedding layer casts token ids to "
    "integers); set lower precision with training.precision"
)


class Input(BaseLayer):
    """Keras's `Input(shape)` (`InputLayer` in `model.to_json()`, with `batch_shape`): fixes the
    model's input shape, checked against the data set's, and adds no module. It comes first."""

    type: Literal["input"]
    shape: KerasShape | None = Field(None, description="one sample's shape; null: any size")
    batch_shape: KerasShape | None = Field(None, description="(null, *shape), as Keras writes it")
    batch_size: Annotated[int | None, only(None, why=BATCHES_VARY)] = None
    dtype: Annotated[str | None, only("float32", "int32", "int64", None, why=INPUT_DTYPE)] = None
    sparse: Annotated[bool | None, only(False, None, why="Epochal's inputs are dense")] = None
    ragged: Annotated[
        bool | None, only(False, None, why="a data set's samples all have the same shape")
    ] = None
    optional: Annotated[bool, only(False, why="a sequential network always has its one input")] = (
        False
    )

    @field_validator("batch_shape")
    @classmethod
    def _batch_axis(cls, value: KerasShape | None) -> KerasShape | None:
        """`batch_shape`'s first entry is the batch axis: it must be null."""
        if value is not None and (len(value) < 2 or value[0] is not None):
            raise ValueError(
                f"expected batch_shape (null, *shape): {BATCHES_VARY}. "
                f"Received: batch_shape={list(value)}"
            )
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> Input:
        if (self.shape is None) == (self.batch_shape is None):
            raise ValueError(
                "expected one of shape or batch_shape (as Keras's Input). "
                f"Received: shape={self.shape}, batch_shape={self.batch_shape}"
            )
        return self

    def sample_shape(self) -> KerasShape:
        """One sample's shape: `shape`, or `batch_shape` without its batch axis."""
        return self.shape if self.shape is not None else self.batch_shape[1:]  # type: ignore[index]


class Dense(BaseLayer, KernelOptions):
    """Acts on the last axis, as Keras's: (..., features) → (..., units), e.g. (steps, units)
    on a sequence, with the same (features, units) kernel."""

    type: Literal["dense"]
    units: int = Field(gt=0, description="number of output units")
    activation: ActivationName = "linear"
    lora_rank: LoraRank = None
    lora_alpha: float | None = Field(None, description="used with lora_rank only")
    quantization_config: Quantization = None


class Dropout(BaseLayer):
    type: Literal["dropout"]
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of the inputs to drop")
    noise_shape: KerasShape | None = Field(
        None,
        description="the mask's shape, batch axis first; 1: one draw shared along that axis, "
        "null: the input's size",
    )
    seed: Seed = None


class Flatten(BaseLayer):
    type: Literal["flatten"]
    data_format: DataFormat = None


class Activation(BaseLayer):
    type: Literal["activation"]
    activation: ActivationName


SPECS = (Input, Dense, Dropout, Flatten, Activation)
