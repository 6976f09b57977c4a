"""Reshaping layers: reshape (flatten is in `core`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.spec.layers.base import BaseLayer


class Reshape(BaseLayer):
    """Reshapes each sample in row-major order, as Keras does on channels-last tensors. One
    entry may be -1: it is inferred from the input size."""

    type: Literal["reshape"]
    target_shape: tuple[int, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Reshape:
        if any(d == 0 or d < -1 for d in self.target_shape) or self.target_shape.count(-1) > 1:
            raise ValueError(
                "target_shape must hold positive sizes and at most one -1. "
                f"Received: target_shape={self.target_shape}"
            )
        return self


SPECS = (Reshape,)
