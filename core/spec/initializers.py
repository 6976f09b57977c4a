"""Initializer specs: a Keras name (`"he_normal"`, `"HeNormal"`) or an object with Keras's arguments
(`{"type": "random_normal", "stddev": 0.1}`), also in Keras's serialized form
(`{"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null},
"registered_name": null}`). Applied by `core/nn/initializers.py`.

One meaning has one stored form: a name when every argument is Keras's default, otherwise the
object. So `{"type": "GlorotUniform"}` is stored as `"glorot_uniform"`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from core.registry import Registry
from core.spec.base import Spec, keras_default, type_names, unwrap

Finite = Annotated[float, Field(allow_inf_nan=False)]
Seed = Annotated[int | None, Field(ge=0, lt=2**63, description="same seed, same values")]


class InitializerArgs(Spec):
    """An initializer given as an object: its `type` and Keras's arguments for that type."""

    type: str

    @model_validator(mode="before")
    @classmethod
    def _known_arguments(cls, value: Any) -> Any:
        if isinstance(value, dict):
            known = list(cls.model_fields)
            unknown = [k for k in value if k not in known]
            if unknown:
                takes = ", ".join(k for k in known if k != "type") or "no arguments"
                raise ValueError(
                    f"initializer {value.get('type')} takes {takes}; "
                    f"received unknown argument(s): {', '.join(map(str, unknown))}"
                )
        return value


class Zeros(InitializerArgs):
    type: Literal["zeros"]


class Ones(InitializerArgs):
    type: Literal["ones"]


class Constant(InitializerArgs):
    type: Literal["constant"]
    value: Finite = 0.0


class Identity(InitializerArgs):
    """Keras's `Identity`: gain · I for a 2-D kernel only."""

    type: Literal["identity"]
    gain: Finite = 1.0


class RandomNormal(InitializerArgs):
    type: Literal["random_normal"]
    mean: Finite = 0.0
    stddev: Finite = Field(0.05, gt=0)
    seed: Seed = None


class TruncatedNormal(InitializerArgs):
    """Normal values; those more than two stddev from the mean are redrawn."""

    type: Literal["truncated_normal"]
    mean: Finite = 0.0
    stddev: Finite = Field(0.05, gt=0)
    seed: Seed = None


class RandomUniform(InitializerArgs):
    type: Literal["random_uniform"]
    minval: Finite = -0.05
    maxval: Finite = 0.05
    seed: Seed = None

    @model_validator(mode="after")
    def _ordered(self) -> RandomUniform:
        if self.minval > self.maxval:
            raise ValueError(
                f"expected minval <= maxval. Received: minval={self.minval}, maxval={self.maxval}"
            )
        return self


class Orthogonal(InitializerArgs):
    type: Literal["orthogonal"]
    gain: Finite = 1.0
    seed: Seed = None


NO_AXES = (
    "expected null: Epochal computes the fans as Keras does by default (fan_in = inputs times "
    "the kernel's size, fan_out = outputs times it); other axes are not offered"
)
Axes = Annotated[list[int] | None, keras_default(lambda v: v is None, NO_AXES)]


class _Fans(InitializerArgs):
    """Keras 3.15's `input_axes` and `output_axes` of the variance-scaling family, at their
    default (null) only; not stored."""

    input_axes: Axes = Field(None, exclude=True)
    output_axes: Axes = Field(None, exclude=True)


class VarianceScaling(_Fans):
    """Keras's `VarianceScaling`: variance scale / n with n the fan of `mode` (at least 1).

    "truncated_normal" draws with stddev sqrt(scale / n) / 0.8796… so that the stddev after
    truncation at two stddev is sqrt(scale / n); "uniform" draws in ±sqrt(3 · scale / n).
    """

    type: Literal["variance_scaling"]
    scale: Finite = Field(1.0, gt=0)
    mode: Literal["fan_in", "fan_out", "fan_avg"] = "fan_in"
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] = "truncated_normal"
    seed: Seed = None

    @field_validator("distribution", mode="before")
    @classmethod
    def _keras_spelling(cls, value: Any) -> Any:
        # Keras lower-cases the distribution and reads "normal" as "truncated_normal".
        if isinstance(value, str):
            value = value.lower()
            return "truncated_normal" if value == "normal" else value
        return value


class GlorotUniform(_Fans):
    type: Literal["glorot_uniform"]
    seed: Seed = None


class GlorotNormal(_Fans):
    type: Literal["glorot_normal"]
    seed: Seed = None


class HeUniform(_Fans):
    type: Literal["he_uniform"]
    seed: Seed = None


class HeNormal(_Fans):
    type: Literal["he_normal"]
    seed: Seed = None


class LecunUniform(_Fans):
    type: Literal["lecun_uniform"]
    seed: Seed = None


class LecunNormal(_Fans):
    type: Literal["lecun_normal"]
    seed: Seed = None


INITIALIZER_SPECS: tuple[type[InitializerArgs], ...] = (
    Zeros,
    Ones,
    Constant,
    Identity,
    RandomNormal,
    TruncatedNormal,
    RandomUniform,
    Orthogonal,
    VarianceScaling,
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunUniform,
    LecunNormal,
)
INITIALIZER_TYPES: list[str] = type_names(INITIALIZER_SPECS)
# Name → spec class; its `canonical` accepts Keras's class spelling and lists the known names.
INITIALIZER_CLASSES: Registry[type[InitializerArgs]] = Registry("initializer")
for _name, _cls in zip(INITIALIZER_TYPES, INITIALIZER_SPECS, strict=True):
    INITIALIZER_CLASSES.register(_name)(_cls)

NAME_TAG = "name"


def default_args(name: str) -> InitializerArgs:
    """The object form of a name: the initializer with all of Keras's default arguments."""
    name = INITIALIZER_CLASSES.canonical(name)
    return INITIALIZER_CLASSES.get(name).model_validate({"type": name})


def _normalize(value: Any) -> Any:
    value = unwrap(value)
    if isinstance(value, str):
        return INITIALIZER_CLASSES.canonical(value)
    if isinstance(value, InitializerArgs):
        return value
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return {**value, "type": INITIALIZER_CLASSES.canonical(value["type"])}
    raise ValueError(
        "expected an initializer name or an object with its 'type' and arguments. "
        f"Received: {value!r}"
    )


def _tag(value: Any) -> str | None:
    if isinstance(value, str):
        return NAME_TAG
    if isinstance(value, dict):
        return value.get("type")
    return getattr(value, "type", None)


def _collapse(value: str | InitializerArgs) -> str | InitializerArgs:
    if isinstance(value, InitializerArgs) and value == default_args(value.type):
        return value.type
    return value


# The name shorthand and each object form, told apart by `_tag` so errors name only the right one.
TAGGED = (
    Annotated[str, Tag(NAME_TAG)],
    *(Annotated[c, Tag(t)] for c, t in zip(INITIALIZER_SPECS, INITIALIZER_TYPES, strict=True)),
)
InitializerSpec = Annotated[
    Union[TAGGED],  # noqa: UP007 - a runtime tuple of types
    Discriminator(_tag),
    BeforeValidator(_normalize),
    AfterValidator(_collapse),
]
