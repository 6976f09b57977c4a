"""Weight regularizers and constraints, as Keras spells them (`L1L2`, `MaxNorm`, `UnitNorm`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.spec.base import Spec, tagged_union, type_names


class L1L2(Spec):
    """Keras's `L1L2`: penalty = l1 · Σ|w| + l2 · Σw² (no ½)."""

    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


class MaxNorm(Spec):
    type: Literal["max_norm"]
    max_value: float = Field(2.0, gt=0)
    axis: int = 0  # Keras's axis over the kernel (for a dense kernel: each unit's input weights)


class UnitNorm(Spec):
    type: Literal["unit_norm"]
    axis: int = 0


CONSTRAINT_SPECS = (MaxNorm, UnitNorm)
CONSTRAINT_TYPES: list[str] = type_names(CONSTRAINT_SPECS)


ConstraintSpec = tagged_union(CONSTRAINT_SPECS)
