"""Shared pieces of the spec models: the frozen base and `type` normalisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
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


# The keys of Keras's serialized form (`keras.saving.serialize_keras_object`) around an object's
# arguments: `{"module": ..., "class_name": "L2", "config": {"l2": 0.01}, "registered_name": null}`.
ENVELOPE = frozenset({"module", "class_name", "config", "registered_name"})


def unwrap(value: Any) -> Any:
    """Keras's serialized form `{"class_name": X, "config": {...}}` (with optional `module` and
    `registered_name`, which only say where Keras finds the class) as `{"type": X, **config}`.
    Any other key is kept, for the spec to refuse by name; anything else is returned as it is."""
    if (
        isinstance(value, dict)
        and isinstance(value.get("class_name"), str)
        and "type" not in value
        and isinstance(value.get("config", {}), dict)
    ):
        rest = {k: v for k, v in value.items() if k not in ENVELOPE}
        return {"type": value["class_name"], **value.get("config", {}), **rest}
    return value


def without_label(value: Any) -> Any:
    """Drop the `name` Keras writes into an optimizer's, loss's, metric's or schedule's config
    (`"name": "adam"`): a label for Keras's logs that changes nothing in the arithmetic."""
    if isinstance(value, dict) and isinstance(value.get("name"), str | None) and "name" in value:
        return {k: v for k, v in value.items() if k != "name"}
    return value


def normalize_type(value: Any, names: list[str], *, label: bool = False) -> Any:
    """Accept `"adam"` for `{"type": "adam"}`, Keras's serialized form (`unwrap`) and Keras's
    class spelling (`Conv2D` → `conv2d`). With `label`, Keras's `name` label is dropped
    (`without_label`); layers keep theirs, which is a field.

    Unknown names are left for the discriminated union to refuse with the list of known tags.
    """
    if isinstance(value, str):
        value = {"type": value}
    value = unwrap(value)
    if label:
        value = without_label(value)
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


def tagged_union(
    specs: tuple[type[Spec], ...], *, label: bool = False, refused: dict[str, str] | None = None
) -> Any:
    """One of `specs`, chosen by `type` (a discriminated union); accepts the name alone, Keras's
    serialized form and Keras's class spelling of the tag (see `normalize_type`). `refused`:
    Keras's names (squashed: `"tensorboard"`) that Epochal does not offer, each with why."""
    names = type_names(specs)

    def normalize(value: Any) -> Any:
        value = normalize_type(value, names, label=label)
        kind = value.get("type") if isinstance(value, dict) else None
        if refused and isinstance(kind, str) and squash(kind) in refused:
            raise ValueError(f"{kind} is not offered: {refused[squash(kind)]}")
        return value

    return Annotated[
        Union[specs],  # noqa: UP007 - a runtime tuple of classes
        Field(discriminator="type"),
        BeforeValidator(normalize),
    ]


def keras_default(accepts: Callable[[Any], bool], why: str) -> AfterValidator:
    """A Keras argument that Epochal takes only at values that mean what it does: any other value
    is refused with `why` (located at the argument). Such a field is declared with
    `exclude=True`, so the stored spec stays as it was: the value it holds changes nothing."""

    def check(value: Any) -> Any:
        if not accepts(value):
            raise ValueError(f"{why}. Received: {value!r}")
        return value

    return AfterValidator(check)


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
