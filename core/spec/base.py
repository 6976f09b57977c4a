"""Shared pieces of the spec models: the frozen base and `type` normalisation."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from core.registry import squash
from core.text import nul_in, nul_message


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        """Every string of every spec (names, labels, a sweep's JSON values and their keys) is
        stored: one holding a NUL is refused here, located at its field."""
        if (where := nul_in(value)) is not None:
            at, text = where
            raise PydanticCustomError("nul", "{msg}", {"msg": f"{at}{nul_message(text)}"})
        return value


def normalize_type(value: Any, names: list[str]) -> Any:
    """Accept `"adam"` for `{"type": "adam"}` and Keras's class spelling (`Conv2D` → `conv2d`).

    Unknown names are left for the discriminated union to refuse with the list of known tags.
    """
    if isinstance(value, str):
        value = {"type": value}
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        name = value["type"]
        if name not in names and name[:1].isupper() and "_" not in name:
            match = [n for n in names if squash(n) == name.lower()]
            if match:
                value = {**value, "type": match[0]}
    return value


def type_names(specs: tuple[type[Spec], ...]) -> list[str]:
    """The `type` tag of each spec class (its `Literal["..."]` value)."""
    return [cls.model_fields["type"].annotation.__args__[0] for cls in specs]


def tagged_union(specs: tuple[type[Spec], ...]) -> Any:
    """One of `specs`, chosen by `type` (a discriminated union); accepts the name alone and
    Keras's class spelling of the tag."""
    names = type_names(specs)
    return Annotated[
        Union[specs],  # noqa: UP007 - a runtime tuple of classes
        Field(discriminator="type"),
        BeforeValidator(lambda value: normalize_type(value, names)),
    ]


def _fraction(value: Any) -> Any:
    """`"1/255"` → 1/255: how Keras code writes a rescaling factor, kept readable in a spec."""
    if isinstance(value, str) and value.count("/") == 1:
        numerator, denominator = value.split("/")
        try:
            return float(numerator) / float(denominator)
        except (ValueError, ZeroDivisionError):
            return value  # refused by the float validation, with the value shown
    return value


Number = Annotated[float, BeforeValidator(_fraction)]
