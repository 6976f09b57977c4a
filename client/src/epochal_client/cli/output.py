"""How the CLI prints: rich tables for people, JSON for scripts (`--json`)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table


def console(stderr: bool = False) -> Console:
    # Piped or captured output gets a wide console, so tables are not cut to 80 columns.
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 160, highlight=False)


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


def plain(value: Any) -> Any:
    """A model, or lists and mappings of them, as JSON-ready data (non-finite floats as the
    API writes them: null)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(out: Console, value: Any) -> None:
    """One JSON document on stdout, unstyled, for `jq` and scripts."""
    out.file.write(json.dumps(plain(value), indent=2) + "\n")
    out.file.flush()
