"""The loss spec: a Keras loss name (`"mean_squared_error"`), or an object with its options."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from core.spec.base import Spec
from core.training.losses import LOSSES


class LossSpec(Spec):
    type: Annotated[str, AfterValidator(LOSSES.canonical)]
    from_logits: bool = Field(False, description="the output is logits, not probabilities")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value
