"""How the CLI prints: rich tables for people, JSON for scripts (`--json`)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table


def console(stderr: bool = False) -> Console:
    """Piped or captured output gets a wide console, so that tables are not cut to 80
    columns, and soft wrapping: a line printed (an event of `follow`, an error's detail) stays
    one line, however long, for `grep` and scripts; tables still fit the width."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty()
    return Console(file=stream, width=160 if piped else None, soft_wrap=piped, highlight=False)


def num(value: Any) -> str:
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)


def short(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    out = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        out.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        out.add_row(*(num(v) for v in row))
    return out


def api_float(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: the strings the API writes for them ("NaN", "Infinity",
    "-Infinity")."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def plain(value: Any) -> Any:
    """A model, or lists and mappings of them, as JSON-ready data; non-finite floats, at any
    depth, as the API writes them: "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, BaseModel):
        # Not mode="json": it writes a float field's NaN as a bare NaN and a dict's as null.
        value = value.model_dump(mode="python")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return api_float(value)
    return value


def print_json(out: Console, value: Any) -> None:
    """One JSON document on stdout, unstyled, for `jq` and scripts (strict JSON: no bare NaN)."""
    # datetimes as pydantic writes them (ISO 8601)
    text = json.dumps(plain(value), indent=2, allow_nan=False, default=to_jsonable_python)
    out.file.write(text + "\n")
    out.file.flush()
