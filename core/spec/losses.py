"""The loss spec: a Keras loss name (`"mean_squared_error"`, or any alias `keras.losses.get`
resolves: `"mse"`, `"bce"`, `"kld"`...), an object with its options, or Keras's serialized form
(`keras.losses.serialize`: `{"class_name": "Huber", "config": {"delta": 2.0, ...}}`).

An option applies only to the losses whose Keras class takes it (`label_smoothing` to
`BinaryCrossentropy` and `CategoricalCrossentropy`, `delta` to `Huber`); naming it for another
loss is refused. The normalized spec fills in Keras's default for each option that applies and
leaves the others null.

Keras's other loss arguments are taken at the values that mean what Epochal computes and refused
otherwise, with why; they are not stored: `reduction` (the mean over the batch:
"sum_over_batch_size", Keras's default, or "mean"/"mean_with_sample_weight", the same without
sample weights), `axis` (-1), `dtype` (float32). Keras's `name` label is dropped.
`ignore_class` (sparse_categorical_crossentropy) is Keras's: the loss is the mean over the samples
of the other classes; it is stored only when set.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from core.spec.base import Spec, keras_default, unwrap, without_label
from core.training.losses import LOSSES, LossOptions, Option, loss_name

UNSET: dict[Option, object] = {
    "from_logits": False,
    "label_smoothing": None,
    "delta": None,
    "axis": -1,
    "ignore_class": None,
}
MEAN = ("sum_over_batch_size", "mean", "mean_with_sample_weight")
NO_REDUCTION = (
    "expected a reduction to the mean over the batch (sum_over_batch_size, Keras's default; "
    "mean; mean_with_sample_weight): Epochal trains on the batch's mean loss, a sum would scale "
    "the gradient by the batch size (scale the learning rate instead) and none is not a loss "
    "to train on"
)
NO_AXIS = (
    "expected axis -1: Epochal's classes are on the last axis of the outputs, as Keras's "
    "default has them"
)
NO_DTYPE = (
    "expected dtype float32 (or null): the loss is computed in float32; for lower precision "
    "set training.precision"
)


class LossSpec(Spec):
    type: Annotated[str, AfterValidator(loss_name)]
    from_logits: bool = Field(False, description="the output is logits, not probabilities")
    label_smoothing: float | None = Field(
        None, ge=0.0, lt=1.0, description="cross-entropies: squeeze the labels (default 0)"
    )
    delta: float | None = Field(
        None, gt=0.0, description="huber: where quadratic turns linear (default 1.0)"
    )
    reduction: Annotated[str | None, keras_default(lambda v: v in MEAN, NO_REDUCTION)] = Field(
        "sum_over_batch_size", exclude=True
    )
    axis: Annotated[int, keras_default(lambda v: v == -1, NO_AXIS)] = Field(-1, exclude=True)
    ignore_class: int | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="sparse_categorical_crossentropy: a label whose samples the loss leaves out",
    )
    dtype: Annotated[str | None, keras_default(lambda v: v in (None, "float32"), NO_DTYPE)] = Field(
        None, exclude=True
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return without_label(unwrap({"type": value} if isinstance(value, str) else value))

    @model_validator(mode="after")
    def _options_apply(self) -> LossSpec:
        takes = LOSSES.get(self.type).options
        for option, unset in UNSET.items():
            if option not in takes and getattr(self, option) != unset:
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
            ignore_class=self.ignore_class,
        )


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
