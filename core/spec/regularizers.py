"""Weight regularizers and constraints, as Keras spells them (`L1L2`, `MaxNorm`, `UnitNorm`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.spec.base import Spec, tagged_union


class L1L2(Spec):
    """Keras's `L1L2`: penalty = l1 · Σ|w| + l2 · Σw² (no ½)."""

    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


# Norm constraints act on each output unit's incoming weights: Keras's default for a dense
# kernel (axis=0), and its recommended axis=[0, 1, 2] for a conv kernel (per filter). Other axes
# are not offered.


class MaxNorm(Spec):
    type: Literal["max_norm"]
    max_value: float = Field(2.0, gt=0)


class UnitNorm(Spec):
    type: Literal["unit_norm"]


CONSTRAINT_SPECS = (MaxNorm, UnitNorm)


ConstraintSpec = tagged_union(CONSTRAINT_SPECS)
