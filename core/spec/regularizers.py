"""Weight regularizers and constraints, as Keras spells them (`L1L2`, `MaxNorm`, `UnitNorm`).

A regularizer is stored as `{"l1": ..., "l2": ...}` and may be written as Keras writes one: a
name (`"l1"`, `"l2"`: factor 0.01 as Keras's `L1()` and `L2()`; `"L1L2"`: 0 and 0 as Keras 3's
`L1L2()`), an object `{"type": "L2", "l2": 1e-4}`, or Keras's serialized form
`{"class_name": "L2", "config": {"l2": 1e-4}}` (with `module` and `registered_name`). Every
spelling of L1L2 means Keras 3's class, whose factors default to 0; the bare name `"l1_l2"`
(Keras 2's function, 0.01 each, which Keras 3's `regularizers.get` refuses) is refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from core.registry import squash
from core.spec.base import Spec, keras_default, tagged_union, unwrap

KERAS_FACTOR = 0.01  # the default of Keras's L1(l1) and L2(l2)
# Keras's regularizer names and classes: what each takes and the factors it defaults to.
REGULARIZERS: dict[str, tuple[frozenset[str], dict[str, float]]] = {
    "l1": (frozenset({"l1"}), {"l1": KERAS_FACTOR}),
    "l2": (frozenset({"l2"}), {"l2": KERAS_FACTOR}),
    "l1l2": (frozenset({"l1", "l2"}), {}),  # Keras 3's L1L2(l1=0.0, l2=0.0)
}
NOT_OFFERED = {
    "orthogonalregularizer": "OrthogonalRegularizer is not offered: Epochal's weight penalties "
    "are L1 and L2 (L1, L2, L1L2)"
}

L1_L2_NAME = (
    "the name 'l1_l2' is ambiguous: Keras 2's l1_l2() meant l1 = l2 = 0.01, Keras 3's means 0 "
    "and 0, and keras.regularizers.get refuses it; write the factors: "
    '{"type": "l1_l2", "l1": 0.01, "l2": 0.01}'
)


def _keras_form(value: Any) -> Any:
    """A Keras name, `{"type": ...}` object or serialized form as `{"l1": ..., "l2": ...}`."""
    if isinstance(value, str):
        if value == "l1_l2":
            raise ValueError(L1_L2_NAME)
        value = {"type": value}
    value = unwrap(value)
    if not (isinstance(value, dict) and "type" in value):
        return value
    kind = value["type"]
    key = squash(kind) if isinstance(kind, str) else ""
    if key in NOT_OFFERED:
        raise ValueError(NOT_OFFERED[key])
    if key not in REGULARIZERS:
        raise ValueError(
            "expected a regularizer: l1, l2, an object of type L1, L2 or L1L2, or "
            f"{{'l1': ..., 'l2': ...}}. Received: type={kind!r}"
        )
    takes, defaults = REGULARIZERS[key]
    arguments = {k: v for k, v in value.items() if k != "type"}
    unknown = [k for k in arguments if k not in takes]
    if unknown:
        raise ValueError(
            f"regularizer {kind} takes {', '.join(sorted(takes))}; received unknown "
            f"argument(s): {', '.join(map(str, unknown))}"
        )
    return {**defaults, **arguments}


class L1L2(Spec):
    """Keras's `L1L2`: penalty = l1 · Σ|w| + l2 · Σw² (no ½)."""

    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _keras(cls, value: Any) -> Any:
        return _keras_form(value)


# Norm constraints act on each output unit's incoming weights: Keras's default for a dense
# kernel (axis=0), and its recommended axis=[0, 1, 2] for a conv kernel (per filter). Keras's
# `axis` is accepted where it names these axes (0, or 0 up to some n: every axis but the
# kernel's last, output one); other axes are refused.
NO_AXIS = (
    "expected axis 0 or [0, 1, ...] (each output unit's incoming weights: Keras's default for a "
    "dense kernel, its per-filter axis=[0, 1, 2] for a conv kernel); Epochal constrains norms "
    "along no other axes"
)


def _per_unit(axis: Any) -> bool:
    axes = [axis] if isinstance(axis, int) else axis
    return isinstance(axes, list) and axes == list(range(len(axes))) and len(axes) > 0


Axis = Annotated[int | list[int], keras_default(_per_unit, NO_AXIS)]


class MaxNorm(Spec):
    type: Literal["max_norm"]
    max_value: float = Field(2.0, gt=0)
    axis: Axis = Field(0, exclude=True)


class UnitNorm(Spec):
    type: Literal["unit_norm"]
    axis: Axis = Field(0, exclude=True)


class MinMaxNorm(Spec):
    """Keras's `MinMaxNorm`: each unit's norm n moves to rate · clip(n, min_value, max_value)
    + (1 - rate) · n."""

    type: Literal["min_max_norm"]
    min_value: float = Field(0.0, ge=0)
    max_value: float = Field(1.0, gt=0)
    rate: float = Field(1.0, ge=0, le=1)
    axis: Axis = Field(0, exclude=True)

    @model_validator(mode="after")
    def _ordered(self) -> MinMaxNorm:
        if self.min_value > self.max_value:
            raise ValueError(
                "expected min_value <= max_value. "
                f"Received: min_value={self.min_value}, max_value={self.max_value}"
            )
        return self


class NonNeg(Spec):
    """Keras's `NonNeg`: negative weights are set to 0 after each update."""

    type: Literal["non_neg"]


CONSTRAINT_SPECS = (MaxNorm, UnitNorm, MinMaxNorm, NonNeg)


ConstraintSpec = tagged_union(CONSTRAINT_SPECS)
