"""Encoded inputs (`"inputs"` of `POST /v1/jobs/{id}/predict`) checked against a model.

Plain Python, no array arithmetic: the API checks the inputs sent to it here (core/serving.py), and
`epochal_client.offline` the ones fed to a downloaded model, so both refuse the same inputs with
the same messages. An input is nested lists of the model's input shape holding finite numbers
within float32's range (not booleans); for a model that reads token ids (`ids`: [low, high]),
integers in that range.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from epochal_client.rows import FLOAT32_MAX, RowError

MAX_ISSUES = 10  # enough to see the pattern
MAX_FEATURES_SHOWN = 100


def check_inputs(
    inputs: Sequence[Any],
    shape: Sequence[int],
    ids: Sequence[int] | None = None,
    features: Sequence[str] | None = None,
) -> list[float]:
    """The numbers of `inputs` (a batch of nested lists), flat in row-major order; raises
    RowError whose issues are located at ("inputs", i), at most 10 of them. `features` (a table's,
    after encoding) are listed when an input has the wrong shape."""
    if not inputs:
        raise RowError([(("inputs",), "expected at least one input; received none", "empty")])
    shape = tuple(shape)
    span = (int(ids[0]), int(ids[1])) if ids is not None else None
    issues: list[tuple[tuple[Any, ...], str, str]] = []
    flat: list[float] = []
    for i, value in enumerate(inputs):
        at = len(flat)
        problem = _flatten(value, shape, f"inputs[{i}]", flat, span, input_shape=shape)
        if problem is None and not _finite(flat, at):
            # The fast path let NaN, infinities or float32 overflows through: name the value.
            problem = _flatten(value, shape, f"inputs[{i}]", [], span, shape, fast=False)
        if problem is not None:
            message, kind = problem
            if features and kind == "wrong_shape":
                shown = ", ".join(features[:MAX_FEATURES_SHOWN])
                more = len(features) - MAX_FEATURES_SHOWN
                message += f"; the features, in order: {shown}" + (
                    f" and {more:,} more" if more > 0 else ""
                )
            issues.append((("inputs", i), message, kind))
            if len(issues) >= MAX_ISSUES:
                break
    if issues:
        raise RowError(issues)
    return flat


def _finite(flat: list[float], start: int) -> bool:
    """Whether the numbers from `start` on are finite and within float32's range."""
    return all(-FLOAT32_MAX <= v <= FLOAT32_MAX for v in flat[start:])  # False for NaN


def _flatten(
    value: Any,
    shape: tuple[int, ...],
    where: str,
    out: list[float],
    ids: tuple[int, int] | None,
    input_shape: tuple[int, ...],
    *,
    fast: bool = True,
) -> tuple[str, str] | None:
    """Append the numbers of `value` to `out`; return (message, type) for the first problem.

    The fast path takes a plain list of numbers at once and leaves the range check to the
    caller; the slow path checks each value, to name the one that is wrong.
    """
    if fast and ids is None and len(shape) == 1 and isinstance(value, list):
        try:
            numbers = [float(v) for v in value if type(v) is float or type(v) is int]
        except OverflowError:  # an integer too large for a float
            numbers = []
        if len(numbers) == len(value) == shape[0]:
            out.extend(numbers)
            return None
    if not shape:
        return _number(value, where, out, ids)
    if not isinstance(value, list) or len(value) != shape[0]:
        kind = "wrong_shape"
        message = f"{where} has shape {_fmt(_shape_of(value))}; expected {_fmt(shape)}"
        if "][" in where:  # a part of one input: say what the whole should be
            return f"{message} (an input has the model's input shape {_fmt(input_shape)})", kind
        return f"{message}, the model's input shape", kind
    for j, item in enumerate(value):
        problem = _flatten(item, shape[1:], f"{where}[{j}]", out, ids, input_shape, fast=fast)
        if problem is not None:
            return problem
    return None


def _number(
    value: Any, where: str, out: list[float], ids: tuple[int, int] | None
) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{where} is {_show(value)}; expected a number", "not_a_number"
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        return f"{where} is {_show(value)}; expected a finite number", "not_finite"
    if abs(number) > FLOAT32_MAX:
        return (
            f"{where} is {_show(value)}, outside float32's range; expected a finite number",
            "not_finite",
        )
    if ids is not None and (number != int(number) or not ids[0] <= number <= ids[1]):
        return f"{where} is {_show(value)}; expected an integer id in [{ids[0]}, {ids[1]}]", (
            "not_an_id"
        )
    out.append(number)
    return None


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _shape_of(value: Any) -> tuple[int, ...]:
    """The shape a nested list seems to have, read along its first elements."""
    dims: list[int] = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(dims)


def _fmt(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"
