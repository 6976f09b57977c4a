"""The loss spec: a Keras loss name (`"mean_squared_error"`), or an object with its options.

An option applies only to the losses whose Keras class takes it (`label_smoothing` to
`BinaryCrossentropy` and `CategoricalCrossentropy`, `delta` to `Huber`); naming it for another
loss is refused. The normalized spec fills in Keras's default for each option that applies and
leaves the others null.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from core.spec.base import Spec
from core.training.losses import LOSSES, LossOptions, Option

UNSET: dict[Option, object] = {"from_logits": False, "label_smoothing": None, "delta": None}


class LossSpec(Spec):
    type: Annotated[str, AfterValidator(LOSSES.canonical)]
    from_logits: bool = Field(False, description="the output is logits, not probabilities")
    label_smoothing: float | None = Field(
        None, ge=0.0, lt=1.0, description="cross-entropies: squeeze the labels (default 0)"
    )
    delta: float | None = Field(
        None, gt=0.0, description="huber: where quadratic turns linear (default 1.0)"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _options_apply(self) -> LossSpec:
        takes = LOSSES.get(self.type).options
        for option, unset in UNSET.items():
            if option not in takes and getattr(self, option) is not unset:
                users = [name for name in LOSSES if option in LOSSES.get(name).options]
                raise ValueError(f"{option} applies to {_join(users)}, not {self.type}")
        defaults = LossOptions()
        fill = {
            option: getattr(defaults, option)
            for option in ("label_smoothing", "delta")
            if option in takes and getattr(self, option) is None
        }
        return self.model_copy(update=fill) if fill else self

    def options(self) -> LossOptions:
        """The options the loss function is built with (Keras's default where unset)."""
        defaults = LossOptions()
        return LossOptions(
            label_smoothing=defaults.label_smoothing
            if self.label_smoothing is None
            else self.label_smoothing,
            delta=defaults.delta if self.delta is None else self.delta,
        )


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
